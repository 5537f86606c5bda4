"""Incremental pulls: the provider requests of one after k of N records changed, against the fewest that
could read them, per provider; and, with no webhooks, how long a change upstream takes to reach the log
with `pull_updates_interval_seconds` = 60, measured with the real engine and fake providers on a
sped-up clock (the schedule's minute ticks are skipped to, not waited for; everything else runs as it
does, so the pulls' own time counts)."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import httpx

from bench.bench_common import Rig, figure, log, median, metered, percentile
from pullbridge.connections import StoredConnection, create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.providers import get_provider
from pullbridge.providers.base import parse_iso_time
from pullbridge.providers.hubspot import SEARCH_PAGE_SIZE
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import StoredPull, load_pull, load_subscription, save_subscription
from pullbridge.pulls.service import create_subscription, trigger_pull
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.fakes.provider_server import FakeProviderServer

TENANT = "t_bench"
RECORDS = 10_000
CHANGED = 50
PROVIDERS = [
    ("stripe", "customers"),
    ("github", "issues"),
    ("shopify", "products"),
    ("hubspot", "contacts"),
    ("generic", "items"),
]
TARGET_RATIO = 2.0
SCHEDULE_SECONDS = 60.0
FRESHNESS_RECORDS = 300
FRESHNESS_MINUTES = 90
TICK_JITTER_SECONDS = 2.0
"""How late after its minute the schedule's invocation starts a pull (EventBridge Scheduler's own
delivery is not exact)."""


class FastClock:
    """Real time plus an offset that `skip_to` moves forward: the pulls take the time they take, the
    waits between ticks take none."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def skip_to(self, moment: float) -> None:
        self.offset += max(0.0, moment - self())


def _connect(
    store: Store, settings: ApiSettings, fake: FakeProviderServer, provider: str, collection: str
) -> StoredConnection:
    request = ConnectionCreate(
        provider=provider,
        name=f"bench {provider}",
        webhook_secrets=["whsec_bench"],
        credentials=fake.credentials(provider),
        api_base_url=fake.base_url,
        settings=fake.settings(provider, collection),
    )
    return create_connection(store, settings, TENANT, request)


def _succeeded(pull: StoredPull | None) -> StoredPull:
    assert pull is not None
    assert pull.status == "success", pull.error
    return pull


def _run_due_pull(engine: PullEngine, store: Store, subscription_id: str, now: float) -> StoredPull:
    """Make the subscription's next pull due now, as the schedule would between full scans, and run it."""
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    subscription.next_pull_at = now - 1
    assert save_subscription(store, subscription, expected_version=subscription.version)
    return _succeeded(load_pull(store, engine.advance(subscription_id, deadline=now + 600) or ""))


def _change(fake: FakeProviderServer, provider: str, collection: str, record: dict[str, Any], n: int) -> None:
    dataset = fake.dataset(provider, collection)
    if provider == "hubspot":
        dataset.update(record["id"], properties={**record["properties"], "firstname": f"Changed {n}"})
    else:
        dataset.update(record[dataset.id_field], title=f"Changed {n}", email=f"changed{n}@example.com")


def _requests_of_one_pull(
    rig: Rig,
    settings: ApiSettings,
    fake: FakeProviderServer,
    http_client: httpx.Client,
    provider: str,
    collection: str,
) -> tuple[float, int]:
    """The incremental pull's provider requests after `CHANGED` of `RECORDS` changed, over the fewest
    that could read them (a page of changes per request, and one more); and the DynamoDB items it read."""
    store = rig.store(settings)
    dataset = fake.dataset(provider, collection)
    dataset.clear()
    records = dataset.seed(RECORDS)
    connection = _connect(store, settings, fake, provider, collection)
    request = SubscriptionCreate(
        connection_id=connection.id, collection=collection, backfill=False, pull_updates_interval_seconds=60
    )
    subscription_id = create_subscription(store, TENANT, request).id
    engine = PullEngine(store, settings, http_client)
    started = time.perf_counter()
    trigger_pull(store, TENANT, subscription_id)
    baseline = _succeeded(load_pull(store, engine.advance(subscription_id, deadline=time.time() + 600) or ""))
    log(
        f"{provider}: silent baseline of {RECORDS} in {time.perf_counter() - started:.1f} s, {baseline.stats['requests']} requests"
    )
    for n, record in enumerate(random.Random(11).sample(records, CHANGED)):
        _change(fake, provider, collection, record, n)
    fake.reset_counters()
    with metered(store._client) as meter:
        pull = _run_due_pull(engine, store, subscription_id, time.time())
    assert not pull.is_full_scan, pull.name
    assert pull.stats["updated"] == CHANGED, pull.stats
    page = SEARCH_PAGE_SIZE if provider == "hubspot" else get_provider(provider).max_page_size
    requests = fake.requests_served
    assert requests == pull.stats["requests"]
    ratio = requests / (math.ceil(CHANGED / page) + 1)
    items_read = meter.total_items_read
    log(
        f"{provider}: incremental pull {pull.stats}, {requests} requests (full scan {baseline.stats['requests']}),"
        f" {items_read} DynamoDB items read"
    )
    figure(f"incremental_requests_{provider}", requests)
    return ratio, items_read


