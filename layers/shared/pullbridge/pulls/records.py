"""Subscriptions and pull records: how they are stored, and how the API shows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pullbridge.clock import to_iso
from pullbridge.pulls.models import Pull, PullStatsModel, Subscription, error_detail
from pullbridge.pulls.stats import PullStats
from pullbridge.storage import ControlWrite, Store, keys

COLLECTED_IDS_CAP = 1000


def due_key(moment: float, record_id: str) -> str:
    """A sort key that orders by time as text: zero-padded epoch seconds."""
    return f"{moment:017.3f}#{record_id}"


@dataclass
class StoredSubscription:
    id: str
    tenant_id: str
    connection_id: str
    provider: str
    collection: str
    full_sync_interval_seconds: int
    backfill: bool
    max_age_days: int | None
    created_at: str
    updated_at: str
    status: str = "subscribed"
    next_pull_at: float | None = None
    last_pull_id: str | None = None
    error: dict[str, Any] | None = None
    version: int = 1
    baseline_done: bool = False
    feed_checkpoint: str | None = None
    running_pull_id: str | None = None
    # The lease: who runs `running_pull_id` and until when. No holder means the pull waits to be claimed
    # (queued by the API, or handed back at a checkpoint) since `lease_until`.
    lease_holder: str | None = None
    lease_until: float | None = None
    # Incremental pulls (`pulls.schedule`): their interval (None: off), when the next full scan is due
    # (None: with the next pull), and the high-water mark, the start of the last pull that succeeded.
    pull_updates_interval_seconds: int | None = None
    next_full_scan_at: float | None = None
    updates_mark: float | None = None

    @property
    def due_at(self) -> float | None:
        """When the scheduler must next look at it: while a pull is in progress, when its lease ends."""
        if self.running_pull_id is not None:
            return self.lease_until or 0.0
        return None if self.status == "paused" else self.next_pull_at

    def public(self) -> Subscription:
        return Subscription(
            id=self.id,
            connection_id=self.connection_id,
            provider=self.provider,
            collection=self.collection,
            full_sync_interval_seconds=self.full_sync_interval_seconds,
            pull_updates_interval_seconds=self.pull_updates_interval_seconds,
            backfill=self.backfill,
            max_age_days=self.max_age_days,
            status=self.status,
            next_pull_at=to_iso(self.next_pull_at) if self.next_pull_at is not None else None,
            last_pull_id=self.last_pull_id,
            error=error_detail(self.error),
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


@dataclass
class StoredPull:
    id: str
    tenant_id: str
    subscription_id: str
    connection_id: str
    provider: str
    collection: str
    name: str
    started_at: float
    first_scan: bool
    status: str = "queued"
    is_full_scan: bool = True
    ended_at: float | None = None
    collected_event_ids: list[str] = field(default_factory=list)
    collected_events_count: int = 0
    stats: dict[str, int] = field(default_factory=lambda: PullStats().as_dict())
    error: dict[str, Any] | None = None
    checkpoint: str | None = None
    resumable: bool = False
    # An incremental pull asks for the changes since this time; None for a full scan (or a feed's pull).
    updated_since: float | None = None

    def collect(self, event_ids: list[str]) -> None:
        room = COLLECTED_IDS_CAP - len(self.collected_event_ids)
        self.collected_event_ids.extend(event_ids[: max(room, 0)])
        self.collected_events_count += len(event_ids)

    def public(self) -> Pull:
        return Pull(
            id=self.id,
            external_event_subscription_id=self.subscription_id,
            connection_id=self.connection_id,
            provider=self.provider,
            collection=self.collection,
            name=self.name,
            status=self.status,
            is_full_scan=self.is_full_scan,
            start_datetime=to_iso(self.started_at),
            end_datetime=to_iso(self.ended_at) if self.ended_at is not None else None,
            collected_event_ids=self.collected_event_ids,
            collected_events_count=self.collected_events_count,
            stats=PullStatsModel.model_validate(self.stats),
            error=error_detail(self.error),
        )


def _from(cls: type[Any], document: Mapping[str, Any]) -> Any:
    return cls(**document)


subscription_pk = keys.subscription_pk
pull_pk = keys.pull_pk


def load_subscription(store: Store, subscription_id: str) -> StoredSubscription | None:
    document = store.get_control(subscription_pk(subscription_id), keys.SUBSCRIPTION_SK)
    return _from(StoredSubscription, document) if document else None


def save_subscription(
    store: Store, subscription: StoredSubscription, *, expected_version: int | None
) -> bool:
    """Write it; `expected_version` None means "only if new". Bumps the version it writes."""
    write = _subscription_write(subscription, expected_version)
    return store.put_control(
        write.pk,
        write.sk,
        write.document,
        index=write.index,
        due_at=write.due_at,
        attributes=write.attributes,
        only_if_new=write.only_if_new,
        expected_version=write.expected_version,
    )


def save_subscription_and_pull(
    store: Store, subscription: StoredSubscription, pull: StoredPull, *, expected_version: int
) -> bool:
    """Write both in one transaction, the subscription only at `expected_version`: an ended pull and
    the subscription it frees are seen together, never one without the other."""
    written = store.put_controls([_subscription_write(subscription, expected_version), _pull_write(pull)])
    if not written:
        subscription.version = expected_version
    return written


def _subscription_write(subscription: StoredSubscription, expected_version: int | None) -> ControlWrite:
    if expected_version is not None:
        subscription.version = expected_version + 1
    due = subscription.due_at
    return ControlWrite(
        subscription_pk(subscription.id),
        keys.SUBSCRIPTION_SK,
        dict(subscription.__dict__),
        index=(
            keys.subscriptions_index(subscription.tenant_id),
            f"{subscription.created_at}#{subscription.id}",
        ),
        due_at=due_key(due, subscription.id) if due is not None else None,
        attributes={"version": subscription.version},
        only_if_new=expected_version is None,
        expected_version=expected_version,
    )


def load_pull(store: Store, pull_id: str) -> StoredPull | None:
    document = store.get_control(pull_pk(pull_id), keys.PULL_SK)
    return _from(StoredPull, document) if document else None


def save_pull(store: Store, pull: StoredPull) -> None:
    write = _pull_write(pull)
    store.put_control(write.pk, write.sk, write.document, index=write.index, attributes=write.attributes)


def _pull_write(pull: StoredPull) -> ControlWrite:
    return ControlWrite(
        pull_pk(pull.id),
        keys.PULL_SK,
        dict(pull.__dict__),
        index=(keys.pulls_index(pull.tenant_id), f"{to_iso(pull.started_at)}#{pull.id}"),
        attributes={
            "subscription_id": pull.subscription_id,
            "connection_id": pull.connection_id,
            "provider": pull.provider,
            "status": pull.status,
        },
    )
