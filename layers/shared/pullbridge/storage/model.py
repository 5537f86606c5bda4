"""What the storage package takes and gives: drafts to log, what was logged, what a read found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pullbridge.storage.attributes import Item


@dataclass(frozen=True)
class SnapshotChange:
    """The full-scan snapshot of one record: its content hash, or None once it is deleted."""

    connection_id: str
    collection: str
    record_id: str
    content_hash: str | None


@dataclass(frozen=True)
class RecordChange:
    """A record's new state, as an event shows it: its object, or a delete (data as last seen)."""

    connection_id: str
    collection: str
    record_id: str
    data: Any
    deleted: bool = False
    upstream_updated_at: str | None = None
    version: float | None = None
    """The provider's own order of this object's states (e.g. its `updated_at`, as epoch seconds). With
    one, the write lands only if the record holds no newer version: an older delivery is stale."""
    check_only: bool = False
    """A delivery that tells of a change without the object (HubSpot's): only its version is checked
    against the record's, which it leaves as it is."""


@dataclass(frozen=True)
class StoredRecord:
    connection_id: str
    collection: str
    record_id: str
    data: Any
    deleted: bool
    first_seen_at: str
    changed_at: str
    upstream_updated_at: str | None
    last_event_id: str


@dataclass(frozen=True)
class EventDraft:
    """An event ready to be logged; the log gives it an id and positions."""

    connection_id: str
    document: Mapping[str, Any]
    """The public event object without `id`."""
    delivery_id: str | None = None
    """Provider delivery id; events sharing one are stored once. None for pull events."""
    snapshot: SnapshotChange | None = None
    """Written in the same transaction as the event, so the snapshot never runs ahead of the log."""
    record: RecordChange | None = None
    """The record's new state, in the same transaction: a record and its `last_event_id` agree."""

    @property
    def transaction_items(self) -> int:
        return 2 + (self.delivery_id is not None) + (self.snapshot is not None) + (self.record is not None)


@dataclass(frozen=True)
class LoggedEvent:
    position: int
    document: dict[str, Any]


@dataclass
class AppendResult:
    event_ids: list[str] = field(default_factory=list)
    duplicate_event_ids: list[str] = field(default_factory=list)
    duplicates: int = 0


@dataclass(frozen=True)
class ConnectionGuard:
    """The connection state a webhook was verified against; the commit fails if it has changed since."""

    connection_id: str
    version: int


class ConnectionChanged(Exception):
    """The guarded connection was archived or edited between verification and commit."""


@dataclass
class LogRead:
    events: list[LoggedEvent]
    position: int
    """Every position up to here is resolved: committed, tombstoned or expired."""
    exhausted: bool
    """True when nothing more is readable now (the end of the log, or a write still in flight)."""


@dataclass(frozen=True)
class LogRow:
    position: int
    kind: str
    prev_at_ms: int
    expires_at: int
    item: Item


# --- consumers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InFlight:
    """One event a consumer has taken from the log and not yet settled (acked or dead-lettered)."""

    position: int
    """Its position in the tenant log, which its event id carries: the item's key."""
    scope_position: int
    """Its position in the log the consumer reads (the tenant log, or its connection's log)."""
    event_id: str
    record_key: str | None
    state: str
    """"leased" (out with a worker until `due_at`) or "waiting" (may go out at `due_at`)."""
    due_at: float
    delivery_count: int
    lease_seq: int
    """Bumped by every lease and every nack: an ack id names one, so a stale one never settles it."""
    expires_at: int
    """When its event leaves the log (retention): the item goes with it."""
    received_at: float
    """When its event was received: the age of the oldest event not yet delivered is the consumer's lag."""
    group: int | None = None
    """The first position of the take whose one item holds it with the take's other events (a lease
    group: `consumer_items.group_item`), or None when it has an item of its own."""


@dataclass(frozen=True)
class ConsumerHead:
    """Where a consumer is in its log. `version` orders every move of the position."""

    position: int
    version: int
    counted_to: int
    """`pending` counts the matching events in (`position`, `counted_to`]."""
    pending: int


@dataclass(frozen=True)
class ConsumerState:
    head: ConsumerHead
    in_flight: list[InFlight]


@dataclass(frozen=True)
class DeadLetterRow:
    item: InFlight
    reason: str
    dead_at: float
    event: dict[str, Any]
