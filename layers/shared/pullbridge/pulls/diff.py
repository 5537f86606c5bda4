"""The diff of listed records against the snapshot: which become events, and which snapshot changes go
with them. No I/O; the engine logs what it returns.

| the record | full scan | incremental pull |
|---|---|---|
| not in the snapshot | `created` (first scan: only with `backfill`, and not older than `max_age_days`) | `created` |
| in it, other hash | `updated` | `updated` |
| in it, same hash | nothing | nothing |
| a delete the provider reports | — | `deleted`, if it is in the snapshot |
| in the snapshot, not seen by a complete scan | `deleted` | nothing: an incremental pull sees only what changed |

In an incremental pull a record may come more than once (newest first, Stripe's events hold every state of
a record): the first time counts, the others are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pullbridge.hashing import content_hash
from pullbridge.providers.base import ListedRecord
from pullbridge.pulls.stats import PullStats
from pullbridge.storage import SnapshotChange


@dataclass(frozen=True)
class Change:
    """One event a pull logs, with the snapshot change committed in the same transaction."""

    record_id: str
    action: str
    """`created`, `updated` or `deleted`."""
    data: Any
    occurred_at: float | None
    snapshot: SnapshotChange


@dataclass(frozen=True)
class FirstScan:
    """How a first full scan announces what it finds: all of it (`backfill`), records created since
    `oldest` (`max_age_days`), or nothing (a silent baseline)."""

    backfill: bool
    oldest: float | None

    def announces(self, record: ListedRecord) -> bool:
        if not self.backfill:
            return False
        return self.oldest is None or record.created_at is None or record.created_at >= self.oldest


class SnapshotDiff:
    """One pull's diff. The snapshot (record id -> content hash) is loaded at its first use and kept up to
    date as changes are made; `seen` holds the record ids the pull has read (saved with a checkpoint)."""

    def __init__(
        self,
        connection_id: str,
        collection: str,
        load_snapshot: Callable[[], dict[str, str]],
        seen: set[str],
        stats: PullStats,
    ) -> None:
        self._connection_id = connection_id
        self._collection = collection
        self._load_snapshot = load_snapshot
        self._snapshot: dict[str, str] | None = None
        self.seen = seen
        self._stats = stats

    @property
    def snapshot(self) -> dict[str, str]:
        if self._snapshot is None:
            self._snapshot = self._load_snapshot()
        return self._snapshot

    def scanned(
        self, records: list[ListedRecord], first_scan: FirstScan | None
    ) -> tuple[list[Change], list[SnapshotChange]]:
        """A full scan's page: its events, and the snapshot changes a first scan makes silently."""
        changes: list[Change] = []
        silent: list[SnapshotChange] = []
        for record in records:
            self._stats.records_seen += 1
            self.seen.add(record.record_id)
            change = self._compare(record)
            if change is None:
                self._stats.unchanged += 1
            elif change.action == "created" and first_scan is not None and not first_scan.announces(record):
                silent.append(change.snapshot)  # the silent baseline: remembered, not announced
                self._stats.unchanged += 1
            else:
                changes.append(change)
                self._count(change.action)
        return changes, silent

    def updated(self, records: list[ListedRecord]) -> list[Change]:
        """An incremental pull's page: what changed, and the deletes the provider reports."""
        changes: list[Change] = []
        for record in records:
            self._stats.records_seen += 1
            if record.record_id in self.seen:
                self._stats.unchanged += 1  # an older state of a record this pull has read
                continue
            self.seen.add(record.record_id)
            change = self._reported_delete(record) if record.action == "deleted" else self._compare(record)
            if change is None:
                self._stats.unchanged += 1
            else:
                changes.append(change)
                self._count(change.action)
        return changes

    def missing(self) -> list[Change]:
        """At the end of a complete full scan: what the snapshot holds and the scan did not see."""
        gone = [record_id for record_id in self.snapshot if record_id not in self.seen]
        self._stats.deleted += len(gone)
        return [self._delete(record_id, {"id": record_id}, None) for record_id in gone]

    def _compare(self, record: ListedRecord) -> Change | None:
        digest = content_hash(record.data)
        known = self.snapshot.get(record.record_id)
        if known == digest:
            return None
        self.snapshot[record.record_id] = digest
        snapshot = SnapshotChange(self._connection_id, self._collection, record.record_id, digest)
        if known is not None:
            return Change(record.record_id, "updated", record.data, None, snapshot)
        return Change(record.record_id, "created", record.data, record.created_at, snapshot)

    def _reported_delete(self, record: ListedRecord) -> Change | None:
        if record.record_id not in self.snapshot:
            return None  # never known, or its delete was logged already
        return self._delete(record.record_id, record.data, record.occurred_at)

    def _delete(self, record_id: str, data: Any, occurred_at: float | None) -> Change:
        self.snapshot.pop(record_id, None)
        snapshot = SnapshotChange(self._connection_id, self._collection, record_id, None)
        return Change(record_id, "deleted", data, occurred_at, snapshot)

    def _count(self, action: str) -> None:
        setattr(self._stats, action, getattr(self._stats, action) + 1)
