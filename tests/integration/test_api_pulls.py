"""Subscriptions and pulls through the API Lambda."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.support import api_event, json_body, lambda_context


def call(
    api: ModuleType,
    key: str | None,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    parameters = {}
    parts = path.strip("/").split("/")
    if parts[0] == "external-event-subscriptions" and len(parts) > 1:
        parameters["subscription_id"] = parts[1]
    if parts[0] == "external-event-pulls" and len(parts) > 1:
        parameters["pull_id"] = parts[1]
    event = api_event(
        "health.json",
        key,
        path=path,
        method=method,
        body=body,
        query=query,
        path_parameters=parameters or None,
    )
    response = api.lambda_handler(event, lambda_context())
    return response["statusCode"], json_body(response) if response.get("body") else None


@pytest.fixture
def stripe_connection(api: ModuleType, api_key: str) -> str:
    body = {
        "provider": "stripe",
        "name": "acct",
        "webhook_secrets": ["whsec_test"],
        "credentials": {"api_key": "sk_test_1"},
    }
    status, created = call(api, api_key, "POST", "/connections", body=body)
    assert status == 201, created
    return str(created["id"])


@pytest.fixture
def subscription(api: ModuleType, api_key: str, stripe_connection: str) -> dict[str, Any]:
    status, created = call(
        api,
        api_key,
        "POST",
        "/external-event-subscriptions",
        body={"connection_id": stripe_connection, "collection": "customers"},
    )
    assert status == 201, created
    return created  # type: ignore[no-any-return]


def test_a_subscription_is_created_with_the_contract_fields(
    subscription: dict[str, Any], stripe_connection: str
) -> None:
    assert subscription["id"].startswith("sub_")
    assert (subscription["connection_id"], subscription["provider"], subscription["collection"]) == (
        stripe_connection,
        "stripe",
        "customers",
    )
    assert (
        subscription["full_sync_interval_seconds"],
        subscription["pull_updates_interval_seconds"],
        subscription["backfill"],
        subscription["max_age_days"],
    ) == (10_800, None, True, None)
    assert (subscription["status"], subscription["last_pull_id"], subscription["error"]) == (
        "subscribed",
        None,
        None,
    )
    assert subscription["next_pull_at"] is not None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"collection": "planets"}, 400, "collection"),
        ({"collection": "customers", "full_sync_interval_seconds": 59}, 400, "full_sync_interval_seconds"),
        ({"collection": "customers", "surprise": True}, 400, "surprise"),
        (
            {"collection": "customers", "pull_updates_interval_seconds": 59},
            400,
            "pull_updates_interval_seconds",
        ),
        (
            {"collection": "customers", "pull_updates_interval_seconds": 86_401},
            400,
            "pull_updates_interval_seconds",
        ),
        (
            {
                "collection": "customers",
                "full_sync_interval_seconds": 600,
                "pull_updates_interval_seconds": 600,
            },
            400,
            "pull_updates_interval_seconds",
        ),
    ],
    ids=[
        "unknown-collection",
        "interval-below-60",
        "unknown-field",
        "updates-below-60",
        "updates-above-a-day",
        "updates-not-shorter-than-full-scans",
    ],
)
def test_an_invalid_subscription_gets_400_naming_the_field(
    api: ModuleType, api_key: str, stripe_connection: str, body: dict[str, Any], status: int, field: str
) -> None:
    answer, error = call(
        api,
        api_key,
        "POST",
        "/external-event-subscriptions",
        body={"connection_id": stripe_connection, **body},
    )
    assert (answer, error["error"]["data"]["field"]) == (status, field)


def test_a_second_subscription_to_the_same_collection_gets_409(
    api: ModuleType, api_key: str, subscription: dict[str, Any], stripe_connection: str
) -> None:
    status, error = call(
        api,
        api_key,
        "POST",
        "/external-event-subscriptions",
        body={"connection_id": stripe_connection, "collection": "customers"},
    )
    assert (status, error["error"]["type"]) == (409, "conflict")


def test_another_tenants_connection_and_subscription_do_not_exist(
    api: ModuleType, other_api_key: str, subscription: dict[str, Any], stripe_connection: str
) -> None:
    status, _ = call(
        api,
        other_api_key,
        "POST",
        "/external-event-subscriptions",
        body={"connection_id": stripe_connection, "collection": "invoices"},
    )
    assert status == 404
    for method in ("GET", "DELETE"):
        assert (
            call(api, other_api_key, method, f"/external-event-subscriptions/{subscription['id']}")[0] == 404
        )
    assert (
        call(api, other_api_key, "POST", f"/external-event-subscriptions/{subscription['id']}/pull")[0] == 404
    )
    assert call(api, other_api_key, "GET", "/external-event-subscriptions")[1]["data"] == []


def test_subscriptions_can_be_listed_paused_and_deleted(
    api: ModuleType, api_key: str, subscription: dict[str, Any]
) -> None:
    path = f"/external-event-subscriptions/{subscription['id']}"
    assert [s["id"] for s in call(api, api_key, "GET", "/external-event-subscriptions")[1]["data"]] == [
        subscription["id"]
    ]
    status, paused = call(
        api, api_key, "PATCH", path, body={"status": "paused", "full_sync_interval_seconds": 3600}
    )
    assert (status, paused["status"], paused["full_sync_interval_seconds"]) == (200, "paused", 3600)
    assert call(api, api_key, "DELETE", path)[0] == 204
    assert call(api, api_key, "GET", path)[0] == 404


def test_a_trigger_answers_202_with_the_pull_and_409_while_it_runs(
    api: ModuleType, api_key: str, subscription: dict[str, Any]
) -> None:
    status, pull = call(api, api_key, "POST", f"/external-event-subscriptions/{subscription['id']}/pull")
    assert status == 202
    assert (pull["status"], pull["is_full_scan"]) == ("queued", True)
    assert pull["external_event_subscription_id"] == subscription["id"]
    assert pull["stats"] == {
        k: 0
        for k in (
            "pages",
            "requests",
            "records_seen",
            "created",
            "updated",
            "deleted",
            "unchanged",
            "retries",
        )
    }
    assert (
        pull["collected_event_ids"],
        pull["collected_events_count"],
        pull["error"],
        pull["end_datetime"],
    ) == ([], 0, None, None)
    status, conflict = call(api, api_key, "POST", f"/external-event-subscriptions/{subscription['id']}/pull")
    assert (status, conflict["error"]["data"]["pull_id"]) == (409, pull["id"])
    assert call(api, api_key, "GET", f"/external-event-pulls/{pull['id']}")[1]["id"] == pull["id"]


def test_pulls_are_listed_newest_first_with_filters(
    api: ModuleType, api_key: str, other_api_key: str, subscription: dict[str, Any], stripe_connection: str
) -> None:
    _, pull = call(api, api_key, "POST", f"/external-event-subscriptions/{subscription['id']}/pull")
    listed = call(api, api_key, "GET", "/external-event-pulls")[1]
    assert [p["id"] for p in listed["data"]] == [pull["id"]]
    for query in (
        {"status": "queued"},
        {"external_event_subscription_id": subscription["id"]},
        {"connection_id": stripe_connection, "provider": "stripe"},
        {"from": "2000-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"},
    ):
        assert [
            p["id"] for p in call(api, api_key, "GET", "/external-event-pulls", query=query)[1]["data"]
        ] == [pull["id"]], query
    for query in (
        {"status": "success"},
        {"external_event_subscription_id": "sub_other"},
        {"to": "2000-01-01T00:00:00Z"},
    ):
        assert call(api, api_key, "GET", "/external-event-pulls", query=query)[1]["data"] == [], query
    assert call(api, other_api_key, "GET", "/external-event-pulls")[1]["data"] == []
    assert call(api, other_api_key, "GET", f"/external-event-pulls/{pull['id']}")[0] == 404


@pytest.mark.parametrize(
    "query", [{"limit": "1001"}, {"limit": "0"}, {"status": "sleeping"}, {"from": "yesterday"}]
)
def test_invalid_pull_listing_parameters_get_400(
    api: ModuleType, api_key: str, query: dict[str, str]
) -> None:
    status, error = call(api, api_key, "GET", "/external-event-pulls", query=query)
    assert (status, error["error"]["type"]) == (400, "bad_request")


# --- incremental pulls ------------------------------------------------------------------------------


def test_a_subscription_takes_an_updates_interval_and_patch_turns_it_on_and_off(
    api: ModuleType, api_key: str, stripe_connection: str
) -> None:
    status, created = call(
        api,
        api_key,
        "POST",
        "/external-event-subscriptions",
        body={
            "connection_id": stripe_connection,
            "collection": "invoices",
            "pull_updates_interval_seconds": 300,
        },
    )
    assert (status, created["pull_updates_interval_seconds"]) == (201, 300)
    path = f"/external-event-subscriptions/{created['id']}"
    status, patched = call(api, api_key, "PATCH", path, body={"max_age_days": 3})
    assert (status, patched["pull_updates_interval_seconds"]) == (200, 300)  # left out: it stays
    status, patched = call(api, api_key, "PATCH", path, body={"pull_updates_interval_seconds": None})
    assert (status, patched["pull_updates_interval_seconds"]) == (200, None)
    status, patched = call(api, api_key, "PATCH", path, body={"pull_updates_interval_seconds": 120})
    assert (status, patched["pull_updates_interval_seconds"]) == (200, 120)
    assert call(api, api_key, "GET", path)[1]["pull_updates_interval_seconds"] == 120


@pytest.mark.parametrize(
    "body",
    [
        {"full_sync_interval_seconds": 120},
        {"pull_updates_interval_seconds": 10_800},
        {"pull_updates_interval_seconds": 30},
    ],
    ids=["full-scans-as-often", "updates-as-often", "updates-below-60"],
)
def test_a_patch_that_leaves_updates_no_shorter_than_full_scans_gets_400_naming_the_field(
    api: ModuleType, api_key: str, stripe_connection: str, body: dict[str, Any]
) -> None:
    _, created = call(
        api,
        api_key,
        "POST",
        "/external-event-subscriptions",
        body={
            "connection_id": stripe_connection,
            "collection": "prices",
            "pull_updates_interval_seconds": 120,
        },
    )
    path = f"/external-event-subscriptions/{created['id']}"

    status, error = call(api, api_key, "PATCH", path, body=body)

    assert (status, error["error"]["data"]["field"]) == (400, "pull_updates_interval_seconds")
    assert call(api, api_key, "GET", path)[1]["full_sync_interval_seconds"] == 10_800


GENERIC_SETTINGS = {
    "signature_header": "X-Signature",
    "delivery_id_header": "X-Delivery-Id",
    "list_path": "/v1/items",
    "items_path": "data",
}


@pytest.mark.parametrize(
    ("connection_settings", "status"),
    [
        (GENERIC_SETTINGS, 400),
        ({**GENERIC_SETTINGS, "updated_since_param": "updated_since"}, 201),
        ({"signature_header": "X-Signature", "delivery_id_header": "X-Delivery-Id", "mode": "feed"}, 400),
    ],
    ids=["rest-without-the-parameter", "rest-with-it", "feed"],
)
def test_a_generic_connection_offers_incremental_pulls_only_with_an_updated_since_parameter(
    api: ModuleType, api_key: str, connection_settings: dict[str, Any], status: int
) -> None:
    connection = {
        "provider": "generic",
        "name": "tickets",
        "webhook_secrets": ["whsec_test"],
        "api_base_url": "https://api.example.com",
        "settings": connection_settings,
    }
    _, created = call(api, api_key, "POST", "/connections", body=connection)
    request = {"connection_id": created["id"], "collection": "items", "pull_updates_interval_seconds": 60}

    answer, body = call(api, api_key, "POST", "/external-event-subscriptions", body=request)

    assert answer == status, body
    if status == 400:
        assert body["error"]["data"]["field"] == "pull_updates_interval_seconds"


def test_a_malformed_updated_since_setting_is_refused_at_connection_naming_it(
    api: ModuleType, api_key: str
) -> None:
    connection = {
        "provider": "generic",
        "name": "tickets",
        "webhook_secrets": ["whsec_test"],
        "settings": {**GENERIC_SETTINGS, "updated_since_param": "updated since"},
    }

    status, error = call(api, api_key, "POST", "/connections", body=connection)

    assert (status, error["error"]["data"]["field"]) == (400, "settings.updated_since_param")


def test_a_standard_connection_has_no_collection_to_pull_incrementally(api: ModuleType, api_key: str) -> None:
    connection = {
        "provider": "standard",
        "name": "std",
        "webhook_secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    }
    _, created = call(api, api_key, "POST", "/connections", body=connection)
    request = {"connection_id": created["id"], "collection": "events", "pull_updates_interval_seconds": 60}

    status, error = call(api, api_key, "POST", "/external-event-subscriptions", body=request)

    assert (status, error["error"]["data"]["field"]) == (400, "collection")
