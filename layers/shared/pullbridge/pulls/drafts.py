"""The events a pull logs: each change of the diff as an event with its snapshot change (one transaction),
and each item of an events feed as it is. The one place a pull's event documents are made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pullbridge.clock import to_iso
from pullbridge.providers import get_provider
from pullbridge.providers.base import ListedRecord
from pullbridge.pulls.diff import Change
from pullbridge.pulls.stats import PullStats
from pullbridge.storage import EventDraft, RecordChange


@dataclass(frozen=True)
class PullDrafts:
    """Drafts for one pull: of `subscription_id`'s `collection` on `connection_id`, by `pull_id`."""

    connection_id: str
    provider: str
    collection: str
    subscription_id: str
    pull_id: str
    clock: Callable[[], float]

    def change(self, change: Change) -> EventDraft:
        """The event of one change of the diff, committed with the change's snapshot write."""
        document = self._document(
            f"{self.collection}.{change.action}",
            change.action,
            change.record_id,
            change.data,
            change.occurred_at,
        )
        return EventDraft(self.connection_id, document, snapshot=change.snapshot, record=self._record(change))

    def _record(self, change: Change) -> RecordChange:
        """The record as the list API shows it now (a delete keeps its last data as a tombstone). Where
        the provider versions its records, a scan that read an older state than a webhook has since
        delivered leaves the newer one (the event is logged stale)."""
        version = get_provider(self.provider).record_version(change.data) if change.data is not None else None
        return RecordChange(
            self.connection_id,
            self.collection,
            change.record_id,
            change.data,
            deleted=change.action == "deleted",
            upstream_updated_at=to_iso(version) if version is not None else None,
            version=version,
        )

    def feed_item(self, record: ListedRecord, stats: PullStats) -> EventDraft:
        """A remote event of a feed, logged as it is (counted by its action, `updated` when it has none)."""
        stats.records_seen += 1
        action = record.action if record.action in ("created", "updated", "deleted") else None
        setattr(stats, action or "updated", getattr(stats, action or "updated") + 1)
        event_type = record.type or f"{self.collection}.{action or 'updated'}"
        return EventDraft(
            self.connection_id,
            self._document(event_type, action, record.record_id, record.data, record.occurred_at),
            # A remote event id is its delivery id: a feed page read twice is logged once.
            delivery_id=f"feed:{self.subscription_id}:{record.record_id}",
        )

    def _document(
        self, event_type: str, action: str | None, record_id: str, data: Any, occurred_at: float | None
    ) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "provider": self.provider,
            "collection": self.collection,
            "type": event_type,
            "action": action,
            "record_id": record_id,
            "source": "pull",
            "pull_id": self.pull_id,
            "occurred_at": to_iso(occurred_at) if occurred_at is not None else None,
            "received_at": to_iso(self.clock()),
            "data": data,
        }
