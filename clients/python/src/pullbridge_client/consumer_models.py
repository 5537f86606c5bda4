"""The consumer routes' objects: `Consumer`, `Delivery`, `DeadLetter`, and what settling leases answers.

Like `Event`, each keeps the fields a newer server adds in `extra` (and `to_dict()` gives the whole
object back), and `from_dict` raises ValueError for a missing field, TypeError for a wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pullbridge_client.errors import ErrorObject
from pullbridge_client.models import Event

__all__ = [
    "AckResult",
    "ConsumeSummary",
    "Consumer",
    "DeadLetter",
    "Delivery",
    "ExtendResult",
    "NackResult",
    "RedriveResult",
    "TermResult",
]


class _Fields:
    """Reads one JSON object's fields by kind, remembering which it read (the rest are `extra`)."""

    def __init__(self, what: str, value: Any) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"a {what} is a JSON object, not {type(value).__name__}")
        self.what = what
        self.value: dict[str, Any] = value
        self.read: set[str] = set()

    def _get(self, name: str, kinds: tuple[type, ...], *, optional: bool = False) -> Any:
        self.read.add(name)
        if name not in self.value:
            if optional:
                return None
            raise ValueError(f"the {self.what} has no {name!r}")
        item = self.value[name]
        if item is None and optional:
            return None
        if isinstance(item, bool) or not isinstance(item, kinds):
            kind = " or ".join(kind.__name__ for kind in kinds)
            raise TypeError(f"the {self.what}'s {name!r} is not a {kind}: {item!r}")
        return item

    def text(self, name: str) -> str:
        value: str = self._get(name, (str,))
        return value

    def optional_text(self, name: str) -> str | None:
        value: str | None = self._get(name, (str,), optional=True)
        return value

    def anything(self, name: str) -> Any:
        """Any JSON value (a provider's object), None when absent."""
        self.read.add(name)
        return self.value.get(name)

    def optional_error(self, name: str) -> ErrorObject | None:
        item = self._get(name, (dict,), optional=True)
        if item is None:
            return None
        error = ErrorObject.from_json(item)
        if error is None:
            raise TypeError(f"the {self.what}'s {name!r} is not an error object: {item!r}")
        return error

    def integer(self, name: str) -> int:
        value: int = self._get(name, (int,))
        return value

    def optional_integer(self, name: str) -> int | None:
        value: int | None = self._get(name, (int,), optional=True)
        return value

    def number(self, name: str) -> float:
        return float(self._get(name, (int, float)))

    def texts(self, name: str) -> tuple[str, ...]:
        items = self._get(name, (list,))
        if not all(isinstance(item, str) for item in items):
            raise TypeError(f"the {self.what}'s {name!r} is not a list of strings: {items!r}")
        return tuple(items)

    def mapping(self, name: str) -> dict[str, Any]:
        return dict(self._get(name, (dict,)))

    def event(self, name: str) -> Event:
        return Event.from_dict(self._get(name, (dict,)))

    def optional_event(self, name: str) -> Event | None:
        item = self._get(name, (dict,), optional=True)
        return None if item is None else Event.from_dict(item)

    def extra(self) -> dict[str, Any]:
        return {name: item for name, item in self.value.items() if name not in self.read}


