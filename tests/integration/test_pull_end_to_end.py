"""Full scans through the real connectors, against real local HTTP servers shaped like each provider,
with the faults a provider really produces: 429 with Retry-After, a 500 on page 2, a stall, malformed
JSON, a revoked key. And the webhook/scan hand-off: a change delivered by webhook is not emitted again."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from pullbridge.connections import StoredConnection, create_connection
from pullbridge.errors import ValidationFailed
from pullbridge.models import ConnectionCreate
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import StoredPull, load_pull
from pullbridge.pulls.service import create_subscription, trigger_pull
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.fakes.provider_server import REQUEST_ID_PREFIX, FakeProviderServer
from tests.integration.conftest import counting
from tests.support import lambda_context, sample_event

TENANT = "t_alpha"
COLLECTIONS = [
    ("stripe", "customers"),
    ("github", "issues"),
    ("shopify", "orders"),
    ("hubspot", "contacts"),
    ("generic", "items"),
]


@pytest.fixture(scope="module")
def provider_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def fake(provider_server: FakeProviderServer) -> FakeProviderServer:
    provider_server.clear_faults()
    provider_server.reset_counters()
    return provider_server


@pytest.fixture
def local_settings(settings: ApiSettings) -> ApiSettings:
    return dataclasses.replace(settings, allow_private_urls=True)  # the fake listens on 127.0.0.1


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _engine(
    store: Store, settings: ApiSettings, waits: Waits | None = None, timeout: float = 5.0
) -> PullEngine:
    client = httpx.Client(timeout=httpx.Timeout(timeout))
    return PullEngine(store, settings, client, sleep=waits or Waits(), yield_margin_seconds=0)


def _connect(
    store: Store, settings: ApiSettings, fake: FakeProviderServer, provider: str, collection: str
) -> StoredConnection:
    webhook_secrets = (
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] if provider == "standard" else ["whsec_plain_secret"]
    )
    request = ConnectionCreate(
        provider=provider,  # type: ignore[arg-type]
        name=provider,
        webhook_secrets=webhook_secrets,  # type: ignore[arg-type]
        credentials=fake.credentials(provider),  # type: ignore[arg-type]
        api_base_url=fake.base_url,
        settings=fake.settings(provider, collection),
    )
    return create_connection(store, settings, TENANT, request)


def _pull(engine: PullEngine, store: Store, subscription_id: str) -> StoredPull:
    trigger_pull(store, TENANT, subscription_id)
    pull = load_pull(store, engine.advance(subscription_id, deadline=time.time() + 120) or "")
    assert pull is not None
    return pull


def _subscribe(store: Store, connection: StoredConnection, collection: str) -> str:
    return create_subscription(
        store, TENANT, SubscriptionCreate(connection_id=connection.id, collection=collection)
    ).id


def _events_of(store: Store, pull_id: str) -> list[dict[str, Any]]:
    return [
        e.document for e in store.read_log(TENANT, None, 0, 10_000).events if e.document["pull_id"] == pull_id
    ]


@pytest.mark.parametrize(("provider", "collection"), COLLECTIONS)
def test_a_full_scan_reads_every_record_with_the_fewest_requests(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer, provider: str, collection: str
) -> None:
    dataset = fake.dataset(provider, collection)
    dataset.clear()
    dataset.seed(120)
    connection = _connect(store, local_settings, fake, provider, collection)
    pull = _pull(_engine(store, local_settings), store, _subscribe(store, connection, collection))
    assert pull.status == "success", pull.error
    events = _events_of(store, pull.id)
    assert len(events) == 120
    assert {e["type"] for e in events} == {f"{collection}.created"}
    page_size = _page_size(provider)
    assert (
        pull.stats["requests"] == fake.requests_served == math.ceil(120 / page_size) + (120 % page_size == 0)
    )
    assert (pull.stats["created"], pull.stats["retries"]) == (120, 0)


def _page_size(provider: str) -> int:
    from pullbridge.providers import get_provider

    return get_provider(provider).max_page_size


def test_a_429_is_honoured_with_its_retry_after_and_counted(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    fake.dataset("stripe", "customers").clear()
    fake.dataset("stripe", "customers").seed(5)
    fake.fail_with(429, times=1, retry_after=7)
    waits = Waits()
    connection = _connect(store, local_settings, fake, "stripe", "customers")
    pull = _pull(_engine(store, local_settings, waits), store, _subscribe(store, connection, "customers"))
    assert pull.status == "success"
    assert pull.stats["retries"] == 1
    assert 7 in waits.seconds


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (lambda fake: fake.fail_with(500, times=None, on_page=2), "bad_gateway"),
        (lambda fake: fake.fail_with(401, times=None), "unauthorized"),
        (lambda fake: fake.malformed_json(times=None, on_page=2), "bad_response"),
        (lambda fake: fake.stall(1.0, times=None, on_page=2), "timeout"),
    ],
    ids=["500-on-page-2", "401", "malformed-json", "stall"],
)
def test_a_failing_scan_ends_in_a_typed_error_and_emits_no_delete(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer, fault: Any, error_type: str
) -> None:
    dataset = fake.dataset("stripe", "customers")
    dataset.clear()
    records = dataset.seed(150)
    connection = _connect(store, local_settings, fake, "stripe", "customers")
    subscription_id = _subscribe(store, connection, "customers")
    engine = _engine(store, local_settings, timeout=0.3)
    assert _pull(engine, store, subscription_id).status == "success"
    # When a record disappears upstream and the next scan fails
    dataset.delete(records[0]["id"])
    fault(fake)
    failed = _pull(engine, store, subscription_id)
    # Then the pull carries a typed error with the provider's status and request id, and no delete
    assert failed.status == "error"
    assert failed.error is not None
    assert failed.error["type"] == error_type
    if error_type in ("bad_gateway", "unauthorized"):
        assert failed.error["data"]["status_code"] in (500, 401)
        assert failed.error["data"]["request_id"]
    assert [e for e in _events_of(store, failed.id) if e["action"] == "deleted"] == []
    # 5xx and timeouts are retried with backoff before giving up; a 401 or a broken body is not
    assert (failed.stats["retries"] > 0) == (error_type in ("bad_gateway", "timeout"))
    # And once the provider recovers, the delete is emitted
    fake.clear_faults()
    recovered = _pull(engine, store, subscription_id)
    assert [(e["action"], e["record_id"]) for e in _events_of(store, recovered.id)] == [
        ("deleted", str(records[0]["id"]))
    ]


@pytest.mark.parametrize(("provider", "collection"), COLLECTIONS)
def test_a_failed_pull_quotes_the_request_id_from_its_providers_header(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer, provider: str, collection: str
) -> None:
    connection = _connect(store, local_settings, fake, provider, collection)
    fake.fail_with(401, times=None)
    failed = _pull(_engine(store, local_settings), store, _subscribe(store, connection, collection))
    assert failed.error is not None
    assert failed.error["type"] == "unauthorized"
    assert failed.error["data"]["request_id"].startswith(REQUEST_ID_PREFIX[provider])


def _generic_connection(
    store: Store, settings: ApiSettings, fake: FakeProviderServer, **overrides: Any
) -> str:
    request = ConnectionCreate(
        provider="generic",
        name="generic",
        webhook_secrets=["whsec_plain_secret"],  # type: ignore[list-item]
        credentials=fake.credentials("generic"),  # type: ignore[arg-type]
        api_base_url=fake.base_url,
        settings=fake.settings("generic", "items") | overrides,
    )
    return create_connection(store, settings, TENANT, request).id


def test_a_generic_connection_that_names_its_collection_is_subscribed_to_it(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    connection_id = _generic_connection(store, local_settings, fake, collection="items")
    request = SubscriptionCreate(connection_id=connection_id, collection="items")
    assert create_subscription(store, TENANT, request).collection == "items"


def test_a_generic_connection_that_names_its_collection_refuses_another(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    connection_id = _generic_connection(store, local_settings, fake, collection="tickets")
    with pytest.raises(ValidationFailed) as caught:
        create_subscription(
            store, TENANT, SubscriptionCreate(connection_id=connection_id, collection="items")
        )
    assert caught.value.data == {"field": "collection"}
    assert "tickets" in caught.value.message


def test_a_generic_connection_without_a_collection_may_subscribe_to_any(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    connection_id = _generic_connection(store, local_settings, fake)
    for collection in ("items", "anything_else"):
        request = SubscriptionCreate(connection_id=connection_id, collection=collection)
        assert create_subscription(store, TENANT, request).collection == collection


def _stripe_webhook(connection_id: str, record: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(
        {
            "id": f"evt_{record['id']}_{time.time_ns()}",
            "object": "event",
            "type": "customer.updated",
            "created": int(time.time()),
            "data": {"object": record},
        }
    ).encode()
    stamp = int(time.time())
    signature = hmac.new(b"whsec_plain_secret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    event = sample_event("webhook_standard.json")
    event["headers"] = {"content-type": "application/json", "stripe-signature": f"t={stamp},v1={signature}"}
    event["pathParameters"] = {"connection_id": connection_id}
    event["rawPath"] = f"/webhooks/{connection_id}"
    event["body"] = body.decode()
    return event


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-delivered", "no-webhook"])
def test_a_change_delivered_by_webhook_is_not_emitted_again_by_the_next_scan(
    store: Store,
    local_settings: ApiSettings,
    fake: FakeProviderServer,
    ingest: ModuleType,
    webhook_first: bool,
) -> None:
    dataset = fake.dataset("stripe", "customers")
    dataset.clear()
    records = dataset.seed(3)
    connection = _connect(store, local_settings, fake, "stripe", "customers")
    subscription_id = _subscribe(store, connection, "customers")
    engine = _engine(store, local_settings)
    _pull(engine, store, subscription_id)
    # When a customer changes upstream, and Stripe's webhook for it arrives first (or never does)
    changed = dataset.update(records[1]["id"], email="changed@example.com")
    if webhook_first:
        response = ingest.lambda_handler(_stripe_webhook(connection.id, changed), lambda_context())
        assert response["statusCode"] == 200, response["body"]
    pull = _pull(engine, store, subscription_id)
    updates = [(e["action"], e["record_id"]) for e in _events_of(store, pull.id)]
    assert updates == ([] if webhook_first else [("updated", str(records[1]["id"]))])


def test_an_events_feed_is_pulled_incrementally_from_the_cursor_it_ended_at(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer
) -> None:
    feed = fake.dataset("generic", "events")
    feed.clear()
    first_items = feed.seed(5)
    connection = _connect(store, local_settings, fake, "generic", "events")
    subscription_id = _subscribe(store, connection, "events")
    engine = _engine(store, local_settings)
    first = _pull(engine, store, subscription_id)
    assert (first.status, first.is_full_scan) == ("success", False)
    assert [e["record_id"] for e in _events_of(store, first.id)] == [str(item["id"]) for item in first_items]
    # Nothing new upstream: the next pull asks from the cursor the last one ended at, and logs nothing
    fake.reset_counters()
    assert _events_of(store, _pull(engine, store, subscription_id).id) == []
    assert fake.requests[0].query.get("cursor") is not None
    assert fake.requests_served == 1
    # Two new remote events: exactly those are logged, in order, with their own types
    added = [feed.add(), feed.add()]
    third = _pull(engine, store, subscription_id)
    events = _events_of(store, third.id)
    assert [e["record_id"] for e in events] == [str(item["id"]) for item in added]
    assert {e["source"] for e in events} == {"pull"}
    assert all(e["type"] == item["type"] for e, item in zip(events, added, strict=True))


@pytest.mark.parametrize(("provider", "collection"), [("stripe", "customers"), ("github", "issues")])
def test_full_scans_keep_the_records_equal_to_the_provider_and_an_unchanged_scan_writes_none(
    store: Store, local_settings: ApiSettings, fake: FakeProviderServer, provider: str, collection: str
) -> None:
    dataset = fake.dataset(provider, collection)
    dataset.clear()
    dataset.seed(30)
    connection = _connect(store, local_settings, fake, provider, collection)
    subscription_id = _subscribe(store, connection, collection)
    engine = _engine(store, local_settings)

    def records() -> dict[str, Any]:
        page, _ = store.records_page(connection.id, collection, after=None, limit=500, include_deleted=False)
        return {record.record_id: record.data for record in page}

    def upstream() -> dict[str, Any]:
        return {str(row[dataset.id_field]): row for row in dataset.records()}

    assert _pull(engine, store, subscription_id).status == "success"
    assert records() == upstream()

    first = next(iter(upstream()))
    dataset.delete(first)
    assert _pull(engine, store, subscription_id).status == "success"
    assert records() == upstream()
    tombstone = store.get_record(connection.id, collection, first)
    assert tombstone is not None
    assert tombstone.deleted

    with counting(store._client) as calls:
        assert _pull(engine, store, subscription_id).status == "success"
    # Nothing changed: no event, no snapshot and no record is written (the pull's and the subscription's
    # records only, and the connection's health)
    assert calls.written_outside("PULL#", "SUB#", "CONNHEALTH#") == []
    assert "BatchWriteItem" not in calls.names
