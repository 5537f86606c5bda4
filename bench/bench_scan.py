"""Full scans: provider requests and DynamoDB writes of a 10,000-record unchanged scan through the real
Stripe connector and the fake provider over HTTP, its speed next to the fake's raw serve rate, and the
peak memory of a 100,000-record scan in a fresh interpreter."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import time
from typing import Any

import httpx

from bench.bench_common import Rig, figure, log, median, metered
from bench.bench_scan_rss import GeneratedCustomers
from pullbridge.connections import StoredConnection, create_connection
from pullbridge.hashing import content_hash
from pullbridge.models import ConnectionCreate
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.records import StoredPull, load_pull, load_subscription, save_subscription
from pullbridge.settings import OutboundSettings, PullerSettings
from pullbridge.storage import SnapshotChange, Store
from tests.fakes.provider_server import FakeProviderServer
from tests.integration.test_pull_engine import TENANT, _scan, _subscribe
from tests.paths import REPO_ROOT

SCAN_RECORDS = 10_000
RSS_RECORDS = 100_000
STRIPE_PAGE = 100
REPEATS = 2


def _connection(
    store: Store, settings: OutboundSettings, fake: FakeProviderServer | None
) -> StoredConnection:
    request = ConnectionCreate(
        provider="stripe",
        name="bench",
        webhook_secrets=["whsec_bench"],
        credentials=fake.credentials("stripe") if fake else {"api_key": "sk_test_bench"},
        api_base_url=fake.base_url if fake else None,
    )
    return create_connection(store, settings, TENANT, request)


def _make_due(store: Store, subscription_id: str) -> None:
    """Set up (not measured): the subscription's next full scan is due now."""
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    subscription.next_pull_at = time.time() - 1
    assert save_subscription(store, subscription, expected_version=subscription.version)


def _succeeded(pull: StoredPull | None) -> StoredPull:
    assert pull is not None
    assert pull.status == "success", pull.error
    return pull


def _scheduled_scan(engine: PullEngine, store: Store, subscription_id: str) -> StoredPull:
    """Run one full scan to its end in this invocation, as the schedule starts it (`run_due`). The tests'
    `_scan` runs it as `POST .../pull` does: queued, then run by the puller."""
    [pull_id] = engine.run_due(deadline=time.time() + 600)
    return _succeeded(load_pull(store, pull_id))


def _raw_serve(fake: FakeProviderServer, client: httpx.Client) -> tuple[int, float]:
    """Every page of the fake's customers, fetched and parsed with nothing else: (records, seconds)."""
    url = f"{fake.base_url}/v1/customers"
    headers = {"Authorization": f"Bearer {fake.credentials('stripe')['api_key']}"}
    params = {"limit": str(STRIPE_PAGE)}
    records = 0
    started = time.perf_counter()
    while True:
        body = client.get(url, params=params, headers=headers).raise_for_status().json()
        records += len(body["data"])
        if not body["has_more"]:
            return records, time.perf_counter() - started
        params["starting_after"] = body["data"][-1]["id"]


def run(rig: Rig) -> None:
    settings = rig.fresh_tables(allow_private_urls=True)
    store = rig.store(settings)
    with FakeProviderServer() as fake, httpx.Client(timeout=30) as http_client:
        fake.dataset("stripe", "customers").seed(SCAN_RECORDS)
        subscription_id = _subscribe(store, _connection(store, settings, fake), backfill=False)
        engine = PullEngine(store, settings, http_client)
        # The first scan without backfill is the silent baseline: it writes the snapshot, batched
        baseline = _succeeded(_scan(engine, store, subscription_id))
        log(f"baseline scan: {baseline.stats}")
        scan_seconds, raw_seconds = [], []
        requests = writes = 0
        meter_detail: dict[str, Any] = {}
        for repeat in range(REPEATS):
            served, seconds = _raw_serve(fake, http_client)
            assert served == SCAN_RECORDS
            raw_seconds.append(seconds)
            _make_due(store, subscription_id)
            fake.reset_counters()
            with metered(store._client) as meter:
                started = time.perf_counter()
                pull = _scheduled_scan(engine, store, subscription_id)
                scan_seconds.append(time.perf_counter() - started)
            assert pull.stats["unchanged"] == SCAN_RECORDS, pull.stats
            assert pull.stats["records_seen"] == SCAN_RECORDS, pull.stats
            requests, writes = fake.requests_served, meter.write_requests
            meter_detail = {
                "requests": dict(meter.requests),
                "dynamodb_seconds": {k: round(v, 3) for k, v in meter.seconds.items()},
            }
            log(
                f"unchanged scan {repeat + 1}: {scan_seconds[-1]:.2f} s, raw serve {seconds:.2f} s, {meter_detail}"
            )
        # The same scan started by `POST /external-event-subscriptions/{id}/pull`: the API queues it
        with metered(store._client) as meter:
            _succeeded(_scan(engine, store, subscription_id))
        triggered_writes = meter.write_requests
    figure("scan_requests_ratio", requests / math.ceil(SCAN_RECORDS / STRIPE_PAGE))
    figure("scan_writes_unchanged", writes)
    figure("scan_writes_unchanged_triggered", triggered_writes)
    scan_rate = SCAN_RECORDS / median(scan_seconds)
    raw_rate = SCAN_RECORDS / median(raw_seconds)
    figure("scan_records_per_s", scan_rate)
    figure("scan_records_per_s_raw_serve", raw_rate)
    figure("scan_records_per_s_ratio", scan_rate / raw_rate)
    dynamodb_seconds = sum(meter_detail["dynamodb_seconds"].values())
    figure("scan_dynamodb_share", dynamodb_seconds / scan_seconds[-1])


def run_rss(rig: Rig) -> None:
    settings = rig.fresh_tables()
    store = rig.store(settings)
    connection = _connection(store, settings, None)
    subscription_id = _subscribe(store, connection, backfill=False)
    upstream = GeneratedCustomers(RSS_RECORDS)
    started = time.perf_counter()
    for offset in range(0, RSS_RECORDS, 5_000):
        store.write_snapshots(
            [
                SnapshotChange(connection.id, "customers", record["id"], content_hash(record))
                for record in upstream.records(offset, min(offset + 5_000, RSS_RECORDS))
            ]
        )
    log(f"seeded a {RSS_RECORDS}-record snapshot in {time.perf_counter() - started:.1f} s")
    arguments = {
        "settings": _puller_fields(settings),
        "count": RSS_RECORDS,
        "tenant": TENANT,
        "subscription_id": subscription_id,
    }
    output = subprocess.run(
        [sys.executable, "-m", "bench.bench_scan_rss", json.dumps(arguments)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,  # its stderr is the run's, so a failure shows its traceback
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    log(f"100k scan in a fresh interpreter: {result}")
    assert result["status"] == "success", result
    assert result["stats"]["unchanged"] == RSS_RECORDS, result
    figure("scan_peak_rss_mb_100k", result["growth_mb"])
    figure("scan_100k_seconds", result["seconds"])


def _puller_fields(settings: OutboundSettings) -> dict[str, object]:
    """What the puller's settings take of the API's, to hand to a child process as JSON."""
    names = {item.name for item in dataclasses.fields(PullerSettings)}
    return {name: value for name, value in dataclasses.asdict(settings).items() if name in names}
