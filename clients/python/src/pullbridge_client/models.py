"""The API's objects the client types: `Event` and the list `Page`. Other resources stay plain dicts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Event", "Page"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Event:
    """One event, as `GET /events` returns it.

    Fields a newer server adds are kept, not dropped: they are in `extra`, and `to_dict()` gives the
    whole object back as the API sent it.
    """

    id: str
    connection_id: str
    provider: str
    collection: str | None = None
    type: str
    action: str | None = None
    record_id: str | None = None
    source: str
    pull_id: str | None = None
    occurred_at: str | None = None
    received_at: str
    stale: bool = False
    """True when the webhook's object was older than the state pullbridge already held."""
    data: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any) -> Event:
        """The event in a decoded JSON object: ValueError for a missing field, TypeError for a wrong type."""
        if not isinstance(value, dict):
            raise TypeError(f"an event is a JSON object, not {type(value).__name__}")
        known: dict[str, Any] = {}
        for name, required in _FIELDS.items():
            if name not in value:
                if required:
                    raise ValueError(f"the event has no {name!r}")
                continue
            item = value[name]
            if name == "stale":
                if not isinstance(item, bool):
                    raise TypeError(f"the event's 'stale' is not a boolean: {item!r}")
            elif name != "data" and not (isinstance(item, str) or (item is None and not required)):
                raise TypeError(f"the event's {name!r} is not a string: {item!r}")
            known[name] = item
        extra = {name: item for name, item in value.items() if name not in _FIELDS}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON object: the contract's fields in its order, then any `extra` ones."""
        return {**{name: getattr(self, name) for name in _FIELDS}, **self.extra}


_FIELDS: dict[str, bool] = {
    item.name: item.default is dataclasses.MISSING
    for item in dataclasses.fields(Event)
    if item.name != "extra"
}
"""Each contract field of an event, and whether the client requires it (the others may be null)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: `data`, the `next_cursor` to send for the next page, and `has_more`."""

    data: list[T]
    next_cursor: str
    has_more: bool
