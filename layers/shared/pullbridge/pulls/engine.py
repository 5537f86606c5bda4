"""Pulls: page through a provider's list API (a full scan) or through what changed since the high-water
mark (an incremental pull, `pulls.schedule`), diff each record against the snapshot (`pulls.diff`), and
log exactly the changes.

- new record -> `created`; changed content -> `updated`; unchanged -> nothing is written;
- missing at the end of a complete scan -> `deleted` (a scan that fails part-way emits no deletes); an
  incremental pull emits only the deletes the provider reports;
- first scan: `created` for every record (`backfill`, limited by `max_age_days`), or a silent baseline;
- each event is committed in one transaction with its snapshot change, so a retried pull never repeats it.

A subscription has at most one pull at a time, held by a lease on the subscription record (a conditional
write on its version). A worker renews its lease while it scans; near the end of its invocation it saves
a checkpoint and the ids it has seen, and hands the lease back so the next invocation resumes. A pull
whose worker died keeps an expired lease: the scheduler marks it `error` (`timeout`) and runs the next.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pullbridge.clock import to_iso
from pullbridge.connection_records import StoredConnection, load_connection
from pullbridge.errors import PullbridgeError, PullFailed
from pullbridge.providers import get_provider
from pullbridge.providers.base import ListPage, Provider, PullSource
from pullbridge.pulls.diff import FirstScan, SnapshotDiff
from pullbridge.pulls.drafts import PullDrafts
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
    save_subscription_and_pull,
)
from pullbridge.pulls.schedule import after_pull, updates_since, wants_full_scan
from pullbridge.pulls.service import DEAD_PULL_ERROR, LEASE_SECONDS, new_pull
from pullbridge.pulls.stats import PullStats
from pullbridge.settings import OutboundSettings
from pullbridge.storage import EventDraft, Store

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
    drafts: PullDrafts


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
                error = DEAD_PULL_ERROR.to_error_object()
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
            pull = new_pull(
                subscription, now, status="running", updated_since=self._updates_since(subscription, now)
            )
            subscription.running_pull_id = pull.id
            self._hold(subscription, token, now)
            if save_subscription(self._store, subscription, expected_version=version):
                save_pull(self._store, pull)
                return self._run(subscription, pull, token, deadline)
        return None

    @staticmethod
    def _updates_since(subscription: StoredSubscription, now: float) -> float | None:
        """None when the pull due now is a full scan; else the time its incremental pull asks from."""
        mark = subscription.updates_mark
        if subscription.pull_updates_interval_seconds is None or mark is None:
            return None
        try:
            lookback = get_provider(subscription.provider).updates_lookback_seconds
        except KeyError:
            lookback = None  # an unknown provider fails the pull itself, with its error
        return None if wants_full_scan(subscription, now, lookback) else updates_since(mark)

    # -- one pull ----------------------------------------------------------------------------------------

    def _hold(self, subscription: StoredSubscription, token: str, now: float) -> None:
        subscription.lease_holder, subscription.lease_until = token, now + self._lease_seconds

    def _run(self, subscription: StoredSubscription, pull: StoredPull, token: str, deadline: float) -> str:
        connection = load_connection(self._store, subscription.connection_id)
        drafts = PullDrafts(
            subscription.connection_id,
            subscription.provider,
            subscription.collection,
            subscription.id,
            pull.id,
            self._clock,
        )
        stats = PullStats(**pull.stats)
        run = _Run(subscription, pull, connection, token, stats, self._clock(), drafts)  # type: ignore[arg-type]
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
        """Page through the list API, or what changed. True when the pull completed, False when it
        yielded at a checkpoint."""
        subscription, pull, connection = run.subscription, run.pull, run.connection
        provider = get_provider(connection.provider)
        source = self._source(run, provider)
        if pull.updated_since is not None and not provider.supports_updates(source.settings):
            # The connection's settings changed since the subscription asked: scan it all instead.
            pull.updated_since, pull.is_full_scan = None, True
            pull.name = f"{pull.provider} {pull.collection} full scan"
        if pull.resumable:  # a yield saves the seen ids with its checkpoint
            checkpoint = pull.checkpoint
            blob = self._store.load_blob(pull_pk(pull.id), "SEEN")
            seen = set(blob.decode().split("\n")) - {""} if blob else set()
        else:
            checkpoint = subscription.feed_checkpoint if pull.updated_since is None else None
            seen = set()
        pull.resumable = False
        diff = SnapshotDiff(
            connection.id,
            subscription.collection,
            lambda: self._store.load_snapshot(connection.id, subscription.collection),
            seen,
            run.stats,
        )
        feed = False
        for page in self._pages(run, provider, source, checkpoint):
            run.stats.pages += 1
            feed = feed or page.incremental
            self._take(run, page, diff)
            checkpoint = page.next_checkpoint
            if checkpoint is not None and not feed and self._clock() > deadline - self._yield_margin:
                self._yield(run, checkpoint, seen)
                return False
            self._renew_if_due(run)
        if not feed and pull.updated_since is None:
            self._log(run, [run.drafts.change(change) for change in diff.missing()])
        return True

    def _source(self, run: _Run, provider: Provider) -> PullSource:
        base_url = run.connection.api_base_url or provider.default_base_url
        if not base_url:
            raise PullFailed("bad_request", "the connection has no api_base_url", key="missing_base_url")
        return PullSource(
            collection=run.subscription.collection,
            base_url=base_url,
            credentials=run.connection.credentials,
            settings=run.connection.settings,
        )

    def _pages(
        self, run: _Run, provider: Provider, source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        http = PullHttp(
            self._http_client,
            run.stats,
            rate_limit=rate_limit_from_settings(run.connection.settings),
            request_id_header=provider.request_id_header,
            allow_private=self._settings.allow_private_urls,
            sleep=self._sleep,
        )
        if run.pull.updated_since is not None:
            return provider.updated_pages(http, source, run.pull.updated_since, checkpoint)
        return provider.list_pages(http, source, checkpoint)

    def _take(self, run: _Run, page: ListPage, diff: SnapshotDiff) -> None:
        """Log one page's changes: a feed's events as they are, else the diff against the snapshot."""
        pull = run.pull
        if page.incremental:
            pull.is_full_scan = False
            self._log(run, [run.drafts.feed_item(record, run.stats) for record in page.records])
            run.subscription.feed_checkpoint = page.next_checkpoint or run.subscription.feed_checkpoint
        elif pull.updated_since is not None:
            if page.records:  # a quiet incremental pull never reads the snapshot
                self._log(run, [run.drafts.change(change) for change in diff.updated(page.records)])
        else:
            changes, silent = diff.scanned(page.records, self._first_scan(run))
            self._log(run, [run.drafts.change(change) for change in changes])
            if silent:
                self._store.write_snapshots(silent)

    @staticmethod
    def _first_scan(run: _Run) -> FirstScan | None:
        subscription, pull = run.subscription, run.pull
        if not pull.first_scan:
            return None
        max_age = subscription.max_age_days
        return FirstScan(subscription.backfill, pull.started_at - max_age * 86_400 if max_age else None)

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
        _mark_ended(pull, error, self._clock())
        save_pull(self._store, pull)

    def _finish(self, run: _Run, failure: PullbridgeError | None) -> None:
        """End the pull and free its subscription in one write, so that no reader sees the pull ended
        while the subscription still names it running (a trigger then would be refused with 409)."""
        error = failure.to_error_object() if failure else None
        pull = run.pull
        pull.stats = run.stats.as_dict()
        _mark_ended(pull, error, self._clock())

        def close(subscription: StoredSubscription) -> None:
            subscription.running_pull_id = subscription.lease_holder = None
            subscription.lease_until = None
            subscription.last_pull_id = pull.id
            subscription.error = error
            if subscription.status != "paused":
                subscription.status = "error" if error else "subscribed"
            if error is None:
                subscription.baseline_done = True
            after_pull(subscription, pull, succeeded=error is None, now=self._clock())
            if run.connection is None or run.connection.archived_at:
                subscription.next_pull_at = None  # an archived connection's pulls stop
            subscription.feed_checkpoint = run.subscription.feed_checkpoint
            subscription.updated_at = to_iso(self._clock())

        try:
            self._update_subscription(run, close, ended=pull)
        except LeaseLost:
            save_pull(self._store, pull)  # the subscription is another worker's now, or deleted
        if self._on_finished is not None:
            self._on_finished(pull)

    def _update_subscription(
        self, run: _Run, change: Callable[[StoredSubscription], None], *, ended: StoredPull | None = None
    ) -> None:
        """Apply `change` to the subscription while this worker still holds its lease; with `ended`, save
        that pull in the same transaction."""
        for _ in range(_ATTEMPTS):
            current = load_subscription(self._store, run.subscription.id)
            if current is None or current.lease_holder != run.token or current.running_pull_id != run.pull.id:
                raise LeaseLost(run.subscription.id)
            version = current.version
            change(current)
            if (
                save_subscription_and_pull(self._store, current, ended, expected_version=version)
                if ended is not None
                else save_subscription(self._store, current, expected_version=version)
            ):
                run.subscription.version = current.version
                return
        raise LeaseLost(run.subscription.id)


def _mark_ended(pull: StoredPull, error: dict[str, Any] | None, now: float) -> None:
    pull.status = "error" if error else "success"
    pull.error = error
    pull.ended_at = now
    pull.resumable = False
    pull.checkpoint = None
