"""Property: replaying the event stream rebuilds the upstream collection exactly after every successful
full scan, and every live record in its latest state after every successful incremental pull, whatever
the upstream did in between, however much time passed, and however many pulls failed part-way.

The upstream answers incremental pulls either as Stripe does (every change since, newest first, with the
deletes it reports) or as the other list APIs do (the records changed since, as they are now; deletes
unreported, so only the next full scan finds them)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pullbridge.connections import create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.pulls import engine as engine_module
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import StoredPull, load_pull, load_subscription, save_subscription
from pullbridge.pulls.service import create_subscription, trigger_pull
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.integration.test_pull_engine import TENANT, ListApi

record_ids = st.sampled_from([f"r{i}" for i in range(5)])
failures = st.sampled_from([None, None, 1, 2])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), record_ids, st.integers(0, 3)),
        st.tuples(st.just("delete"), record_ids, st.just(0)),
        st.tuples(st.just("wait"), st.just(""), st.sampled_from([0, 30, 119, 121, 600, 5000])),
        st.tuples(st.just("scan"), st.just(""), failures),
        st.tuples(st.just("updates"), st.just(""), failures),
        st.tuples(st.just("updates"), st.just(""), failures),
    ),
    min_size=1,
    max_size=16,
)

NEWEST_STATE_WINS = [("scan", "", None), ("put", "r1", 1), ("put", "r1", 2), ("updates", "", None)]
"""Two changes of one record since the last pull: Stripe lists the newer first, and it is the one kept."""
MARK_MOVES_ONLY_ON_SUCCESS = [
    ("scan", "", None),
    ("put", "r1", 1),
    ("wait", "", 600),
    ("updates", "", 1),
    ("updates", "", None),
]
"""A pull that failed must not move the mark past a change it did not read."""
UNREPORTED_DELETE = [("scan", "", None), ("delete", "r0", 0), ("updates", "", None), ("scan", "", None)]


class Clock:
    """The engine's and the upstream's time: it moves only when the test waits."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _replay(events: list[dict[str, Any]], start: dict[str, Any]) -> dict[str, Any]:
    state = dict(start)
    for event in events:
        if event["action"] == "deleted":
            state.pop(event["record_id"], None)
        else:
            state[event["record_id"]] = event["data"]
    return state


def _incremental_pull(engine: PullEngine, store: Store, subscription_id: str, clock: Clock) -> StoredPull:
    """Make the subscription due as the schedule would between full scans, and run what is due (a full
    scan while it has none to start from)."""
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    subscription.next_pull_at = clock() - 1
    if subscription.next_full_scan_at is not None:
        subscription.next_full_scan_at = clock() + 10**6
    assert save_subscription(store, subscription, expected_version=subscription.version)
    pull = load_pull(store, engine.advance(subscription_id, deadline=clock() + 600) or "")
    assert pull is not None
    return pull


@pytest.mark.parametrize("style", ["events", "list"])
@pytest.mark.parametrize("backfill", [True, False], ids=["backfill", "baseline"])
def test_replaying_pull_events_rebuilds_upstream_after_every_successful_pull(
    store: Store, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch, backfill: bool, style: str
) -> None:
    @hypothesis_settings(max_examples=16, deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps=operations, initial=st.sets(record_ids, max_size=5))
    @example(steps=NEWEST_STATE_WINS, initial={"r1"})
    @example(steps=MARK_MOVES_ONLY_ON_SUCCESS, initial={"r0"})
    @example(steps=UNREPORTED_DELETE, initial={"r0", "r1"})
    def run(steps: list[tuple[str, str, Any]], initial: set[str]) -> None:
        clock = Clock()
        upstream = ListApi(clock=clock, style=style)
        monkeypatch.setattr(engine_module, "get_provider", lambda name: upstream)
        for record_id in initial:
            upstream.put(record_id, version=0)
        clock.now += 3600  # the initial records are old news by the first scan
        connection = create_connection(store, settings, TENANT, ConnectionCreate(provider="stripe", name="p"))
        request = SubscriptionCreate(
            connection_id=connection.id,
            collection="customers",
            backfill=backfill,
            pull_updates_interval_seconds=60,
        )
        subscription = create_subscription(store, TENANT, request, clock=clock)
        engine = PullEngine(store, settings, httpx.Client(), clock=clock, yield_margin_seconds=0)
        baseline: dict[str, Any] | None = None  # without backfill, the first complete scan is the start
        for kind, record_id, value in [*steps, ("scan", "", None), ("updates", "", None)]:
            if kind == "put":
                upstream.put(record_id, version=value)
            elif kind == "delete":
                upstream.remove(record_id)
            elif kind == "wait":
                clock.now += value
            else:
                upstream.fail_on_page = value
                if kind == "scan":
                    trigger_pull(store, TENANT, subscription.id, clock=clock)
                    pull = load_pull(store, engine.advance(subscription.id, deadline=clock() + 600) or "")
                else:
                    pull = _incremental_pull(engine, store, subscription.id, clock)
                assert pull is not None
                if pull.status != "success":
                    continue
                events = [e.document for e in store.read_log(TENANT, connection.id, 0, 10_000).events]
                if baseline is None:
                    # With backfill the stream starts from nothing; without, from the first complete scan.
                    assert pull.is_full_scan
                    baseline = {} if backfill else dict(upstream.records)
                rebuilt = _replay(events, baseline)
                if pull.is_full_scan or style == "events":
                    assert rebuilt == upstream.records, (pull.is_full_scan, pull.stats)
                else:
                    # Deletes are not reported: every live record is there, in its latest state.
                    assert {i: rebuilt.get(i) for i in upstream.records} == upstream.records, pull.stats

    run()
