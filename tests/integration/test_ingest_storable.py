"""Every delivery whose signature verifies is stored faithfully, or refused with a 4xx that says why:
never a 5xx that a retry cannot cure (issue 11)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from pullbridge.settings import ApiSettings
from pullbridge.storage import HASHED_KEY_PREFIX, SnapshotChange, Store
from tests.integration.conftest import scan_events_table
from tests.support import api_event, json_body, lambda_context, standard_webhook_event

# A truncated emoji: a lone surrogate escape, which is valid JSON but cannot be encoded as UTF-8.
LONE_SURROGATE_BODY = b'{"type":"x","data":{"title":"broken \\ud83d emoji"}}'


def _deliver(ingest: ModuleType, connection_id: str, body: bytes, message_id: str) -> dict[str, Any]:
    return ingest.lambda_handler(  # type: ignore[no-any-return]
        standard_webhook_event(connection_id, body, message_id=message_id), lambda_context()
    )


def _events(api: ModuleType, api_key: str) -> list[dict[str, Any]]:
    response = api.lambda_handler(api_event("list_events.json", api_key), lambda_context())
    assert response["statusCode"] == 200, response["body"]
    return json_body(response)["data"]  # type: ignore[no-any-return]


def test_a_lone_surrogate_is_stored_and_served_as_sent(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    # Given a signed delivery whose payload holds a lone surrogate escape
    response = _deliver(ingest, connection["id"], LONE_SURROGATE_BODY, "msg_surrogate")
    # Then it is stored (not answered 5xx forever)
    assert response["statusCode"] == 200, response["body"]
    # And GET /events gives back the same JSON: the escape survives, and parses to the same string
    [event] = _events(api, api_key)
    assert event["data"] == {"title": "broken \ud83d emoji"}
    assert event["data"] == json.loads(LONE_SURROGATE_BODY)["data"]
    # And a redelivery is still a duplicate
    again = _deliver(ingest, connection["id"], LONE_SURROGATE_BODY, "msg_surrogate")
    assert json_body(again)["duplicates"] == 1


def test_a_lone_surrogate_in_the_event_type_is_stored(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    body = b'{"type":"invoice.\\udc00paid","data":{"id":"inv_\\ud800"}}'
    response = _deliver(ingest, connection["id"], body, "msg_type")
    assert response["statusCode"] == 200, response["body"]
    [event] = _events(api, api_key)
    assert event["type"] == "invoice.\udc00paid"
    assert event["record_id"] == "inv_\ud800"


def test_a_delivery_id_past_the_key_limit_dedupes_by_its_hash(
    ingest: ModuleType,
    api: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    store: Store,
    settings: ApiSettings,
) -> None:
    # Given two delivery ids of 3,000 characters that share their first 2,900
    long_id = "m" * 2_900 + "a" * 100
    other_id = "m" * 2_900 + "b" * 100
    body = b'{"type":"x","data":{}}'
    # Then each is stored once, and a redelivery of either is a duplicate
    first = _deliver(ingest, connection["id"], body, long_id)
    assert first["statusCode"] == 200, first["body"]
    assert json_body(_deliver(ingest, connection["id"], body, long_id))["duplicates"] == 1
    second = _deliver(ingest, connection["id"], body, other_id)
    assert json_body(second)["duplicates"] == 0
    assert json_body(_deliver(ingest, connection["id"], body, other_id))["duplicates"] == 1
    assert len(_events(api, api_key)) == 2
    # And the claims are keyed by hash, keeping the id itself readable beside it
    claims = [
        item for item in scan_events_table(store._client, settings.events_table) if item["pk"]["S"][0] == "W"
    ]
    assert {claim["delivery_id"]["S"] for claim in claims} == {long_id, other_id}
    assert all(HASHED_KEY_PREFIX in claim["pk"]["S"] for claim in claims)
    assert all(len(claim["pk"]["S"].encode()) < 200 for claim in claims)


def test_a_number_no_json_writer_can_give_back_is_refused_with_400(
    ingest: ModuleType, api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    for body in (b'{"type":"x","data":{"n":1e999}}', b'{"type":"x","data":{"n":NaN}}'):
        response = _deliver(ingest, connection["id"], body, "msg_number")
        assert response["statusCode"] == 400, response["body"]
        assert json_body(response)["error"]["key"] == "malformed_json"
    assert _events(api, api_key) == []


def test_snapshot_keys_past_the_key_limit_or_not_utf8_round_trip(store: Store) -> None:
    # Record ids are the provider's: long ones and lone surrogates must key a snapshot too
    ids = ["cus_1", "r" * 2_000, "x\ud83d", HASHED_KEY_PREFIX + "looks-hashed"]
    store.write_snapshots([SnapshotChange("conn_1", "customers", record_id, "h1") for record_id in ids])
    assert store.load_snapshot("conn_1", "customers") == dict.fromkeys(ids, "h1")
    store.write_snapshots([SnapshotChange("conn_1", "customers", record_id, None) for record_id in ids[1:]])
    assert store.load_snapshot("conn_1", "customers") == {"cus_1": "h1"}
