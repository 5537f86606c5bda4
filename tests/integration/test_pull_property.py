"""Property: replaying the event stream rebuilds the upstream collection exactly after every successful
full scan, whatever the upstream did in between and however many scans failed part-way."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pullbridge.connections import create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.pulls import engine as engine_module
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import load_pull
from pullbridge.pulls.service import create_subscription, trigger_pull
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.integration.test_pull_engine import TENANT, ListApi

record_ids = st.sampled_from([f"r{i}" for i in range(8)])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), record_ids, st.integers(0, 3)),
        st.tuples(st.just("delete"), record_ids, st.just(0)),
        st.tuples(st.just("scan"), st.just(""), st.sampled_from([None, None, 1, 2])),
    ),
    min_size=1,
    max_size=14,
)


def _replay(events: list[dict[str, Any]], start: dict[str, Any]) -> dict[str, Any]:
    state = dict(start)
    for event in events:
        if event["action"] == "deleted":
            state.pop(event["record_id"], None)
        else:
            state[event["record_id"]] = event["data"]
    return state


@pytest.mark.parametrize("backfill", [True, False], ids=["backfill", "baseline"])
def test_replaying_pull_events_rebuilds_upstream_after_every_complete_scan(
    store: Store, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch, backfill: bool
) -> None:
    @hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps=operations, initial=st.sets(record_ids, max_size=5))
    def run(steps: list[tuple[str, str, Any]], initial: set[str]) -> None:
        upstream = ListApi()
        monkeypatch.setattr(engine_module, "get_provider", lambda name: upstream)
        for record_id in initial:
            upstream.put(record_id, version=0)
        connection = create_connection(store, settings, TENANT, ConnectionCreate(provider="stripe", name="p"))
        subscription = create_subscription(
            store,
            TENANT,
            SubscriptionCreate(connection_id=connection.id, collection="customers", backfill=backfill),
        )
        engine = PullEngine(store, settings, httpx.Client(), yield_margin_seconds=0)
        baseline: dict[str, Any] | None = (
            None  # without backfill, the first complete scan is the starting point
        )
        for kind, record_id, value in [*steps, ("scan", "", None)]:
            if kind == "put":
                upstream.put(record_id, version=value)
            elif kind == "delete":
                upstream.records.pop(record_id, None)
            else:
                upstream.fail_on_page = value
                trigger_pull(store, TENANT, subscription.id)
                pull = load_pull(store, engine.advance(subscription.id, deadline=time.time() + 60) or "")
                assert pull is not None
                if pull.status != "success":
                    continue
                events = [
                    e.document
                    for e in store.read_log(TENANT, connection.id, 0, 10_000).events
                    if e.document["connection_id"] == connection.id
                ]
                if baseline is None:
                    # With backfill the stream starts from nothing; without, from the first complete scan.
                    baseline = {} if backfill else dict(upstream.records)
                assert _replay(events, baseline) == upstream.records

    run()
