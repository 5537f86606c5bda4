"""The full-scan engine against moto: the diff, first scans, failures, checkpoints, leases and timeouts.

The provider here is an in-memory list API (its connector is replaced), so these tests pin the engine's
own behaviour; `test_pull_end_to_end.py` and `test_pull_incremental.py` run the real connectors against
fake HTTP servers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest

from pullbridge.connections import StoredConnection, create_connection
from pullbridge.errors import Conflict, PullFailed
from pullbridge.models import ConnectionCreate
from pullbridge.providers.base import ListedRecord, ListPage, PullSource
from pullbridge.pulls import engine as engine_module
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import load_pull, load_subscription
from pullbridge.pulls.service import create_subscription, trigger_pull
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.integration.conftest import counting

TENANT = "t_alpha"


@dataclass
class ListApi:
    """An upstream collection served a few records a page, with a failure switch. Changes made with `put`
    and `remove` happen at `clock()`; incremental pulls ask for them either as Stripe does (`"events"`:
    every change since, newest first, deletes reported) or as the other list APIs do (`"list"`: the
    records updated since, as they are now; a delete is not reported). Deleting from `records` directly
    is a delete no incremental pull hears of."""

    name: ClassVar[str] = "stripe"
    collections: ClassVar[frozenset[str]] = frozenset({"customers"})
    webhook_matches_list_representation: ClassVar[bool] = True
    max_page_size: ClassVar[int] = 3
    default_base_url: ClassVar[str | None] = "https://api.example.com"
    request_id_header: ClassVar[str | None] = "Request-Id"
    updates_lookback_seconds: ClassVar[float | None] = None

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_on_page: int | None = None
    pages_served: int = 0
    clock: Callable[[], float] = time.time
    style: str = "events"
    changes: list[tuple[float, str, dict[str, Any] | None]] = field(default_factory=list)
    updated_at: dict[str, float] = field(default_factory=dict)
    updates_asked: list[float] = field(default_factory=list)

    def put(self, record_id: str, **fields: Any) -> None:
        record = {"id": record_id, "created": fields.pop("created", 1_700_000_000), **fields}
        self.records[record_id] = record
        self._changed(record_id, dict(record))

    def remove(self, record_id: str) -> None:
        if self.records.pop(record_id, None) is not None:
            self._changed(record_id, None)

    def _changed(self, record_id: str, state: dict[str, Any] | None) -> None:
        now = self.clock()
        self.updated_at[record_id] = now
        self.changes.append((now, record_id, state))

    def list_pages(self, http: Any, source: PullSource, checkpoint: str | None) -> Iterator[ListPage]:
        ids = sorted(self.records)
        yield from self._serve(
            [ListedRecord(i, dict(self.records[i]), created_at=self.records[i]["created"]) for i in ids],
            checkpoint,
        )

    def supports_updates(self, settings: Any) -> bool:
        return True

    def updated_pages(
        self, http: Any, source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        self.updates_asked.append(since)
        if self.style == "events":
            found = [
                ListedRecord(i, state or {"id": i}, action=None if state else "deleted")
                for moment, i, state in reversed(self.changes)
                if moment >= since
            ]
        else:
            found = [
                ListedRecord(i, dict(self.records[i]), created_at=self.records[i]["created"])
                for i in sorted(self.records)
                if self.updated_at.get(i, 0) >= since
            ]
        yield from self._serve(found, checkpoint)

    def _serve(self, records: list[ListedRecord], checkpoint: str | None) -> Iterator[ListPage]:
        start = int(checkpoint or 0)
        if start >= len(records):
            if self.fail_on_page == 1:
                raise PullFailed("bad_gateway", "upstream answered 500", data={"status_code": 500})
            self.pages_served += 1
            yield ListPage([], None)  # an empty listing is one empty page
            return
        for page_number, offset in enumerate(range(start, len(records), self.max_page_size), start=1):
            if self.fail_on_page == page_number:
                raise PullFailed("bad_gateway", "upstream answered 500", data={"status_code": 500})
            self.pages_served += 1
            more = offset + self.max_page_size < len(records)
            yield ListPage(
                records[offset : offset + self.max_page_size],
                next_checkpoint=str(offset + self.max_page_size) if more else None,
            )


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> ListApi:
    api = ListApi()
    monkeypatch.setattr(engine_module, "get_provider", lambda name: api)
    return api


@pytest.fixture
def connection(store: Store, settings: ApiSettings) -> StoredConnection:
    request = ConnectionCreate(provider="stripe", name="acct", credentials={"api_key": "sk_test_x"})
    return create_connection(store, settings, TENANT, request)


@pytest.fixture
def engine(store: Store, settings: ApiSettings) -> PullEngine:
    return PullEngine(store, settings, httpx.Client(), yield_margin_seconds=0)


def _subscribe(store: Store, connection: StoredConnection, **options: Any) -> str:
    request = SubscriptionCreate(connection_id=connection.id, collection="customers", **options)
    return create_subscription(store, TENANT, request).id


def _scan(engine: PullEngine, store: Store, subscription_id: str, *, deadline: float | None = None) -> Any:
    """Make the subscription due now and run one pull to its end (or its checkpoint)."""
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    if subscription.running_pull_id is None:
        trigger_pull(store, TENANT, subscription_id)
    pull_id = engine.advance(subscription_id, deadline=deadline or time.time() + 600)
    assert pull_id is not None
    return load_pull(store, pull_id)


def _pull_events(store: Store) -> list[dict[str, Any]]:
    return [e.document for e in store.read_log(TENANT, None, 0, 10_000).events]


def _changes(store: Store, pull_id: str) -> list[tuple[str, str]]:
    return [(e["type"], e["record_id"]) for e in _pull_events(store) if e["pull_id"] == pull_id]


def test_a_first_scan_with_backfill_announces_every_record(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    for record_id in ("a", "b", "c", "d"):
        upstream.put(record_id, email=f"{record_id}@example.com")
    pull = _scan(engine, store, _subscribe(store, connection))
    assert pull.status == "success"
    assert sorted(_changes(store, pull.id)) == [("customers.created", r) for r in "abcd"]
    assert (pull.stats["created"], pull.stats["pages"], pull.collected_events_count) == (4, 2, 4)
    event = _pull_events(store)[0]
    assert (event["source"], event["pull_id"], event["action"]) == ("pull", pull.id, "created")


def test_an_unchanged_scan_emits_nothing_and_writes_no_event_or_snapshot(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    for record_id in "abcdefg":
        upstream.put(record_id)
    subscription_id = _subscribe(store, connection)
    _scan(engine, store, subscription_id)
    with counting(store._client) as calls:
        pull = _scan(engine, store, subscription_id)
    assert _changes(store, pull.id) == []
    assert pull.stats["unchanged"] == 7
    assert calls.written_outside("PULL#", "SUB#", "CONNHEALTH#") == []  # no event, record or snapshot
    assert {pk.split("#")[0] for pk in calls.written} == {"PULL", "SUB"}
    # One transaction, of two control records: the pull's end with its subscription's release
    assert calls.names.count("TransactWriteItems") == 1
    assert "BatchWriteItem" not in calls.names
    # Writes are O(1): the trigger, the lease, the pull record's states and the subscription's close
    assert calls.names.count("PutItem") <= 7


def test_changes_and_deletes_are_emitted_exactly(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    for record_id in "abcde":
        upstream.put(record_id, name=record_id)
    subscription_id = _subscribe(store, connection)
    _scan(engine, store, subscription_id)
    upstream.put("b", name="B")
    del upstream.records["d"]
    upstream.put("f", name="f")
    pull = _scan(engine, store, subscription_id)
    assert sorted(_changes(store, pull.id)) == [
        ("customers.created", "f"),
        ("customers.deleted", "d"),
        ("customers.updated", "b"),
    ]
    assert (pull.stats["created"], pull.stats["updated"], pull.stats["deleted"], pull.stats["unchanged"]) == (
        1,
        1,
        1,
        3,
    )


def test_a_scan_failing_part_way_ends_in_error_and_emits_no_delete(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    for record_id in "abcdefgh":
        upstream.put(record_id)
    subscription_id = _subscribe(store, connection)
    _scan(engine, store, subscription_id)
    del upstream.records["h"]  # would be a delete, but only a complete scan may say so
    upstream.put("a", name="changed")
    upstream.fail_on_page = 2
    pull = _scan(engine, store, subscription_id)
    assert pull.status == "error"
    assert pull.error["type"] == "bad_gateway"
    assert pull.error["data"] == {"status_code": 500}
    assert _changes(store, pull.id) == [("customers.updated", "a")]
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    assert (subscription.status, subscription.error["type"]) == ("error", "bad_gateway")
    # The next complete scan emits the delete, and does not repeat the update
    upstream.fail_on_page = None
    retry = _scan(engine, store, subscription_id)
    assert _changes(store, retry.id) == [("customers.deleted", "h")]
    assert load_subscription(store, subscription_id).status == "subscribed"  # type: ignore[union-attr]


def test_a_first_scan_without_backfill_is_a_silent_baseline(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    for record_id in "abc":
        upstream.put(record_id)
    subscription_id = _subscribe(store, connection, backfill=False)
    first = _scan(engine, store, subscription_id)
    assert _changes(store, first.id) == []
    upstream.put("d")
    second = _scan(engine, store, subscription_id)
    assert _changes(store, second.id) == [("customers.created", "d")]


def test_max_age_days_limits_the_backfill_by_creation_time(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    upstream.put("old", created=time.time() - 10 * 86_400)
    upstream.put("new", created=time.time() - 86_400)
    pull = _scan(engine, store, _subscribe(store, connection, max_age_days=3))
    assert _changes(store, pull.id) == [("customers.created", "new")]


def test_a_long_scan_continues_from_its_checkpoint_in_the_next_invocation(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    for index in range(10):
        upstream.put(f"r{index:02d}")
    subscription_id = _subscribe(store, connection)
    _scan(engine, store, subscription_id)
    del upstream.records["r09"]
    upstream.put("r00", name="changed")
    # Given invocations with almost no time: each does one page, then saves a checkpoint and yields
    invocations, pull = 0, None
    while True:
        invocations += 1
        pull = _scan(engine, store, subscription_id, deadline=time.time())
        if pull.status != "running":
            break
    assert invocations == 3  # 9 records, 3 a page
    assert pull.status == "success"
    assert sorted(_changes(store, pull.id)) == [("customers.deleted", "r09"), ("customers.updated", "r00")]
    assert pull.stats["pages"] == 3
    assert upstream.pages_served == 4 + 3  # each page was read once


def test_one_subscription_runs_one_pull_at_a_time(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    upstream.put("a")
    subscription_id = _subscribe(store, connection)
    queued = trigger_pull(store, TENANT, subscription_id)
    with pytest.raises(Conflict) as conflict:
        trigger_pull(store, TENANT, subscription_id)
    assert conflict.value.data == {"pull_id": queued.id}
    # Two workers race for the queued pull: exactly one runs it
    results: list[str | None] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        results.append(engine.advance(subscription_id, deadline=time.time() + 60))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(queued.id) == 1
    assert len(_changes(store, queued.id)) == 1


def test_a_pull_whose_worker_died_times_out_and_the_next_one_runs(
    store: Store, settings: ApiSettings, upstream: ListApi, connection: StoredConnection
) -> None:
    upstream.put("a")
    subscription_id = _subscribe(store, connection)
    # Given a worker that claimed the pull and died: its lease is left to run out
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    dead = trigger_pull(store, TENANT, subscription_id)
    from pullbridge.pulls.records import save_subscription

    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    subscription.lease_holder, subscription.lease_until = "dead-worker", time.time() - 1
    assert save_subscription(store, subscription, expected_version=subscription.version)
    # When the scheduler next looks at it
    engine = PullEngine(store, settings, httpx.Client(), yield_margin_seconds=0)
    worked = engine.run_due(deadline=time.time() + 60)
    # Then the dead pull ends in `timeout`, and a new pull runs
    timed_out = load_pull(store, dead.id)
    assert timed_out is not None
    assert (timed_out.status, timed_out.error["type"]) == ("error", "timeout")  # type: ignore[index]
    [next_pull_id] = worked
    assert next_pull_id != dead.id
    assert load_pull(store, next_pull_id).status == "success"  # type: ignore[union-attr]


def test_a_trigger_that_takes_over_from_a_dead_worker_ends_its_pull_in_timeout(
    store: Store, settings: ApiSettings, upstream: ListApi, connection: StoredConnection
) -> None:
    # Found by the soak (bench/soak): pulls left `queued` or `running` for good, each orphaned by a
    # trigger that took the subscription over once a dead worker's lease ran out.
    upstream.put("a")
    subscription_id = _subscribe(store, connection)
    dead = trigger_pull(store, TENANT, subscription_id)
    from pullbridge.pulls.records import save_subscription

    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    subscription.lease_holder, subscription.lease_until = "dead-worker", time.time() - 1
    assert save_subscription(store, subscription, expected_version=subscription.version)

    taken_over = trigger_pull(store, TENANT, subscription_id)

    timed_out = load_pull(store, dead.id)
    assert timed_out is not None
    assert (timed_out.status, timed_out.error["key"]) == ("error", "lease_expired")  # type: ignore[index]
    assert taken_over.id != dead.id
    assert load_pull(store, taken_over.id).status == "queued"  # type: ignore[union-attr]


def test_a_trigger_while_a_live_worker_holds_the_lease_is_refused_and_ends_nothing(
    store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    upstream.put("a")
    subscription_id = _subscribe(store, connection)
    running = trigger_pull(store, TENANT, subscription_id)
    from pullbridge.pulls.records import save_subscription

    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    subscription.lease_holder, subscription.lease_until = "live-worker", time.time() + 60
    assert save_subscription(store, subscription, expected_version=subscription.version)

    with pytest.raises(Conflict):
        trigger_pull(store, TENANT, subscription_id)

    assert load_pull(store, running.id).status == "queued"  # type: ignore[union-attr]


def test_a_pull_read_as_ended_has_freed_its_subscription_for_a_trigger(
    engine: PullEngine,
    store: Store,
    upstream: ListApi,
    connection: StoredConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pull's end and its subscription's release are one write: a client that reads the pull as
    `success` and triggers the next one at once is never told 409 `pull_running`."""
    upstream.put("a")
    subscription_id = _subscribe(store, connection)
    first = trigger_pull(store, TENANT, subscription_id)
    triggered: list[str] = []

    def trigger_once_the_pull_reads_ended() -> None:
        if triggered or load_pull(store, first.id).status != "success":  # type: ignore[union-attr]
            return
        triggered.append("pending")  # the trigger's own writes come back here
        try:
            triggered[0] = trigger_pull(store, TENANT, subscription_id).status
        except Conflict as exc:
            triggered[0] = exc.key

    for name in ("put_control", "put_controls"):
        write = getattr(store, name)

        def watched(*args: Any, _write: Callable[..., bool] = write, **kwargs: Any) -> bool:
            written = _write(*args, **kwargs)
            trigger_once_the_pull_reads_ended()
            return written

        monkeypatch.setattr(store, name, watched)

    assert engine.advance(subscription_id, deadline=time.time() + 60) == first.id

    assert triggered == ["queued"]
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    assert subscription.last_pull_id == first.id  # the finished pull's bookkeeping landed with it
    assert subscription.baseline_done