@dataclass(frozen=True, kw_only=True)
class Consumer:
    """A consumer: its filters and limits, and its counts (exact at the time of the answer).

    `filters` is the API's object: `connection_id`, `provider`, `collection`, `type`, `source`, each None
    when it does not filter.
    `max_deliveries` is None when there is no limit. `num_pending`: matching events not yet delivered;
    `num_ack_pending`: leased, not acked; `num_waiting`: given back, waiting to be delivered again;
    `num_dead`: dead letters; `lag_seconds`: the age of the oldest undelivered event.
    """

    id: str
    name: str
    filters: Mapping[str, Any]
    ack_wait_seconds: int
    max_deliveries: int | None
    max_ack_pending: int
    ordering: str
    num_pending: int
    num_ack_pending: int
    num_waiting: int
    num_dead: int
    lag_seconds: float
    created_at: str
    updated_at: str
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any) -> Consumer:
        read = _Fields("consumer", value)
        return cls(
            id=read.text("id"),
            name=read.text("name"),
            filters=read.mapping("filters"),
            ack_wait_seconds=read.integer("ack_wait_seconds"),
            max_deliveries=read.optional_integer("max_deliveries"),
            max_ack_pending=read.integer("max_ack_pending"),
            ordering=read.text("ordering"),
            num_pending=read.integer("num_pending"),
            num_ack_pending=read.integer("num_ack_pending"),
            num_waiting=read.integer("num_waiting"),
            num_dead=read.integer("num_dead"),
            lag_seconds=read.number("lag_seconds"),
            created_at=read.text("created_at"),
            updated_at=read.text("updated_at"),
            extra=read.extra(),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {name: getattr(self, name) for name in _CONSUMER_FIELDS}
        return {**known, "filters": dict(self.filters), **self.extra}


_CONSUMER_FIELDS = [name for name in Consumer.__dataclass_fields__ if name != "extra"]


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One event leased to this worker until `lease_expires_at`: settle it by its `ack_id` before then.

    `delivery_count` is 1 on the first delivery and grows with each redelivery.
    """

    ack_id: str
    delivery_count: int
    lease_expires_at: str
    event: Event
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any) -> Delivery:
        read = _Fields("delivery", value)
        return cls(
            ack_id=read.text("ack_id"),
            delivery_count=read.integer("delivery_count"),
            lease_expires_at=read.text("lease_expires_at"),
            event=read.event("event"),
            extra=read.extra(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ack_id": self.ack_id,
            "delivery_count": self.delivery_count,
            "lease_expires_at": self.lease_expires_at,
            "event": self.event.to_dict(),
            **self.extra,
        }


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """An event that left the rotation: delivered `max_deliveries` times without an ack, or termed.

    `reason` is `max_deliveries`, or the term's reason (`termed` without one). `event` is a copy kept
    with the dead letter; it is None only if the event had left the log when it died.
    """

    event_id: str
    delivery_count: int
    reason: str
    dead_at: str
    event: Event | None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any) -> DeadLetter:
        read = _Fields("dead letter", value)
        return cls(
            event_id=read.text("event_id"),
            delivery_count=read.integer("delivery_count"),
            reason=read.text("reason"),
            dead_at=read.text("dead_at"),
            event=read.optional_event("event"),
            extra=read.extra(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "delivery_count": self.delivery_count,
            "reason": self.reason,
            "dead_at": self.dead_at,
            "event": None if self.event is None else self.event.to_dict(),
            **self.extra,
        }


@dataclass(frozen=True)
class AckResult:
    """`acked`: how many were settled; `expired`: the ack ids whose lease ran out first (the event will
    be delivered again)."""

    acked: int
    expired: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, value: Any) -> AckResult:
        read = _Fields("ack result", value)
        return cls(read.integer("acked"), read.texts("expired"))


@dataclass(frozen=True)
class NackResult:
    nacked: int
    expired: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, value: Any) -> NackResult:
        read = _Fields("nack result", value)
        return cls(read.integer("nacked"), read.texts("expired"))


@dataclass(frozen=True)
class ExtendResult:
    """`lease_expires_at`: when the extended leases now run out."""

    extended: int
    lease_expires_at: str
    expired: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, value: Any) -> ExtendResult:
        read = _Fields("extend result", value)
        return cls(read.integer("extended"), read.text("lease_expires_at"), read.texts("expired"))


@dataclass(frozen=True)
class TermResult:
    termed: int
    expired: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, value: Any) -> TermResult:
        read = _Fields("term result", value)
        return cls(read.integer("termed"), read.texts("expired"))


@dataclass(frozen=True)
class RedriveResult:
    """`redriven`: dead letters put back into rotation; `remaining`: how many are still dead."""

    redriven: int
    remaining: int

    @classmethod
    def from_dict(cls, value: Any) -> RedriveResult:
        read = _Fields("redrive result", value)
        return cls(read.integer("redriven"), read.integer("remaining"))


@dataclass(frozen=True)
class ConsumeSummary:
    """What `Client.consume` did before it stopped.

    `processed`: events the handler succeeded on (acked); `failed`: events it raised on (nacked, to be
    delivered again after a backoff); `expired`: acks and nacks that came after the lease ran out or
    could not be sent (those events will be delivered again); `interrupted`: stopped by Ctrl-C.
    """

    processed: int = 0
    failed: int = 0
    expired: int = 0
    interrupted: bool = False
