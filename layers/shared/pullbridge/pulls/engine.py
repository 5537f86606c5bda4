"""The full scan: page through a provider's list API, diff each record against the snapshot, and log
exactly the changes.

- new record -> `created`; changed content -> `updated`; unchanged -> nothing is written;
- missing at the end of a complete scan -> `deleted` (a scan that fails part-way emits no deletes);
- first scan: `created` for every record (`backfill`, limited by `max_age_days`), or a silent baseline;
- each event is committed in one transaction with its snapshot change, so a retried scan never repeats it.

A subscription has at most one pull at a time, held by a lease on the subscription record (a conditional
write on its version). A worker renews its lease while it scans; near the end of its invocation it saves
a checkpoint and the ids it has seen, and hands the lease back so the next invocation resumes. A pull
whose worker died keeps an expired lease: the scheduler marks it `error` (`timeout`) and runs the next.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pullbridge.clock import to_iso
from pullbridge.connection_records import StoredConnection, load_connection
from pullbridge.errors import PullbridgeError, PullFailed
from pullbridge.hashing import content_hash
from pullbridge.providers import get_provider
from pullbridge.providers.base import ListedRecord, PullSource
from pullbridge.pulls.http import PullHttp, rate_limit_from_settings
from pullbridge.pulls.records import (
    StoredPull,
    StoredSubscription,
    due_key,
    load_pull,
    load_subscription,
    pull_pk,
    save_pull,
    save_subscription,
)
from pullbridge.pulls.service import LEASE_SECONDS, new_pull
from pullbridge.pulls.stats import PullStats
from pullbridge.settings import OutboundSettings
from pullbridge.storage import EventDraft, SnapshotChange, Store

if TYPE_CHECKING:
    import httpx

RENEW_EVERY_SECONDS = 30.0
YIELD_MARGIN_SECONDS = 20.0
_ATTEMPTS = 5


class LeaseLost(Exception):
    """Another worker holds the subscription now, or it was deleted: stop without writing more."""


@dataclass
class _Run:
    subscription: StoredSubscription
    pull: StoredPull
    connection: StoredConnection
    token: str
    stats: PullStats
    renewed_at: float


class PullEngine:
    def __init__(
        self,
        store: Store,
        settings: OutboundSettings,
        http_client: httpx.Client,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lease_seconds: float = LEASE_SECONDS,
        yield_margin_seconds: float = YIELD_MARGIN_SECONDS,
        on_finished: Callable[[StoredPull], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._http_client = http_client
        self._clock = clock
        self._sleep = sleep
        self._lease_seconds = lease_seconds
        self._yield_margin = yield_margin_seconds
        self._on_finished = on_finished

    # -- entry points -------------------------------------------------------------------------------------

    def run_due(self, *, deadline: float, limit: int = 100) -> list[str]:
        """Advance every subscription that is due, while time remains. Returns the pulls it worked on."""
        worked = []
        for pk in self._store.query_due(due_key(self._clock(), "~"), limit=limit):
            if self._clock() > deadline - self._yield_margin:
                break
            pull_id = self.advance(pk.removeprefix("SUB#"), deadline=deadline)
            if pull_id:
                worked.append(pull_id)
        return worked

    def run_pull(self, pull_id: str, *, deadline: float) -> str | None:
        """Run a pull the API queued (its asynchronous start), unless another worker already has it."""
        pull = load_pull(self._store, pull_id)
        return self.advance(pull.subscription_id, deadline=deadline) if pull else None

    def advance(self, subscription_id: str, *, deadline: float) -> str | None:
        """Do what is due for one subscription: time out a dead pull, resume or start one, and run it."""
        for _ in range(_ATTEMPTS):
            subscription = load_subscription(self._store, subscription_id)
            if subscription is None:
                return None
            now = self._clock()
            version = subscription.version
            token = secrets.token_hex(8)
            if subscription.running_pull_id:
                lease_held = subscription.lease_holder is not None
                if lease_held and (subscription.lease_until or 0) > now:
                    return None  # a live worker has it
                pull = load_pull(self._store, subscription.running_pull_id)
                if not lease_held and pull is not None:
                    # queued by the API, or handed back at a checkpoint: claim it
                    self._hold(subscription, token, now)
                    if save_subscription(self._store, subscription, expected_version=version):
                        return self._run(subscription, pull, token, deadline)
                    continue
                # Its worker died holding the lease: the pull ends in `timeout`, and the next one runs now.
                error = PullFailed(
                    "timeout",
                    "the pull's worker stopped before finishing (its lease ran out)",
                    key="lease_expired",
                ).to_error_object()
                if pull is not None and pull.status in ("queued", "running"):
                    self._end_pull(pull, error)
                subscription.running_pull_id = subscription.lease_holder = None
                subscription.lease_until = None
                subscription.status, subscription.error = "error", error
                subscription.last_pull_id = pull.id if pull else subscription.last_pull_id
                subscription.next_pull_at = now
                save_subscription(self._store, subscription, expected_version=version)
                continue
            if (
                subscription.status == "paused"
                or subscription.next_pull_at is None
                or subscription.next_pull_at > now
            ):
                return None
            pull = new_pull(subscription, now, status="running")
            subscription.running_pull_id = pull.id
            self._hold(subscription, token, now)
            if save_subscription(self._store, subscription, expected_version=version):
                save_pull(self._store, pull)
                return self._run(subscription, pull, token, deadline)
        return None

    # -- one pull ----------------------------------------------------------------------------------------

    def _hold(self, subscription: StoredSubscription, token: str, now: float) -> None:
        subscription.lease_holder, subscription.lease_until = token, now + self._lease_seconds

    def _run(self, subscription: StoredSubscription, pull: StoredPull, token: str, deadline: float) -> str:
        connection = load_connection(self._store, subscription.connection_id)
        run = _Run(subscription, pull, connection, token, PullStats(**pull.stats), self._clock())  # type: ignore[arg-type]
        if connection is None or connection.archived_at:
            self._finish(
                run, PullFailed("bad_request", "the connection is archived", key="connection_archived")
            )
            return pull.id
        if pull.status != "running":  # a queued or resumed pull; a new one was saved running already
            pull.status = "running"
            save_pull(self._store, pull)
        try:
            finished = self._scan(run, deadline)
        except LeaseLost:
            if load_subscription(self._store, subscription.id) is None:
                # Deleted mid-scan: the pull ends here; another worker's lease would own it otherwise.
                error = PullFailed("bad_request", "the subscription was deleted", key="subscription_deleted")
                self._end_pull(pull, error.to_error_object())
            return pull.id
        except PullbridgeError as exc:
            self._finish(run, exc)
            return pull.id
        except Exception as exc:
            # Never leave a pull "running" behind an unexpected failure; the error object hides details.
            self._finish(run, PullFailed("internal", "the pull failed unexpectedly", key="internal_error"))
            raise RuntimeError(f"pull {pull.id} failed") from exc
        if finished:
            self._finish(run, None)
        return pull.id

    def _scan(self, run: _Run, deadline: float) -> bool:
        """Page through the list API. True when the scan completed, False when it yielded at a checkpoint."""
        subscription, pull, connection = run.subscription, run.pull, run.connection
        provider = get_provider(connection.provider)
        base_url = connection.api_base_url or provider.default_base_url
        if not base_url:
            raise PullFailed("bad_request", "the connection has no api_base_url", key="missing_base_url")
        source = PullSource(
            collection=subscription.collection,
            base_url=base_url,
            credentials=connection.credentials,
            settings=connection.settings,
        )
        http = PullHttp(
            self._http_client,
            run.stats,
            rate_limit=rate_limit_from_settings(connection.settings),
            request_id_header=provider.request_id_header,
            allow_private=self._settings.allow_private_urls,
            sleep=self._sleep,
        )
        checkpoint = pull.checkpoint if pull.resumable else subscription.feed_checkpoint
        seen: set[str] = set()
        if pull.resumable:  # a yield saves the seen ids with its checkpoint
            blob = self._store.load_blob(pull_pk(pull.id), "SEEN")
            seen = set(blob.decode().split("\n")) - {""} if blob else set()
        pull.resumable = False
        snapshot: dict[str, str] | None = None
        incremental = False
        for page in provider.list_pages(http, source, checkpoint):
            run.stats.pages += 1
            if page.incremental:
                incremental = True
                pull.is_full_scan = False
                self._log(run, [self._feed_draft(run, record) for record in page.records])
                subscription.feed_checkpoint = page.next_checkpoint or subscription.feed_checkpoint
            else:
                if snapshot is None:
                    snapshot = self._store.load_snapshot(connection.id, subscription.collection)
                self._diff_page(run, page.records, snapshot, seen)
            checkpoint = page.next_checkpoint
            if checkpoint is not None and not incremental and self._clock() > deadline - self._yield_margin:
                self._yield(run, checkpoint, seen)
                return False
            self._renew_if_due(run)
        if not incremental:
            if snapshot is None:
                snapshot = self._store.load_snapshot(connection.id, subscription.collection)
            gone = [record_id for record_id in snapshot if record_id not in seen]
            self._log(
                run,
                [self._draft(run, record_id, "deleted", {"id": record_id}, None, None) for record_id in gone],
            )
            run.stats.deleted += len(gone)
        return True

    def _diff_page(
        self, run: _Run, records: list[ListedRecord], snapshot: dict[str, str], seen: set[str]
    ) -> None:
        subscription = run.subscription
        oldest = (
            run.pull.started_at - subscription.max_age_days * 86_400 if subscription.max_age_days else None
        )
        drafts, silent = [], []
        for record in records:
            run.stats.records_seen += 1
            seen.add(record.record_id)
            digest = content_hash(record.data)
            known = snapshot.get(record.record_id)
            if known == digest:
                run.stats.unchanged += 1
                continue
            change = SnapshotChange(run.connection.id, subscription.collection, record.record_id, digest)
            snapshot[record.record_id] = digest
            if known is not None:
                drafts.append(self._draft(run, record.record_id, "updated", record.data, None, change))
                run.stats.updated += 1
            elif run.pull.first_scan and (
                not subscription.backfill
                or (oldest is not None and record.created_at is not None and record.created_at < oldest)
            ):
                silent.append(change)  # the silent baseline: remembered, not announced
                run.stats.unchanged += 1
            else:
                drafts.append(
                    self._draft(run, record.record_id, "created", record.data, record.created_at, change)
                )
                run.stats.created += 1
        self._log(run, drafts)
        if silent:
            self._store.write_snapshots(silent)

    def _draft(
        self,
        run: _Run,
        record_id: str,
        action: str,
        data: Any,
        occurred_at: float | None,
        snapshot: SnapshotChange | None,
    ) -> EventDraft:
        collection = run.subscription.collection
        if snapshot is None and action == "deleted":
            snapshot = SnapshotChange(run.connection.id, collection, record_id, None)
        return EventDraft(
            run.connection.id,
            self._document(run, f"{collection}.{action}", action, record_id, data, occurred_at),
            snapshot=snapshot,
        )

    def _feed_draft(self, run: _Run, record: ListedRecord) -> EventDraft:
        run.stats.records_seen += 1
        action = record.action if record.action in ("created", "updated", "deleted") else None
        setattr(run.stats, action or "updated", getattr(run.stats, action or "updated") + 1)
        event_type = record.type or f"{run.subscription.collection}.{action or 'updated'}"
        return EventDraft(
            run.connection.id,
            self._document(run, event_type, action, record.record_id, record.data, record.occurred_at),
            # A remote event id is its delivery id: a feed page read twice is logged once.
            delivery_id=f"feed:{run.subscription.id}:{record.record_id}",
        )

    def _document(
        self,
        run: _Run,
        event_type: str,
        action: str | None,
        record_id: str,
        data: Any,
        occurred_at: float | None,
    ) -> dict[str, Any]:
        return {
            "connection_id": run.connection.id,
            "provider": run.connection.provider,
            "collection": run.subscription.collection,
            "type": event_type,
            "action": action,
            "record_id": record_id,
            "source": "pull",
            "pull_id": run.pull.id,
            "occurred_at": to_iso(occurred_at) if occurred_at is not None else None,
            "received_at": to_iso(self._clock()),
            "data": data,
        }

    def _log(self, run: _Run, drafts: list[EventDraft]) -> None:
        if drafts:
            result = self._store.append(run.subscription.tenant_id, run.connection.id, drafts)
            run.pull.collect(result.event_ids)

    # -- leases, checkpoints, endings ----------------------------------------------------------------------

    def _renew_if_due(self, run: _Run) -> None:
        now = self._clock()
        if now - run.renewed_at < RENEW_EVERY_SECONDS:
            return
        self._update_subscription(run, lambda s: setattr(s, "lease_until", now + self._lease_seconds))
        run.renewed_at = now
        run.pull.stats = run.stats.as_dict()
        save_pull(self._store, run.pull)  # progress is visible while the scan runs

    def _yield(self, run: _Run, checkpoint: str, seen: set[str]) -> None:
        """Save where the scan is and hand the lease back, so the next invocation resumes at once."""
        pull = run.pull
        self._store.save_blob(pull_pk(pull.id), "SEEN", "\n".join(sorted(seen)).encode())
        pull.checkpoint, pull.resumable = checkpoint, True
        pull.stats = run.stats.as_dict()
        save_pull(self._store, pull)
        now = self._clock()

        def hand_back(subscription: StoredSubscription) -> None:
            subscription.lease_holder, subscription.lease_until = None, now

        self._update_subscription(run, hand_back)

    def _end_pull(self, pull: StoredPull, error: dict[str, Any] | None) -> None:
        pull.status = "error" if error else "success"
        pull.error = error
        pull.ended_at = self._clock()
        pull.resumable = False
        pull.checkpoint = None
        save_pull(self._store, pull)

    def _finish(self, run: _Run, failure: PullbridgeError | None) -> None:
        error = failure.to_error_object() if failure else None
        run.pull.stats = run.stats.as_dict()
        self._end_pull(run.pull, error)
        pull = run.pull
        if self._on_finished is not None:
            self._on_finished(pull)

        def close(subscription: StoredSubscription) -> None:
            subscription.running_pull_id = subscription.lease_holder = None
            subscription.lease_until = None
            subscription.last_pull_id = pull.id
            subscription.error = error
            if subscription.status != "paused":
                subscription.status = "error" if error else "subscribed"
            if error is None:
                subscription.baseline_done = True
            subscription.next_pull_at = pull.started_at + subscription.full_sync_interval_seconds
            if run.connection is None or run.connection.archived_at:
                subscription.next_pull_at = None  # an archived connection's pulls stop
            subscription.feed_checkpoint = run.subscription.feed_checkpoint
            subscription.updated_at = to_iso(self._clock())

        try:
            self._update_subscription(run, close)
        except LeaseLost:
            return

    def _update_subscription(self, run: _Run, change: Callable[[StoredSubscription], None]) -> None:
        """Apply `change` to the subscription while this worker still holds its lease."""
        for _ in range(_ATTEMPTS):
            current = load_subscription(self._store, run.subscription.id)
            if current is None or current.lease_holder != run.token or current.running_pull_id != run.pull.id:
                raise LeaseLost(run.subscription.id)
            version = current.version
            change(current)
            if save_subscription(self._store, current, expected_version=version):
                run.subscription.version = current.version
                return
        raise LeaseLost(run.subscription.id)