def test_a_pull_and_its_subscription_are_written_together_or_not_at_all(
    store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    from pullbridge.pulls.records import save_subscription_and_pull

    subscription_id = _subscribe(store, connection)
    pull = trigger_pull(store, TENANT, subscription_id)
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    stale = subscription.version - 1
    pull.status, subscription.running_pull_id = "success", None

    assert not save_subscription_and_pull(store, subscription, pull, expected_version=stale)
    assert load_pull(store, pull.id).status == "queued"  # type: ignore[union-attr]
    assert load_subscription(store, subscription_id).running_pull_id == pull.id  # type: ignore[union-attr]

    assert save_subscription_and_pull(store, subscription, pull, expected_version=stale + 1)
    assert load_pull(store, pull.id).status == "success"  # type: ignore[union-attr]
    assert load_subscription(store, subscription_id).running_pull_id is None  # type: ignore[union-attr]


def test_the_schedule_starts_only_due_subscriptions(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    upstream.put("a")
    subscription_id = _subscribe(store, connection)
    assert len(engine.run_due(deadline=time.time() + 60)) == 1  # new subscriptions are due at once
    assert engine.run_due(deadline=time.time() + 60) == []  # then not until the interval has passed
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    assert subscription.next_pull_at == pytest.approx(time.time() + 10_800, abs=60)


def test_the_writes_of_an_unchanged_scan_do_not_grow_with_the_collection(
    engine: PullEngine, store: Store, settings: ApiSettings, upstream: ListApi, connection: StoredConnection
) -> None:
    writes = []
    subscription_id = _subscribe(store, connection)
    for size in (6, 60):
        upstream.records.clear()
        for index in range(size):
            upstream.put(f"r{index:03d}")
        _scan(engine, store, subscription_id)
        with counting(store._client) as calls:
            _scan(engine, store, subscription_id)
        writes.append(
            sum(
                calls.names.count(name)
                for name in ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem", "DeleteItem")
            )
        )
    assert writes[0] == writes[1]


def test_a_pull_whose_subscription_is_deleted_mid_scan_ends_in_error(
    store: Store,
    settings: ApiSettings,
    upstream: ListApi,
    connection: StoredConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pullbridge.pulls import service

    for index in range(7):
        upstream.put(f"r{index}")
    subscription_id = _subscribe(store, connection)
    monkeypatch.setattr(engine_module, "RENEW_EVERY_SECONDS", 0)  # renew the lease after every page
    pages = upstream.list_pages

    def delete_after_first_page(http: Any, source: PullSource, checkpoint: str | None) -> Iterator[ListPage]:
        for number, page in enumerate(pages(http, source, checkpoint)):
            yield page
            if number == 0:
                service.delete_subscription(store, TENANT, subscription_id)

    monkeypatch.setattr(upstream, "list_pages", delete_after_first_page)
    engine = PullEngine(store, settings, httpx.Client(), yield_margin_seconds=0)
    pull = _scan(engine, store, subscription_id)
    assert (pull.status, pull.error["key"]) == ("error", "subscription_deleted")


def test_archiving_the_connection_stops_its_pulls(
    engine: PullEngine, store: Store, upstream: ListApi, connection: StoredConnection
) -> None:
    from pullbridge.connections import archive_connection

    upstream.put("a")
    subscription_id = _subscribe(store, connection)
    archive_connection(store, TENANT, connection.id)
    pull = _scan(engine, store, subscription_id)
    assert (pull.status, pull.error["key"]) == ("error", "connection_archived")
    assert _changes(store, pull.id) == []
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    assert subscription.due_at is None  # the schedule never starts it again
    assert engine.run_due(deadline=time.time() + 60) == []
