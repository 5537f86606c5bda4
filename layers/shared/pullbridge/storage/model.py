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
class EventDraft:
    """An event ready to be logged; the log gives it an id and positions."""

    connection_id: str
    document: Mapping[str, Any]
    """The public event object without `id`."""
    delivery_id: str | None = None
    """Provider delivery id; events sharing one are stored once. None for pull events."""
    snapshot: SnapshotChange | None = None
    """Written in the same transaction as the event, so the snapshot never runs ahead of the log."""

    @property
    def transaction_items(self) -> int:
        return 2 + (self.delivery_id is not None) + (self.snapshot is not None)


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
