"""The schedule against moto and the in-memory list API of `test_pull_engine`: incremental pulls between
full scans, one a tick at 60 s; none without an interval; a full scan when the mark is older than the
provider looks back."""

from __future__ import annotations

import time

import httpx
import pytest

from pullbridge.connections import StoredConnection
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import load_pull, load_subscription
from pullbridge.pulls.service import create_subscription
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.integration.test_pull_engine import TENANT, ListApi, connection, upstream

__all__ = ["connection", "upstream"]  # the fixtures, shared with the engine's tests


class Clock:
    """The engine's clock, moved by the test: a schedule tick a minute."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_the_schedule_runs_incremental_pulls_between_full_scans(
    store: Store, settings: ApiSettings, upstream: ListApi, connection: StoredConnection
) -> None:
    clock = Clock()
    upstream.clock = clock
    upstream.put("a")
    engine = PullEngine(store, settings, httpx.Client(), clock=clock, yield_margin_seconds=0)
    request = SubscriptionCreate(
        connection_id=connection.id,
        collection="customers",
        full_sync_interval_seconds=600,
        pull_updates_interval_seconds=60,
    )
    subscription_id = create_subscription(store, TENANT, request, clock=clock).id
    kinds: list[bool] = []
    for tick in range(13):
        clock.now += 0.7  # a tick's pull starts a moment after the tick
        for pull_id in engine.run_due(deadline=clock() + 600):
            pull = load_pull(store, pull_id)
            assert pull is not None
            assert pull.status == "success"
            kinds.append(pull.is_full_scan)
        if tick == 4:
            upstream.put("b")
        clock.now += 60 - 0.7
    # One pull every tick: a full scan every 10 minutes, incremental pulls in between
    assert kinds == [True, *[False] * 9, True, False, False]
    assert len(upstream.updates_asked) == 11
    events = [e.document for e in store.read_log(TENANT, None, 0, 100).events]
    assert [(e["action"], e["record_id"]) for e in events] == [("created", "a"), ("created", "b")]
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    assert subscription.next_full_scan_at == pytest.approx(clock() - 60 * 3 + 600 + 0.7, abs=1)


def test_without_an_updates_interval_every_pull_is_a_full_scan(
    store: Store, settings: ApiSettings, upstream: ListApi, connection: StoredConnection
) -> None:
    clock = Clock()
    engine = PullEngine(store, settings, httpx.Client(), clock=clock, yield_margin_seconds=0)
    request = SubscriptionCreate(
        connection_id=connection.id, collection="customers", full_sync_interval_seconds=120
    )
    create_subscription(store, TENANT, request, clock=clock)
    kinds = []
    for _ in range(5):
        kinds += [
            load_pull(store, pull_id).is_full_scan for pull_id in engine.run_due(deadline=clock() + 600)
        ]  # type: ignore[union-attr]
        clock.now += 60
    assert kinds == [True, True, True]
    assert upstream.updates_asked == []


def test_a_mark_older_than_the_provider_looks_back_is_a_full_scan(
    store: Store,
    settings: ApiSettings,
    upstream: ListApi,
    connection: StoredConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ListApi, "updates_lookback_seconds", 3600.0)
    clock = Clock()
    engine = PullEngine(store, settings, httpx.Client(), clock=clock, yield_margin_seconds=0)
    request = SubscriptionCreate(
        connection_id=connection.id,
        collection="customers",
        full_sync_interval_seconds=86_400,
        pull_updates_interval_seconds=600,
    )
    subscription_id = create_subscription(store, TENANT, request, clock=clock).id
    [first] = engine.run_due(deadline=clock() + 600)
    clock.now += 600
    [second] = engine.run_due(deadline=clock() + 600)
    # Incremental pulls keep failing for longer than the provider looks back
    upstream.fail_on_page = 1
    for _ in range(6):
        clock.now += 600
        engine.run_due(deadline=clock() + 600)
    upstream.fail_on_page = None
    clock.now += 600
    [recovered] = engine.run_due(deadline=clock() + 600)
    kinds = [load_pull(store, pull_id).is_full_scan for pull_id in (first, second, recovered)]  # type: ignore[union-attr]
    assert kinds == [True, False, True]
    assert load_subscription(store, subscription_id).updates_mark == clock()  # type: ignore[union-attr]
