"""Incremental pulls through the engine, the real connectors and the fake providers over HTTP: k of N
records changed upstream are exactly what is emitted; a delete Stripe reports is `deleted`, one nobody
reports waits for the next full scan; a provider refusing the updated-since parameter fails the pull and
changes nothing; one pull at a time, full scan or incremental."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pullbridge.connections import StoredConnection, create_connection, update_connection
from pullbridge.errors import Conflict
from pullbridge.models import ConnectionCreate, ConnectionUpdate
from pullbridge.providers import get_provider
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import StoredPull, load_pull, load_subscription, save_subscription
from pullbridge.pulls.schedule import OVERLAP_SECONDS
from pullbridge.pulls.service import create_subscription, trigger_pull
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.fakes.provider_server import FakeProviderServer
from tests.integration.conftest import counting

TENANT = "t_alpha"
CHANGES = [
    ("stripe", "customers", {"email": "changed@example.com"}),
    ("github", "issues", {"title": "Changed"}),
    ("github", "pulls", {"title": "Changed"}),
    ("shopify", "orders", {"note": "changed"}),
    ("hubspot", "contacts", {"archived": False, "properties": {"email": "changed@example.com"}}),
    ("hubspot", "deals", {"properties": {"dealname": "Changed"}}),
    ("generic", "items", {"name": "Changed"}),
]
"""(provider, collection, the fields an update changes)."""


@pytest.fixture(scope="module")
def provider_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def fake(provider_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    provider_server.clear_faults()
    provider_server.reset_counters()
    yield provider_server
    provider_server.clear_faults()


@pytest.fixture
def local_settings(settings: ApiSettings) -> ApiSettings:
    return dataclasses.replace(settings, allow_private_urls=True)  # the fake listens on 127.0.0.1


@pytest.fixture
def engine(store: Store, local_settings: ApiSettings) -> PullEngine:
    client = httpx.Client(timeout=httpx.Timeout(5.0))
    return PullEngine(store, local_settings, client, sleep=lambda seconds: None, yield_margin_seconds=0)


def _connect(
    store: Store, settings: ApiSettings, fake: FakeProviderServer, provider: str, collection: str
) -> StoredConnection:
    request = ConnectionCreate(
        provider=provider,  # type: ignore[arg-type]
        name=provider,
        webhook_secrets=["whsec_plain_secret"],  # type: ignore[list-item]
        credentials=fake.credentials(provider),  # type: ignore[arg-type]
        api_base_url=fake.base_url,
        settings=fake.settings(provider, collection),
    )
    return create_connection(store, settings, TENANT, request)


def _subscribe(store: Store, connection: StoredConnection, collection: str, **options: Any) -> str:
    request = SubscriptionCreate(
        connection_id=connection.id,
        collection=collection,
        backfill=options.pop("backfill", False),
        pull_updates_interval_seconds=options.pop("pull_updates_interval_seconds", 60),
        full_sync_interval_seconds=options.pop("full_sync_interval_seconds", 3600),
        **options,
    )
    return create_subscription(store, TENANT, request).id


def _full_scan(engine: PullEngine, store: Store, subscription_id: str) -> StoredPull:
    trigger_pull(store, TENANT, subscription_id)
    pull = load_pull(store, engine.advance(subscription_id, deadline=time.time() + 120) or "")
    assert pull is not None
    assert pull.is_full_scan
    return pull


def _make_due(store: Store, subscription_id: str) -> None:
    """What the schedule's clock does between full scans: the next incremental pull is due now."""
    subscription = load_subscription(store, subscription_id)
    assert subscription is not None
    subscription.next_pull_at = time.time() - 1
    assert save_subscription(store, subscription, expected_version=subscription.version)


def _incremental(engine: PullEngine, store: Store, subscription_id: str) -> StoredPull:
    _make_due(store, subscription_id)
    pull = load_pull(store, engine.advance(subscription_id, deadline=time.time() + 120) or "")
    assert pull is not None
    assert not pull.is_full_scan, pull.name
    return pull


def _events_of(store: Store, pull_id: str) -> list[dict[str, Any]]:
    return [
        e.document for e in store.read_log(TENANT, None, 0, 10_000).events if e.document["pull_id"] == pull_id
    ]


def _baseline(
    engine: PullEngine,
    store: Store,
    local_settings: ApiSettings,
    fake: FakeProviderServer,
    provider: str,
    collection: str,
    count: int,
) -> tuple[StoredConnection, str, list[dict[str, Any]]]:
    dataset = fake.dataset(provider, collection)
    dataset.clear()
    records = dataset.seed(count)
    connection = _connect(store, local_settings, fake, provider, collection)
    subscription_id = _subscribe(store, connection, collection)
    assert _full_scan(engine, store, subscription_id).status == "success"
    fake.reset_counters()
    return connection, subscription_id, records


