"""The ingest Lambda, driven by `events/webhook_standard.json`, against moto's DynamoDB."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from pullbridge.settings import ApiSettings
from pullbridge.storage.keys import tenant_log
from tests.integration.conftest import counting, scan_events_table
from tests.support import api_event, json_body, lambda_context, standard_webhook_event

BODY = json.dumps({"type": "invoice.paid", "timestamp": "2026-11-24T00:00:00Z", "data": {"id": "inv_1"}})


def _events(api: ModuleType, api_key: str, **query: str) -> list[dict[str, Any]]:
    response = api.lambda_handler(
        api_event("list_events.json", api_key, query=query or None), lambda_context()
    )
    assert response["statusCode"] == 200, response["body"]
    return json_body(response)["data"]  # type: ignore[no-any-return]


def _stored_items(store: Any, settings: ApiSettings) -> list[dict[str, Any]]:
    return scan_events_table(store._client, settings.events_table)


def test_a_signed_delivery_is_stored_and_served(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    # Given a signed Standard Webhooks delivery
    response = ingest.lambda_handler(standard_webhook_event(connection["id"], BODY), lambda_context())
    # Then it is accepted with one event id, which GET /events serves with the contract's fields
    assert response["statusCode"] == 200
    accepted = json_body(response)
    assert accepted["duplicates"] == 0
    [event] = _events(api, api_key)
    assert event["id"] == accepted["event_ids"][0]
    assert event["type"] == "invoice.paid"
    assert event["action"] is None
    assert event["record_id"] == "inv_1"
    assert event["source"] == "webhook"
    assert event["pull_id"] is None
    assert event["occurred_at"] == "2026-11-24T00:00:00.000Z"
    assert event["data"] == {"id": "inv_1"}


def test_a_redelivery_answers_200_and_stores_nothing_new(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    first = json_body(
        ingest.lambda_handler(
            standard_webhook_event(connection["id"], BODY, message_id="m1"), lambda_context()
        )
    )
    again = ingest.lambda_handler(
        standard_webhook_event(connection["id"], BODY, message_id="m1"), lambda_context()
    )
    assert again["statusCode"] == 200
    assert json_body(again) == {"event_ids": first["event_ids"], "duplicates": 1}
    assert len(_events(api, api_key)) == 1


def test_concurrent_redeliveries_store_one_event(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    # Given eight copies of one delivery arriving at once
    results: list[dict[str, Any]] = []
    start = threading.Barrier(8)

    def deliver() -> None:
        start.wait()
        results.append(
            ingest.lambda_handler(
                standard_webhook_event(connection["id"], BODY, message_id="same"), lambda_context()
            )
        )

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then all are answered 200, exactly one is new, and all name the same event
    assert {result["statusCode"] for result in results} == {200}
    bodies = [json_body(result) for result in results]
    assert sorted(body["duplicates"] for body in bodies) == [0] + [1] * 7
    assert len({tuple(body["event_ids"]) for body in bodies}) == 1
    assert len(_events(api, api_key)) == 1


@pytest.mark.parametrize(
    ("mutate", "status", "key"),
    [
        (
            lambda e: e["headers"].update(
                {"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
            ),
            401,
            "invalid_signature",
        ),
        (lambda e: e["headers"].pop("webhook-signature"), 401, "missing_signature"),
        (lambda e: e["headers"].update({"webhook-signature": "garbage!!"}), 401, "malformed_signature"),
        (lambda e: e.update({"body": e["body"] + " "}), 401, "invalid_signature"),
        (lambda e: e["headers"].update({"webhook-timestamp": "not-a-time"}), 401, "malformed_signature"),
    ],
    ids=[
        "wrong-signature",
        "missing-signature",
        "malformed-signature",
        "tampered-body",
        "malformed-timestamp",
    ],
)
def test_a_bad_signature_gets_401_and_stores_nothing(
    ingest: ModuleType,
    store: Any,
    settings: ApiSettings,
    connection: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    status: int,
    key: str,
) -> None:
    event = standard_webhook_event(connection["id"], BODY)
    mutate(event)
    response = ingest.lambda_handler(event, lambda_context())
    assert response["statusCode"] == status
    assert json_body(response)["error"]["type"] == "unauthorized"
    assert json_body(response)["error"]["key"] == key
    assert _stored_items(store, settings) == []


def test_a_stale_timestamp_gets_401(
    ingest: ModuleType, store: Any, settings: ApiSettings, connection: dict[str, Any]
) -> None:
    event = standard_webhook_event(connection["id"], BODY, timestamp=int(time.time()) - 301)
    response = ingest.lambda_handler(event, lambda_context())
    assert response["statusCode"] == 401
    assert json_body(response)["error"]["key"] == "stale_timestamp"
    assert _stored_items(store, settings) == []


def test_a_timestamp_inside_tolerance_is_accepted(ingest: ModuleType, connection: dict[str, Any]) -> None:
    event = standard_webhook_event(connection["id"], BODY, timestamp=int(time.time()) - 290)
    assert ingest.lambda_handler(event, lambda_context())["statusCode"] == 200


def test_an_unknown_connection_gets_404(ingest: ModuleType, store: Any, settings: ApiSettings) -> None:
    response = ingest.lambda_handler(standard_webhook_event("conn_doesnotexist", BODY), lambda_context())
    assert response["statusCode"] == 404
    assert json_body(response)["error"]["type"] == "not_found"
    assert _stored_items(store, settings) == []


def test_an_archived_connection_gets_404_even_when_cached(
    ingest: ModuleType,
    api: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    store: Any,
    settings: ApiSettings,
) -> None:
    # Given a warm ingest instance that has the connection cached
    assert (
        ingest.lambda_handler(
            standard_webhook_event(connection["id"], BODY, message_id="m1"), lambda_context()
        )["statusCode"]
        == 200
    )
    # When the connection is archived
    path = f"/connections/{connection['id']}"
    archived = api.lambda_handler(
        api_event(
            "get_event.json",
            api_key,
            path=path,
            method="DELETE",
            path_parameters={"connection_id": connection["id"]},
        ),
        lambda_context(),
    )
    assert archived["statusCode"] == 200, archived["body"]
    # Then its next webhook gets 404, and no event is added
    response = ingest.lambda_handler(
        standard_webhook_event(connection["id"], BODY, message_id="m2"), lambda_context()
    )
    assert response["statusCode"] == 404
    assert len(_events(api, api_key)) == 1


def test_a_body_over_1_mib_gets_413(
    ingest: ModuleType, store: Any, settings: ApiSettings, connection: dict[str, Any]
) -> None:
    body = json.dumps({"type": "big", "data": {"blob": "x" * (1024 * 1024)}})
    response = ingest.lambda_handler(standard_webhook_event(connection["id"], body), lambda_context())
    assert response["statusCode"] == 413
    assert json_body(response)["error"]["type"] == "payload_too_large"
    assert _stored_items(store, settings) == []


def test_a_large_body_under_1_mib_is_stored_whole(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    blob = "".join(f"{i:08d}" for i in range(100_000))  # 800 kB, past DynamoDB's 400 kB item limit raw
    body = json.dumps({"type": "big", "data": {"blob": blob}})
    response = ingest.lambda_handler(standard_webhook_event(connection["id"], body), lambda_context())
    assert response["statusCode"] == 200, response["body"]
    [event] = _events(api, api_key)
    assert event["data"]["blob"] == blob


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1,2,3]", b'{"data": {}}', b"\xff\xfe"],
    ids=["text", "array", "no-type", "binary"],
)
def test_a_malformed_payload_gets_400(
    ingest: ModuleType, store: Any, settings: ApiSettings, connection: dict[str, Any], body: bytes
) -> None:
    event = standard_webhook_event(connection["id"], body)
    response = ingest.lambda_handler(event, lambda_context())
    assert response["statusCode"] == 400, response["body"]
    assert json_body(response)["error"]["type"] == "bad_request"
    assert _stored_items(store, settings) == []


def test_a_storage_failure_answers_503_and_leaves_nothing_readable(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    # Given DynamoDB throttles the commit
    with counting(ingest.store._client) as calls:
        calls.fail("TransactWriteItems")
        response = ingest.lambda_handler(
            standard_webhook_event(connection["id"], BODY, message_id="m1"), lambda_context()
        )
    # Then the provider is told to retry, without a trace or a secret in the answer
    assert response["statusCode"] == 503
    error = json_body(response)["error"]
    assert error["type"] == "internal"
    assert "Traceback" not in response["body"]
    assert _events(api, api_key) == []
    # And the retry, once DynamoDB is back, is stored once
    assert (
        ingest.lambda_handler(
            standard_webhook_event(connection["id"], BODY, message_id="m1"), lambda_context()
        )["statusCode"]
        == 200
    )
    assert len(_events(api, api_key)) == 1


def test_a_warm_webhook_costs_one_dynamodb_request_and_no_scan(
    ingest: ModuleType, connection: dict[str, Any]
) -> None:
    with counting(ingest.store._client) as cold:
        ingest.lambda_handler(
            standard_webhook_event(connection["id"], BODY, message_id="warm-up"), lambda_context()
        )
    with counting(ingest.store._client) as calls:
        response = ingest.lambda_handler(
            standard_webhook_event(connection["id"], BODY, message_id="m2"), lambda_context()
        )
    # A new instance reads the connection, and the two log heads in one request; once it knows them,
    # the commit moves them itself
    assert cold.names == ["GetItem", "BatchGetItem", "TransactWriteItems"]
    assert response["statusCode"] == 200
    assert calls.names == ["TransactWriteItems"]


def test_any_active_secret_verifies_and_a_removed_one_stops_at_once(
    ingest: ModuleType, api: ModuleType, api_key: str, create_connection: Callable[..., dict[str, Any]]
) -> None:
    old, new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    connection = create_connection(webhook_secrets=[old, new])
    for index, secret in enumerate((old, new)):
        event = standard_webhook_event(connection["id"], BODY, secret=secret, message_id=f"m{index}")
        assert ingest.lambda_handler(event, lambda_context())["statusCode"] == 200
    # When the old secret is rotated out while the ingest instance has the connection cached
    patch = api_event(
        "get_event.json",
        api_key,
        path=f"/connections/{connection['id']}",
        method="PATCH",
        path_parameters={"connection_id": connection["id"]},
        body={"webhook_secrets": [new]},
    )
    assert api.lambda_handler(patch, lambda_context())["statusCode"] == 200
    # Then the old secret is rejected at once, and the new one still works
    stale = standard_webhook_event(connection["id"], BODY, secret=old, message_id="m3")
    assert ingest.lambda_handler(stale, lambda_context())["statusCode"] == 401
    fresh = standard_webhook_event(connection["id"], BODY, secret=new, message_id="m4")
    assert ingest.lambda_handler(fresh, lambda_context())["statusCode"] == 200


def test_every_dynamodb_call_of_the_webhook_path_is_allowed_by_the_template(
    ingest: ModuleType, connection: dict[str, Any], template: dict[str, Any]
) -> None:
    # Given the IngestFunction's policy in template.yaml
    allowed = {
        action.removeprefix("dynamodb:")
        for policy in template["Resources"]["IngestFunction"]["Properties"]["Policies"]
        for statement in policy["Statement"]
        for action in statement["Action"]
    }
    # When the webhook path runs its accepting, duplicate, batch-release and failing branches
    with counting(ingest.store._client) as calls:
        for message_id in ("m1", "m1"):
            ingest.store._heads.clear()  # a new instance: it reads the heads
            # under contention: it takes positions with an ADD, releasing them on failure
            ingest.store._contended_until[tenant_log("t_alpha")] = time.time() + 60
            ingest.lambda_handler(
                standard_webhook_event(connection["id"], BODY, message_id=message_id), lambda_context()
            )
        calls.fail("TransactWriteItems")
        ingest.lambda_handler(
            standard_webhook_event(connection["id"], BODY, message_id="m2"), lambda_context()
        )
    # Then each call it made is allowed (a transaction is authorised per contained action)
    used = set(calls.names) - {"TransactWriteItems"}
    assert {"BatchGetItem", "UpdateItem", "BatchWriteItem"} <= used
    assert used <= allowed
    assert {"PutItem", "ConditionCheckItem"} <= allowed