def _freshness(rig: Rig, http_client: httpx.Client) -> list[float]:
    """Seconds from each change upstream to its event in the log, pulls only."""
    settings = rig.fresh_tables(allow_private_urls=True)
    store = rig.store(settings)
    clock = FastClock()
    rng = random.Random(5)
    latencies: list[float] = []
    with FakeProviderServer(clock=clock) as fake:
        dataset = fake.dataset("stripe", "customers")
        records = dataset.seed(FRESHNESS_RECORDS)
        connection = _connect(store, settings, fake, "stripe", "customers")
        request = SubscriptionCreate(
            connection_id=connection.id,
            collection="customers",
            backfill=False,
            pull_updates_interval_seconds=60,
        )
        create_subscription(store, TENANT, request, clock=clock)
        engine = PullEngine(store, settings, http_client, clock=clock)
        tick = math.ceil(clock() / SCHEDULE_SECONDS) * SCHEDULE_SECONDS
        changes: list[tuple[str, float]] = []
        for minute in range(FRESHNESS_MINUTES):
            clock.skip_to(tick + rng.uniform(0, TICK_JITTER_SECONDS))
            engine.run_due(deadline=clock() + 600)
            if minute >= 2:  # after the baseline: changes at random moments of the minute
                for offset in sorted(rng.uniform(0, SCHEDULE_SECONDS) for _ in range(rng.randint(0, 3))):
                    clock.skip_to(tick + offset)
                    record = rng.choice(records)
                    _change(fake, "stripe", "customers", record, len(changes))
                    changes.append((record["id"], clock()))
            tick += SCHEDULE_SECONDS
        clock.skip_to(tick + TICK_JITTER_SECONDS)
        engine.run_due(deadline=clock() + 600)
    arrivals: dict[str, list[float]] = {}
    for event in store.read_log(TENANT, connection.id, 0, 100_000).events:
        received = parse_iso_time(event.document["received_at"])
        assert received is not None
        arrivals.setdefault(event.document["record_id"], []).append(received)
    for record_id, changed_at in changes:
        logged = [moment for moment in arrivals.get(record_id, []) if moment >= changed_at]
        assert logged, f"the change of {record_id} at {changed_at} never reached the log"
        latencies.append(min(logged) - changed_at)
    log(f"freshness: {len(changes)} changes over {FRESHNESS_MINUTES} scheduled minutes, all logged")
    return latencies


def run(rig: Rig) -> None:
    settings = rig.fresh_tables(allow_private_urls=True)
    ratios: dict[str, float] = {}
    items_read: dict[str, int] = {}
    with FakeProviderServer() as fake, httpx.Client(timeout=30) as http_client:
        for provider, collection in PROVIDERS:
            ratios[provider], items_read[provider] = _requests_of_one_pull(
                rig, settings, fake, http_client, provider, collection
            )
        latencies = _freshness(rig, http_client)
    worst = max(ratios, key=lambda name: ratios[name])
    figure("incremental_requests_ratio", ratios[worst])
    figure(
        "incremental_requests_ratio_by_provider",
        ", ".join(f"{name} {value:.2f}" for name, value in ratios.items()),
    )
    figure("incremental_dynamodb_items_read", max(items_read.values()))
    figure("incremental_freshness_s", max(latencies))
    figure("incremental_freshness_s_p50", median(latencies))
    figure("incremental_freshness_s_p99", percentile(latencies, 0.99))
    figure("incremental_freshness_changes", len(latencies))