def _changed(record: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    if "properties" in fields:  # HubSpot: the properties change, the rest stays
        return {"properties": {**record["properties"], **fields["properties"]}}
    return fields


@pytest.mark.parametrize(
    ("provider", "collection", "fields"), CHANGES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_an_incremental_pull_emits_exactly_the_records_that_changed(
    engine: PullEngine,
    store: Store,
    local_settings: ApiSettings,
    fake: FakeProviderServer,
    provider: str,
    collection: str,
    fields: dict[str, Any],
) -> None:
    # Given N records upstream, scanned once (a silent baseline)
    _, subscription_id, records = _baseline(engine, store, local_settings, fake, provider, collection, 40)
    dataset = fake.dataset(provider, collection)
    # When k of them change: two updated, one created
    updated = [dataset.update(records[n][dataset.id_field], **_changed(records[n], fields)) for n in (3, 17)]
    created = dataset.add()
    pull = _incremental(engine, store, subscription_id)
    # Then exactly those are emitted, in their latest state, from one request
    assert pull.status == "success", pull.error
    events = {(e["action"], e["record_id"]): e["data"] for e in _events_of(store, pull.id)}
    expected = {("updated", str(r[dataset.id_field])): r for r in updated}
    expected[("created", str(created[dataset.id_field]))] = created
    assert events == expected
    assert (pull.stats["created"], pull.stats["updated"], pull.stats["deleted"]) == (1, 2, 0)
    assert (
        pull.stats["requests"] == fake.requests_served == math.ceil(3 / get_provider(provider).max_page_size)
    )
    assert pull.name == f"{provider} {collection} incremental pull"
    # And the next incremental pull, with nothing new, emits nothing and writes no event
    quiet = _incremental(engine, store, subscription_id)
    assert (quiet.status, _events_of(store, quiet.id)) == ("success", [])


def test_a_delete_stripe_reports_is_emitted_as_deleted(
    engine: PullEngine, store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    _, subscription_id, records = _baseline(engine, store, local_settings, fake, "stripe", "customers", 12)
    dataset = fake.dataset("stripe", "customers")
    dataset.update(records[4]["id"], email="last@example.com")
    gone = dataset.delete(records[4]["id"])  # updated, then deleted: the delete is newest, so it counts

    pull = _incremental(engine, store, subscription_id)

    assert [(e["action"], e["record_id"], e["data"]) for e in _events_of(store, pull.id)] == [
        ("deleted", gone["id"], gone)
    ]
    assert (pull.stats["deleted"], pull.stats["updated"]) == (1, 0)
    request = fake.requests[0]
    assert (request.path, request.query["types[]"]) == (
        "/v1/events",
        ["customer.created", "customer.updated", "customer.deleted"],
    )


def test_a_record_created_and_deleted_between_pulls_emits_nothing(
    engine: PullEngine, store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    _, subscription_id, _ = _baseline(engine, store, local_settings, fake, "stripe", "products", 5)
    dataset = fake.dataset("stripe", "products")
    dataset.delete(dataset.add()["id"])

    pull = _incremental(engine, store, subscription_id)

    assert _events_of(store, pull.id) == []


@pytest.mark.parametrize(
    ("provider", "collection"),
    [("github", "issues"), ("shopify", "customers"), ("hubspot", "companies"), ("stripe", "charges")],
)
def test_an_unreported_delete_waits_for_the_next_full_scan(
    engine: PullEngine,
    store: Store,
    local_settings: ApiSettings,
    fake: FakeProviderServer,
    provider: str,
    collection: str,
) -> None:
    _, subscription_id, records = _baseline(engine, store, local_settings, fake, provider, collection, 8)
    dataset = fake.dataset(provider, collection)
    record_id = str(records[2][dataset.id_field])
    dataset.delete(record_id)

    incremental = _incremental(engine, store, subscription_id)
    full = _full_scan(engine, store, subscription_id)

    assert _events_of(store, incremental.id) == []
    assert [(e["action"], e["record_id"]) for e in _events_of(store, full.id)] == [("deleted", record_id)]


@pytest.mark.parametrize(
    ("provider", "collection", "parameter"),
    [
        ("shopify", "products", "updated_at_min"),
        ("stripe", "customers", "created[gte]"),
        ("github", "issues", "since"),
        ("hubspot", "contacts", "filterGroups"),
    ],
)
def test_a_provider_refusing_the_updated_since_parameter_fails_the_pull_and_changes_nothing(
    engine: PullEngine,
    store: Store,
    local_settings: ApiSettings,
    fake: FakeProviderServer,
    provider: str,
    collection: str,
    parameter: str,
) -> None:
    connection, subscription_id, _records = _baseline(
        engine, store, local_settings, fake, provider, collection, 6
    )
    before = load_subscription(store, subscription_id)
    snapshot = store.load_snapshot(connection.id, collection)
    dataset = fake.dataset(provider, collection)
    dataset.add()
    fake.reject_parameter(parameter)

    failed = _incremental(engine, store, subscription_id)

    assert failed.status == "error"
    assert failed.error is not None
    assert (failed.error["type"], failed.error["data"]["status_code"]) == ("bad_response", 400)
    assert failed.error["data"]["request_id"]
    assert _events_of(store, failed.id) == []
    assert store.load_snapshot(connection.id, collection) == snapshot
    after = load_subscription(store, subscription_id)
    assert after is not None
    assert before is not None
    assert after.updates_mark == before.updates_mark  # the next pull asks from where this one did
    assert (after.status, after.error["type"]) == ("error", "bad_response")  # type: ignore[index]
    # Once the provider takes it again, the same window is asked for, and the change is found
    fake.clear_faults()
    retried = _incremental(engine, store, subscription_id)
    assert (retried.status, retried.updated_since) == ("success", failed.updated_since)
    assert [e["action"] for e in _events_of(store, retried.id)] == ["created"]


def test_the_mark_is_the_start_of_the_last_successful_pull_less_the_overlap(
    engine: PullEngine, store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    _, subscription_id, _ = _baseline(engine, store, local_settings, fake, "shopify", "orders", 3)
    scanned = load_subscription(store, subscription_id)
    assert scanned is not None
    first = _incremental(engine, store, subscription_id)
    second = _incremental(engine, store, subscription_id)

    assert scanned.updates_mark is not None
    assert first.updated_since == math.floor(scanned.updates_mark - OVERLAP_SECONDS)
    assert second.updated_since == math.floor(first.started_at - OVERLAP_SECONDS)
    assert fake.requests[-1].query["updated_at_min"] == [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second.updated_since))
    ]


def test_a_quiet_incremental_pull_reads_no_snapshot_and_writes_no_event(
    engine: PullEngine, store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    _, subscription_id, _ = _baseline(engine, store, local_settings, fake, "hubspot", "contacts", 30)
    _make_due(store, subscription_id)

    with counting(store._client) as calls:
        pull = load_pull(store, engine.advance(subscription_id, deadline=time.time() + 60) or "")

    assert pull is not None
    assert pull.status == "success"
    assert "Query" not in calls.names  # the snapshot is read only when a page holds records
    assert calls.written_outside("PULL#", "SUB#", "CONNHEALTH#") == []  # no event, record or snapshot
    # The lease, the pull's start, then its end with the subscription's close in one transaction
    assert calls.names.count("PutItem") <= 3
    assert calls.names.count("TransactWriteItems") == 1


def test_incremental_pulls_and_full_scans_share_one_lease(
    engine: PullEngine, store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    _, subscription_id, _ = _baseline(engine, store, local_settings, fake, "github", "issues", 5)
    fake.dataset("github", "issues").add()
    fake.stall(1.5, path="/repos/")
    _make_due(store, subscription_id)
    worked: list[str | None] = []
    worker = threading.Thread(
        target=lambda: worked.append(engine.advance(subscription_id, deadline=time.time() + 60))
    )
    worker.start()
    try:
        deadline = time.time() + 5
        while (
            subscription := load_subscription(store, subscription_id)
        ) and subscription.running_pull_id is None:
            assert time.time() < deadline
            time.sleep(0.02)
        running = subscription.running_pull_id  # type: ignore[union-attr]
        # A full scan asked for now, and a second worker, both meet the incremental pull's lease
        with pytest.raises(Conflict) as conflict:
            trigger_pull(store, TENANT, subscription_id)
        assert conflict.value.data == {"pull_id": running}
        assert engine.advance(subscription_id, deadline=time.time() + 60) is None
    finally:
        worker.join()
    assert worked == [running]
    pull = load_pull(store, str(running))
    assert pull is not None
    assert (pull.status, pull.is_full_scan) == ("success", False)
    # Once it is done, the full scan may start
    assert _full_scan(engine, store, subscription_id).status == "success"


def test_a_generic_connection_that_no_longer_offers_them_is_scanned_in_full(
    engine: PullEngine, store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    connection, subscription_id, _ = _baseline(engine, store, local_settings, fake, "generic", "items", 4)
    settings = {key: value for key, value in connection.settings.items() if key != "updated_since_param"}
    update_connection(store, local_settings, TENANT, connection.id, ConnectionUpdate(settings=settings))
    _make_due(store, subscription_id)

    pull = load_pull(store, engine.advance(subscription_id, deadline=time.time() + 60) or "")

    assert pull is not None
    assert (pull.status, pull.is_full_scan, pull.name) == ("success", True, "generic items full scan")
    assert all("updated_since" not in request.query for request in fake.requests)
