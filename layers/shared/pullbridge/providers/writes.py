"""What the providers' writes (mutations) share: checking a `WriteRequest` against what a connection can
write, record ids as path segments, reading one record back (404 is None), and the provider's answer.

Errors: a request the provider cannot make is `PullFailed("bad_request", ...)` before any call (the
service answers 400); a 2xx answer that is not what the provider documents is `ProviderUnavailable` with
`may_have_applied=True` (the provider accepted the write, so its outcome is unknown, not failed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from pullbridge.errors import ProviderUnavailable, PullFailed
from pullbridge.providers.base import WriteRequest

T = TypeVar("T")

NEEDS_RECORD_ID = frozenset({"update", "delete"})
NEEDS_DATA = frozenset({"create", "update"})


def check_write(label: str, writable: Mapping[str, frozenset[str]], request: WriteRequest) -> None:
    """`PullFailed("bad_request")` unless the connection can make this write: a collection and kind it
    writes, a record id for an update or a delete, and data for a create or an update."""
    kinds = writable.get(request.collection)
    if kinds is None:
        names = ", ".join(sorted(writable)) or "none"
        raise PullFailed(
            "bad_request",
            f"{label} cannot write {request.collection!r}; the collections it writes: {names}",
            key="unsupported_collection",
            data={"field": "collection"},
        )
    if request.kind not in kinds:
        raise PullFailed(
            "bad_request",
            f"{label} cannot {request.kind} {request.collection}: it can {', '.join(sorted(kinds))}",
            key="unsupported_kind",
            data={"field": "kind"},
        )
    if request.kind in NEEDS_RECORD_ID and not request.record_id:
        raise PullFailed(
            "bad_request",
            f"a {request.kind} names its record_id",
            key="missing_record_id",
            data={"field": "record_id"},
        )
    if request.kind in NEEDS_DATA and request.data is None:
        raise PullFailed(
            "bad_request", f"a {request.kind} carries data", key="missing_data", data={"field": "data"}
        )


def path_segment(record_id: str) -> str:
    """A record id as one path segment: percent-encoded (a `/` stays inside the segment). `.` and `..`
    are refused, since URL normalization would move them out of the collection's path."""
    if record_id in ("", ".", ".."):
        raise invalid_record_id(repr(record_id), "is not a record id")
    return quote(record_id, safe="")


def numeric_id(label: str, record_id: str, what: str = "ids are numbers") -> str:
    """A record id that the provider writes as digits (GitHub's issue numbers, Shopify's and HubSpot's
    ids), checked before it goes into a path."""
    if not (record_id.isascii() and record_id.isdigit()):
        raise invalid_record_id(f"{label}: {record_id[:40]!r}", f"is not a record id; {what}")
    return record_id


def invalid_record_id(named: str, problem: str) -> PullFailed:
    return PullFailed(
        "bad_request", f"{named} {problem}", key="invalid_record_id", data={"field": "record_id"}
    )


def record_or_none(read: Callable[[], T]) -> T | None:
    """`read()`, or None when the provider answered that the record is not there: 404, or 410 (gone)."""
    try:
        return read()
    except PullFailed as failed:
        if failed.key == "not_found" or failed.data.get("status_code") == 410:
            return None
        raise


def answered_object(label: str, body: Any, key: str | None = None) -> dict[str, Any]:
    """The object a write answered (at `key` when the provider wraps it), or `ProviderUnavailable`: the
    provider accepted the write but answered something it does not document."""
    found = body.get(key) if key is not None and isinstance(body, dict) else body
    if not isinstance(found, dict):
        where = f" at {key!r}" if key is not None else ""
        raise unreadable_answer(f"{label} answered a write without the object{where}")
    return found


def unreadable_answer(message: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        message, may_have_applied=True, key="unexpected_answer", data={"message": message}
    )


def first_string(*values: Any) -> str | None:
    """The first non-empty string among `values`."""
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
