"""A connection's health: its last webhook (kept on its log's head, at no cost to the webhook path), its
last pull, its last full scan and what that scan found that no webhook had delivered."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest

from pullbridge.health import healths, record_pull
from pullbridge.pulls.records import StoredPull
from pullbridge.storage import EventDraft, Store
from tests.integration.test_ingest_providers import _create
from tests.support import api_event, json_body, labelled_event, lambda_context, standard_webhook_event

TENANT = "t_alpha"


def _connection(api: ModuleType, api_key: str, connection_id: str) -> dict[str, Any]:
    response = api.lambda_handler(
        api_event("list_events.json", api_key, path=f"/connections/{connection_id}"), lambda_context()
    )
    assert response["statusCode"] == 200, response["body"]
    return json_body(response)  # type: ignore[no-any-return]


def _pull(connection_id: str, collection: str, **fields: Any) -> StoredPull:
    base = StoredPull(
        id=f"pull_{collection}",
        tenant_id=TENANT,
        subscription_id=f"sub_{collection}",
        connection_id=connection_id,
        provider="stripe",
        collection=collection,
        name="full scan",
        started_at=time.time() - 5,
        first_scan=False,
        status="success",
        ended_at=time.time(),
    )
    return replace(base, **fields)


def test_a_new_connection_has_an_empty_health(create_connection: Callable[..., dict[str, Any]]) -> None:
    assert create_connection()["health"] == {
        "last_webhook_at": None,
        "last_pull_at": None,
        "last_full_scan_at": None,
        "last_full_scan_status": None,
        "missed_by_webhooks": None,
    }


def test_a_webhook_sets_the_last_webhook_time_and_a_pull_event_does_not(
    api: ModuleType, ingest: ModuleType, api_key: str, connection: dict[str, Any], store: Store
) -> None:
    store.append(
        TENANT, connection["id"], [EventDraft(connection["id"], labelled_event(connection["id"], "p"))]
    )
    assert _connection(api, api_key, connection["id"])["health"]["last_webhook_at"] is None

    before = time.time()
    response = ingest.lambda_handler(
        standard_webhook_event(connection["id"], '{"type": "a.b"}'), lambda_context()
    )
    assert response["statusCode"] == 200
    seen = _connection(api, api_key, connection["id"])["health"]["last_webhook_at"]
    assert seen is not None
    from datetime import datetime

    assert before - 1 <= datetime.fromisoformat(seen.replace("Z", "+00:00")).timestamp() <= time.time() + 1


def test_pulls_report_the_last_full_scan_and_what_webhooks_missed(
    api: ModuleType, api_key: str, store: Store
) -> None:
    connection_id = _create(api, api_key, "stripe", None)
    record_pull(store, _pull(connection_id, "customers", collected_events_count=3))
    record_pull(store, _pull(connection_id, "invoices", collected_events_count=2))
    health = _connection(api, api_key, connection_id)["health"]
    assert (health["last_full_scan_status"], health["missed_by_webhooks"]) == ("success", 5)
    assert health["last_pull_at"] == health["last_full_scan_at"]

    time.sleep(0.01)
    record_pull(store, _pull(connection_id, "invoices", status="error", ended_at=time.time()))
    health = _connection(api, api_key, connection_id)["health"]
    assert health["last_full_scan_status"] == "error"
    assert health["missed_by_webhooks"] == 3  # a failed scan tells nothing of what webhooks missed


@pytest.mark.parametrize(
    ("provider", "first_scan", "expected"),
    [("stripe", True, None), ("github", False, None), ("stripe", False, 4)],
    ids=["a-first-scan-finds-everything", "github-webhooks-differ-from-its-list", "stripe"],
)
def test_missed_by_webhooks_is_told_only_where_it_can_be(
    api: ModuleType, api_key: str, store: Store, provider: str, first_scan: bool, expected: int | None
) -> None:
    connection_id = _create(api, api_key, "stripe", None)
    pull = _pull(
        connection_id, "customers", provider=provider, first_scan=first_scan, collected_events_count=4
    )
    record_pull(store, pull)
    assert healths(store, TENANT, [connection_id])[connection_id].missed_by_webhooks == expected


def test_a_page_of_connections_carries_each_ones_health(
    api: ModuleType, ingest: ModuleType, api_key: str, create_connection: Callable[..., dict[str, Any]]
) -> None:
    quiet, busy = create_connection(name="quiet"), create_connection(name="busy")
    ingest.lambda_handler(standard_webhook_event(busy["id"], '{"type": "a.b"}'), lambda_context())
    page = json_body(
        api.lambda_handler(api_event("list_events.json", api_key, path="/connections"), lambda_context())
    )
    by_id = {connection["id"]: connection["health"]["last_webhook_at"] for connection in page["data"]}
    assert by_id[quiet["id"]] is None
    assert by_id[busy["id"]] is not None
