"""The API Lambda, driven by the `events/` samples, against moto's DynamoDB."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from pullbridge.cursors import Cursor, CursorCodec
from tests.conftest import CURSOR_SECRET
from tests.support import TEST_SECRET, api_event, json_body, lambda_context, standard_webhook_event


def call(api: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    response = api.lambda_handler(event, lambda_context())
    return response["statusCode"], json_body(response)


def list_events(api: ModuleType, key: str, **query: str) -> tuple[int, Any]:
    return call(api, api_event("list_events.json", key, query=query))


def deliver(
    ingest: ModuleType, connection_id: str, count: int, *, prefix: str = "m", type_: str = "invoice.paid"
) -> list[str]:
    ids = []
    for index in range(count):
        body = json.dumps({"type": type_, "timestamp": "2026-11-24T00:00:00Z", "data": {"n": index}})
        response = ingest.lambda_handler(
            standard_webhook_event(connection_id, body, message_id=f"{prefix}{index}"), lambda_context()
        )
        assert response["statusCode"] == 200, response["body"]
        ids.extend(json_body(response)["event_ids"])
    return ids


def connection_event(key: str, connection_id: str, method: str, body: Any = None) -> dict[str, Any]:
    return api_event(
        "get_event.json",
        key,
        path=f"/connections/{connection_id}",
        method=method,
        path_parameters={"connection_id": connection_id},
        body=body,
    )


# --- authentication -----------------------------------------------------------------------------


def test_health_needs_no_key(api: ModuleType) -> None:
    assert call(api, api_event("health.json", None)) == (200, {"status": "ok", "checks": {}})


@pytest.mark.parametrize("key", [None, "pb_not_a_real_key_at_all_000000"], ids=["missing", "wrong"])
def test_events_without_a_valid_key_get_401(api: ModuleType, key: str | None, api_key: str) -> None:
    status, body = list_events(api, key)  # type: ignore[arg-type]
    assert status == 401
    assert body["error"]["type"] == "unauthorized"


def test_openapi_document_is_generated_and_needs_a_key(api: ModuleType, api_key: str) -> None:
    status, document = call(api, api_event("health.json", api_key, path="/openapi.json"))
    assert status == 200
    assert document["openapi"].startswith("3.1")
    assert {
        "/events",
        "/events/{event_id}",
        "/connections",
        "/connections/{connection_id}",
        "/health",
    } <= set(document["paths"])
    assert call(api, api_event("health.json", None, path="/openapi.json"))[0] == 401


# --- connections --------------------------------------------------------------------------------


def test_a_created_connection_never_shows_its_secrets(api: ModuleType, api_key: str) -> None:
    body = {
        "provider": "standard",
        "name": "billing",
        "webhook_secrets": [TEST_SECRET],
        "credentials": {"api_key": "sk_live_very_secret"},
        "metadata": {"team": "payments"},
    }
    response = api.lambda_handler(api_event("create_connection.json", api_key, body=body), lambda_context())
    assert response["statusCode"] == 201
    created = json_body(response)
    assert created["id"].startswith("conn_")
    assert (
        created["webhook_url"]
        == f"https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/{created['id']}"
    )
    assert created["webhook_secrets_count"] == 1
    assert created["credentials_set"] is True
    assert created["metadata"] == {"team": "payments"}
    for secret in (TEST_SECRET, "sk_live_very_secret"):
        assert secret not in response["body"]
        assert secret not in json.dumps(call(api, connection_event(api_key, created["id"], "GET"))[1])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "nope", "name": "x", "webhook_secrets": [TEST_SECRET]}, "provider"),
        ({"provider": "standard", "name": "", "webhook_secrets": [TEST_SECRET]}, "name"),
        ({"provider": "standard", "name": "x", "webhook_secrets": ["not-whsec"]}, "webhook_secrets.0"),
        ({"provider": "standard", "name": "x", "api_base_url": "https://10.0.0.8/api"}, "api_base_url"),
        ({"provider": "standard", "name": "x", "api_base_url": "http://example.com"}, "api_base_url"),
        ({"provider": "standard", "name": "x", "surprise": 1}, "surprise"),
    ],
    ids=["provider", "name", "secret-format", "private-url", "plain-http", "unknown-field"],
)
def test_an_invalid_connection_gets_400_naming_the_field(
    api: ModuleType, api_key: str, body: dict[str, Any], field: str
) -> None:
    status, error = call(api, api_event("create_connection.json", api_key, body=body))
    assert status == 400
    assert error["error"]["type"] == "bad_request"
    assert error["error"]["data"]["field"] == field
    assert call(api, api_event("health.json", api_key, path="/connections"))[1]["data"] == []


def test_malformed_json_gets_400(api: ModuleType, api_key: str) -> None:
    status, error = call(api, api_event("create_connection.json", api_key, body="{not json"))
    assert status == 400
    assert error["error"]["type"] == "bad_request"


def test_connections_list_pages_newest_first(
    api: ModuleType, api_key: str, create_connection: Callable[..., dict[str, Any]]
) -> None:
    created = [create_connection(name=f"c{index}")["id"] for index in range(3)]
    status, first = call(api, api_event("health.json", api_key, path="/connections", query={"limit": "2"}))
    assert status == 200
    assert first["has_more"] is True
    status, second = call(
        api,
        api_event(
            "health.json", api_key, path="/connections", query={"limit": "2", "cursor": first["next_cursor"]}
        ),
    )
    listed = [item["id"] for item in first["data"] + second["data"]]
    assert sorted(listed) == sorted(created)
    assert second["has_more"] is False


def test_patch_renames_and_delete_archives(api: ModuleType, api_key: str, connection: dict[str, Any]) -> None:
    status, renamed = call(api, connection_event(api_key, connection["id"], "PATCH", {"name": "renamed"}))
    assert (status, renamed["name"]) == (200, "renamed")
    status, archived = call(api, connection_event(api_key, connection["id"], "DELETE"))
    assert (status, archived["status"]) == (200, "archived")
    assert call(api, api_event("health.json", api_key, path="/connections"))[1]["data"] == []
    status, error = call(api, connection_event(api_key, connection["id"], "PATCH", {"name": "again"}))
    assert (status, error["error"]["type"]) == (409, "conflict")


# --- tenant isolation ---------------------------------------------------------------------------


def test_another_tenants_connection_does_not_exist(
    api: ModuleType, other_api_key: str, connection: dict[str, Any]
) -> None:
    for method, body in (("GET", None), ("PATCH", {"name": "mine"}), ("DELETE", None)):
        status, error = call(api, connection_event(other_api_key, connection["id"], method, body))
        assert (status, error["error"]["type"]) == (404, "not_found")


def test_another_tenants_events_ids_and_cursors_do_not_exist(
    api: ModuleType, ingest: ModuleType, api_key: str, other_api_key: str, connection: dict[str, Any]
) -> None:
    [event_id] = deliver(ingest, connection["id"], 1)
    # The other tenant sees no events, cannot fetch ours by id, and cannot use our cursor
    assert list_events(api, other_api_key)[1]["data"] == []
    event = api_event(
        "get_event.json", other_api_key, path=f"/events/{event_id}", path_parameters={"event_id": event_id}
    )
    assert call(api, event)[0] == 404
    cursor = list_events(api, api_key)[1]["next_cursor"]
    status, error = list_events(api, other_api_key, cursor=cursor)
    assert (status, error["error"]["type"]) == (400, "bad_request")


# --- events -------------------------------------------------------------------------------------


def test_get_one_event_by_id(
    api: ModuleType, ingest: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    [event_id] = deliver(ingest, connection["id"], 1)
    status, event = call(
        api,
        api_event(
            "get_event.json", api_key, path=f"/events/{event_id}", path_parameters={"event_id": event_id}
        ),
    )
    assert (status, event["id"]) == (200, event_id)
    forged = event_id[:-4] + "zzzz"
    assert (
        call(
            api,
            api_event(
                "get_event.json", api_key, path=f"/events/{forged}", path_parameters={"event_id": forged}
            ),
        )[0]
        == 404
    )


def test_following_next_cursor_reads_every_event_once_in_order(
    api: ModuleType, ingest: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    delivered = deliver(ingest, connection["id"], 7)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        status, page = list_events(api, api_key, limit="3", **({"cursor": cursor} if cursor else {}))
        assert status == 200
        seen.extend(event["id"] for event in page["data"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == delivered
    # A page with nothing new returns the cursor that was sent
    status, empty = list_events(api, api_key, cursor=cursor)
    assert (empty["data"], empty["next_cursor"], empty["has_more"]) == ([], cursor, False)


def test_filters_select_events(
    api: ModuleType, ingest: ModuleType, api_key: str, create_connection: Callable[..., dict[str, Any]]
) -> None:
    first, second = create_connection(name="a"), create_connection(name="b")
    ours = deliver(ingest, first["id"], 2, type_="invoice.paid")
    deliver(ingest, second["id"], 2, prefix="x", type_="invoice.created")
    by_connection = list_events(api, api_key, connection_id=first["id"])[1]["data"]
    assert [event["id"] for event in by_connection] == ours
    by_type = list_events(api, api_key, type="invoice.created")[1]["data"]
    assert {event["connection_id"] for event in by_type} == {second["id"]}
    assert list_events(api, api_key, source="pull")[1]["data"] == []
    assert len(list_events(api, api_key, provider="standard", source="webhook")[1]["data"]) == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"wait": "21"}, "wait"),
        ({"source": "fax"}, "source"),
    ],
)
def test_out_of_range_parameters_get_400_naming_the_field(
    api: ModuleType, api_key: str, query: dict[str, str], field: str
) -> None:
    status, error = list_events(api, api_key, **query)
    assert status == 400
    assert error["error"]["data"]["field"] == field


def test_a_forged_cursor_gets_400(
    api: ModuleType, ingest: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    deliver(ingest, connection["id"], 2)
    cursor = list_events(api, api_key, limit="1")[1]["next_cursor"]
    payload, mac = cursor.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    for bad in (tampered, "garbage", cursor + "x", "." + cursor.split(".")[1]):
        status, error = list_events(api, api_key, cursor=bad)
        assert (status, error["error"]["type"]) == (400, "bad_request")


def test_a_cursor_used_with_other_filters_gets_400(
    api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    cursor = list_events(api, api_key, connection_id=connection["id"])[1]["next_cursor"]
    status, error = list_events(api, api_key, cursor=cursor)
    assert (status, error["error"]["key"]) == (400, "cursor_filters_mismatch")


def test_a_cursor_older_than_retention_gets_410(api: ModuleType, api_key: str) -> None:
    from pullbridge.cursors import scope_of

    codec = CursorCodec(CURSOR_SECRET)
    scope = scope_of("events", {})
    old = codec.encode(Cursor("t_alpha", scope, 5, time.time() - 31 * 86_400))
    status, error = list_events(api, api_key, cursor=old)
    assert (status, error["error"]["type"]) == (410, "gone")
    recent = codec.encode(Cursor("t_alpha", scope, 0, time.time() - 29 * 86_400))
    assert list_events(api, api_key, cursor=recent)[0] == 200


def test_long_polling_returns_as_soon_as_an_event_arrives(
    api: ModuleType, ingest: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    cursor = list_events(api, api_key)[1]["next_cursor"]
    timer = threading.Timer(0.5, deliver, args=(ingest, connection["id"], 1))
    started = time.monotonic()
    timer.start()
    status, page = list_events(api, api_key, cursor=cursor, wait="10")
    elapsed = time.monotonic() - started
    timer.join()
    assert status == 200
    assert len(page["data"]) == 1
    assert 0.4 < elapsed < 3


def test_long_polling_with_nothing_new_holds_for_the_wait_and_returns_the_same_cursor(
    api: ModuleType, api_key: str
) -> None:
    cursor = list_events(api, api_key)[1]["next_cursor"]
    started = time.monotonic()
    status, page = list_events(api, api_key, cursor=cursor, wait="1")
    assert time.monotonic() - started >= 0.95
    assert (status, page["data"], page["next_cursor"]) == (200, [], cursor)


def test_expired_events_are_never_served(
    api: ModuleType,
    ingest: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [event_id] = deliver(ingest, connection["id"], 1)
    # When the clock passes the retention period, before DynamoDB's TTL has deleted anything
    later = time.time() + 31 * 86_400
    monkeypatch.setattr(api.store, "_clock", lambda: later)
    assert list_events(api, api_key)[1]["data"] == []
    event = api_event(
        "get_event.json", api_key, path=f"/events/{event_id}", path_parameters={"event_id": event_id}
    )
    assert call(api, event)[0] == 404
