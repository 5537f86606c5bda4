"""`idle_poll_read_units_per_minute`: the DynamoDB read units one client spends a minute while it
long-polls `GET /events?wait=20` on an idle tenant, following `next_cursor` as a client does.

The polls go through the API handler for real (20 s each); the read units are priced from the requests
its DynamoDB client sends and the items they read (`ReadUnitMeter`), then scaled to a minute of wall
time, so the API key's lookup and the log's consistent reads count as well as the head probes."""

from __future__ import annotations

import time

from bench.bench_common import TENANT, Rig, figure, log, metered_read_units
from pullbridge.auth import issue_api_key
from pullbridge.connections import create_connection
from pullbridge.events import POLL_INTERVAL_SECONDS
from pullbridge.models import ConnectionCreate
from tests.integration.test_long_poll_cost import caught_up, list_events
from tests.support import TEST_SECRET

POLLS = 2
WAIT_SECONDS = 20


def run(rig: Rig) -> None:
    settings = rig.fresh_tables()
    store = rig.store(settings)
    api, ingest = rig.function("api"), rig.function("ingest")
    key = issue_api_key(store, TENANT, name="bench")
    connection = create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name="idle", webhook_secrets=[TEST_SECRET]),
    )
    cursor = caught_up(api, ingest, key, connection.id)  # one event, then idle
    log(f"{POLLS} idle long polls of wait={WAIT_SECONDS} (probe every {POLL_INTERVAL_SECONDS} s)")
    with metered_read_units(api.store._client) as meter:
        started = time.perf_counter()
        for _ in range(POLLS):
            status, page = list_events(api, key, wait=str(WAIT_SECONDS), cursor=cursor)
            assert (status, page["data"], page["next_cursor"]) == (200, [], cursor), page
        elapsed = time.perf_counter() - started
    assert not meter.unpriced, f"reads the meter cannot price: {dict(meter.unpriced)}"
    log(f"idle polls: {elapsed:.1f} s; {meter.breakdown()}")
    figure("idle_poll_read_units_per_minute", meter.total_units * 60 / elapsed)
    figure("idle_poll_read_units_per_request", meter.total_units / POLLS)
    figure("idle_poll_reads", meter.breakdown())
