"""The soak's world: one DynamoDB, the stack under faults, a fault-free stack over the same tables for the
start and the end, the fake providers, and the connections, subscriptions and consumers the actors use.

Every change to the fake providers' records (an actor's, or a write through their APIs) is journaled in
the history as it is made, with its time, so the checker knows every state each record had and when.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.soak.history import History, HttpRecorder, send
from pullbridge.settings import StorageSettings
from pullbridge.storage import Store
from pullbridge.storage.attributes import decode_document, n, s
from pullbridge.storage.keys import tenant_log
from pullbridge_local.dynamodb import dynamodb_client
from pullbridge_local.server import LOCAL_TENANT_ID
from tests.fakes.datasets import Dataset
from tests.fakes.provider_server import GENERIC_MUTATIONS, FakeProviderServer

STRIPE_SECRET = "whsec_soak0000000000000000000000"  # noqa: S105 - the fake Stripe's, for the soak only
ACK_WAIT_SECONDS = 4
UPSTREAM = (("stripe", "customers"), ("generic", "items"))
"""The provider collections the soak subscribes to, changes underneath, and mutates."""
MARKERS = {"stripe/customers": "description", "generic/items": "name"}
"""The field a mutation writes its unique marker into, per collection."""
ATTEMPTS = 12


@dataclass
class Setup:
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    consumers: list[dict[str, Any]] = field(default_factory=list)
    standard_secret: str = ""

    def connection_id(self, name: str) -> str:
        return str(self.connections[name]["id"])


def journal(history: History, fake: FakeProviderServer) -> None:
    """Every change to the soaked collections becomes an `upstream` line, written under the fake's own
    lock (so in the order the changes were made), before any request can see it."""
    for provider, collection in UPSTREAM:
        dataset = fake.dataset(provider, collection)
        dataset.change_log = _journaling(history, dataset, dataset.change_log)


def _journaling(history: History, dataset: Dataset, passed_on: Any) -> Any:
    def log(kind: str, record: dict[str, Any], previous: dict[str, Any], at: float) -> None:
        history.record(
            "upstream",
            "upstream",
            provider=dataset.provider,
            collection=dataset.collection,
            record_id=str(record[dataset.id_field]),
            change=kind,
            state=copy.deepcopy(record),
            changed_at=at,
        )
        if passed_on is not None:
            passed_on(kind, record, previous, at)

    return log


def upstream_records(fake: FakeProviderServer, provider: str, collection: str) -> dict[str, Any]:
    dataset = fake.dataset(provider, collection)
    return {str(record[dataset.id_field]): record for record in dataset.records()}


def record_upstream(history: History, fake: FakeProviderServer, kind: str) -> None:
    for provider, collection in UPSTREAM:
        history.record(
            kind,
            "upstream",
            provider=provider,
            collection=collection,
            records=upstream_records(fake, provider, collection),
            at=time.time(),
        )


def must(
    recorder: HttpRecorder, http: httpx.Client, method: str, path: str, *, ok: tuple[int, ...], **kwargs: Any
) -> httpx.Response:
    """A request the soak cannot go on without: retried through 5xx and lost answers."""
    for attempt in range(ATTEMPTS):
        response = send(recorder, http, method, path, **kwargs)
        if response is not None and response.status_code in ok:
            return response
        if response is not None and response.status_code < 500 and response.status_code != 429:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text}")
        time.sleep(min(2.0, 0.1 * 2**attempt))
    raise RuntimeError(f"{method} {path} kept failing")


def create_world(
    recorder: HttpRecorder, http: httpx.Client, fake: FakeProviderServer, *, seed: int, sizes: dict[str, int]
) -> Setup:
    """The connections (Stripe, generic, Standard Webhooks), a subscription per soaked collection
    (incremental pulls every minute; full scans when triggered), and two consumers."""
    from pullbridge_local.quickstart import new_webhook_secret

    setup = Setup(standard_secret=new_webhook_secret())
    fake.dataset("stripe", "customers").seed(sizes["stripe"])
    fake.dataset("generic", "items").seed(sizes["generic"])
    bodies: dict[str, dict[str, Any]] = {
        "stripe": {
            "provider": "stripe",
            "webhook_secrets": [STRIPE_SECRET],
            "credentials": fake.credentials("stripe"),
            "api_base_url": fake.base_url,
        },
        "generic": {
            "provider": "generic",
            "webhook_secrets": ["generic-soak-secret"],
            "credentials": fake.credentials("generic"),
            "api_base_url": fake.base_url,
            "settings": fake.settings("generic", "items", mutations=GENERIC_MUTATIONS),
        },
        "standard": {"provider": "standard", "webhook_secrets": [setup.standard_secret]},
    }
    for name, body in bodies.items():
        created = must(
            recorder, http, "POST", "/connections", ok=(201,), json={"name": f"soak {name}", **body}
        )
        setup.connections[name] = {"id": created.json()["id"], "provider": body["provider"]}
    for provider, collection in UPSTREAM:
        connection_id = setup.connection_id(provider)
        body = {
            "connection_id": connection_id,
            "collection": collection,
            "full_sync_interval_seconds": 3600,
            "pull_updates_interval_seconds": 60,
            "backfill": True,
        }
        created = must(recorder, http, "POST", "/external-event-subscriptions", ok=(201,), json=body)
        setup.subscriptions.append(
            {
                "id": created.json()["id"],
                "connection_id": connection_id,
                "provider": provider,
                "collection": collection,
            }
        )
    consumers: dict[str, dict[str, Any]] = {
        "stripe": {"filters": {"provider": "stripe"}, "max_deliveries": None},
        "all": {"filters": {}, "max_deliveries": 5},
    }
    for name, options in consumers.items():
        body = {
            "name": f"soak-{seed}-{name}",
            "start": "all",
            "ack_wait_seconds": ACK_WAIT_SECONDS,
            "ordering": "record",
            **options,
        }
        created = must(recorder, http, "POST", "/consumers", ok=(201,), json=body)
        setup.consumers.append(
            {
                "id": created.json()["id"],
                "name": body["name"],
                "role": name,
                "filters": options["filters"],
                "max_deliveries": options["max_deliveries"],
                "ordering": "record",
                "ack_wait_seconds": ACK_WAIT_SECONDS,
            }
        )
    return setup


def store_of(endpoint: str) -> Store:
    return Store(
        dynamodb_client(endpoint), StorageSettings(events_table="EventsTable", control_table="ControlTable")
    )


def read_log(endpoint: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The tenant's log as the table holds it, position by position, read without the product's reader:
    the truth the pollers and consumers are compared with."""
    client = dynamodb_client(endpoint)
    request: dict[str, Any] = {
        "TableName": "EventsTable",
        "KeyConditionExpression": "pk = :pk AND sk > :zero",
        "ExpressionAttributeValues": {":pk": s(tenant_log(LOCAL_TENANT_ID)), ":zero": n(0)},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**request)
        for item in page.get("Items", []):
            if item.get("kind", {}).get("S", "event") == "event" and "id" in item:
                document = decode_document(item)
                document["id"] = item["id"]["S"]
                yield int(item["sk"]["N"]), document
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def output_paths(out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    return out / "history.jsonl", out / "faults.jsonl"
