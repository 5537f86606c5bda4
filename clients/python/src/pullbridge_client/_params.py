"""Query parameters and JSON bodies by the contract's names. A None value is not sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote


def path(*segments: str) -> str:
    """A route path from its segments, each escaped (an id or a name may hold any character)."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def given(**fields: Any) -> dict[str, Any]:
    """The fields that are not None; mappings copied to plain dicts, as JSON wants them."""
    return {
        name: dict(value) if isinstance(value, Mapping) else value
        for name, value in fields.items()
        if value is not None
    }


def timestamp(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def event_filters(
    connection_id: str | None,
    provider: str | None,
    collection: str | None,
    type: str | None,
    source: str | None,
    record_id: str | None = None,
) -> dict[str, str | None]:
    """`GET /events`'s filters."""
    return {
        "connection_id": connection_id,
        "provider": provider,
        "collection": collection,
        "type": type,
        "source": source,
        "record_id": record_id,
    }


def pull_filters(
    status: str | None,
    subscription_id: str | None,
    connection_id: str | None,
    provider: str | None,
    from_: datetime | str | None,
    to: datetime | str | None,
) -> dict[str, Any]:
    """`GET /external-event-pulls`'s filters, by the contract's names."""
    return {
        "status": status,
        "external_event_subscription_id": subscription_id,
        "connection_id": connection_id,
        "provider": provider,
        "from": timestamp(from_),
        "to": timestamp(to),
    }
