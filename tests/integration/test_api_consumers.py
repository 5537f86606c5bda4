"""The consumer routes through the API handler: shapes, status codes, and bad input that changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from tests.support import api_event, json_body, lambda_context, standard_webhook_event

Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def call(api: ModuleType, api_key: str) -> Call:
    def send(
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        event = api_event(
            "list_events.json", key or api_key, path=path, method=method, body=body, query=query
        )
        response = api.lambda_handler(event, lambda_context())
        return response["statusCode"], json_body(response) if response.get("body") else None

    return send


@pytest.fixture
def webhook(ingest: ModuleType, connection: dict[str, Any]) -> Callable[[str], None]:
    def send(label: str) -> None:
        body = f'{{"type": "test.sent", "data": {{"label": "{label}"}}}}'
        response = ingest.lambda_handler(
            standard_webhook_event(connection["id"], body, message_id=f"msg_{label}"), lambda_context()
        )
        assert response["statusCode"] == 200, response["body"]

    return send


def test_create_receive_ack_and_describe(call: Call, webhook: Callable[[str], None]) -> None:
    webhook("a")
    webhook("b")
    status, created = call("POST", "/consumers", {"name": "billing-workers", "ack_wait_seconds": 60})
    assert status == 201
    assert created["id"].startswith("cns_")
    assert (created["name"], created["num_pending"], created["ordering"], created["max_deliveries"]) == (
        "billing-workers",
        2,
        "record",
        10,
    )

    status, received = call("POST", "/consumers/billing-workers/receive", {"max_batch_size": 5})
    assert status == 200
    assert [delivery["delivery_count"] for delivery in received["data"]] == [1, 1]
    assert {delivery["event"]["type"] for delivery in received["data"]} == {"test.sent"}
    assert all(delivery["lease_expires_at"].endswith("Z") for delivery in received["data"])

    status, described = call("GET", f"/consumers/{created['id']}")
    assert (status, described["num_pending"], described["num_ack_pending"]) == (200, 0, 2)

    ack_ids = [delivery["ack_id"] for delivery in received["data"]]
    assert call("POST", "/consumers/billing-workers/ack", {"ack_ids": ack_ids}) == (
        200,
        {"acked": 2, "expired": []},
    )
    status, listed = call("GET", "/consumers")
    assert status == 200
    assert [consumer["name"] for consumer in listed["data"]] == ["billing-workers"]


def test_patch_seek_dead_letters_and_delete(call: Call, webhook: Callable[[str], None]) -> None:
    webhook("a")
    call("POST", "/consumers", {"name": "w", "max_deliveries": 1, "ack_wait_seconds": 1})
    status, patched = call("PATCH", "/consumers/w", {"max_deliveries": None, "max_ack_pending": 5})
    assert (status, patched["max_deliveries"], patched["max_ack_pending"]) == (200, None, 5)

    (delivery,) = call("POST", "/consumers/w/receive", {})[1]["data"]
    assert (
        call("POST", "/consumers/w/term", {"ack_ids": [delivery["ack_id"]], "reason": "bad data"})[1][
            "termed"
        ]
        == 1
    )
    status, dead = call("GET", "/consumers/w/dead-letters")
    assert status == 200
    assert [(row["reason"], row["delivery_count"]) for row in dead["data"]] == [("bad data", 1)]
    event_id = dead["data"][0]["event_id"]
    assert call("POST", "/consumers/w/dead-letters/redrive", {"all": True}) == (
        200,
        {"redriven": 1, "remaining": 0},
    )
    (again,) = call("POST", "/consumers/w/receive", {})[1]["data"]
    assert again["event"]["id"] == event_id
    call("POST", "/consumers/w/term", {"ack_ids": [again["ack_id"]]})
    assert call("DELETE", f"/consumers/w/dead-letters/{event_id}") == (204, None)
    assert call("DELETE", f"/consumers/w/dead-letters/{event_id}")[0] == 404

    status, sought = call("POST", "/consumers/w/seek", {"position": "new"})
    assert (status, sought["num_pending"]) == (200, 0)
    assert call("DELETE", "/consumers/w") == (204, None)
    assert call("GET", "/consumers/w")[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/consumers", {"name": "Bad Name"}, "name"),
        ("POST", "/consumers", {"name": "cns_looks_like_an_id"}, None),
        ("POST", "/consumers", {"name": "w2", "ack_wait_seconds": 0}, "ack_wait_seconds"),
        ("POST", "/consumers", {"name": "w2", "ack_wait_seconds": 43_201}, "ack_wait_seconds"),
        ("POST", "/consumers", {"name": "w2", "max_deliveries": 0}, "max_deliveries"),
        ("POST", "/consumers", {"name": "w2", "max_ack_pending": 10_001}, "max_ack_pending"),
        ("POST", "/consumers", {"name": "w2", "ordering": "total"}, "ordering"),
        ("POST", "/consumers", {"name": "w2", "start": {"cursor": "forged.cursor"}}, "start.cursor"),
        ("POST", "/consumers", {"name": "w2", "unknown": 1}, "unknown"),
        ("POST", "/consumers/w/receive", {"max_batch_size": 0}, "max_batch_size"),
        ("POST", "/consumers/w/receive", {"max_batch_size": 1001}, "max_batch_size"),
        ("POST", "/consumers/w/receive", {"wait": 21}, "wait"),
        ("POST", "/consumers/w/ack", {"ack_ids": []}, "ack_ids"),
        ("POST", "/consumers/w/ack", {"ack_ids": ["not-an-ack-id"]}, "ack_ids.0"),
        ("POST", "/consumers/w/nack", {"ack_ids": ["x"], "delay_seconds": -1}, "delay_seconds"),
        ("POST", "/consumers/w/nack", {"ack_ids": ["x"], "delay_seconds": 43_201}, "delay_seconds"),
        ("POST", "/consumers/w/extend", {"ack_ids": ["x"], "seconds": 0}, "seconds"),
        ("POST", "/consumers/w/dead-letters/redrive", {}, None),
        ("POST", "/consumers/w/seek", {}, None),
        ("POST", "/consumers/w/seek", {"position": "new", "time": "2026-01-01T00:00:00Z"}, None),
    ],
)
def test_bad_input_gets_a_400_and_changes_nothing(
    call: Call, method: str, path: str, body: Any, field: str | None
) -> None:
    call("POST", "/consumers", {"name": "w"})
    before = call("GET", "/consumers")[1]
    status, answer = call(method, path, body)
    assert status == 400, answer
    assert set(answer["error"]) == {"type", "message", "key", "data"}
    if field is not None:
        assert answer["error"]["data"]["field"] == field
    assert call("GET", "/consumers")[1]["data"] == before["data"]


def test_a_duplicate_name_is_409(call: Call) -> None:
    assert call("POST", "/consumers", {"name": "w"})[0] == 201
    status, answer = call("POST", "/consumers", {"name": "w"})
    assert (status, answer["error"]["key"]) == (409, "consumer_exists")


def test_another_tenants_consumer_and_ack_ids_are_unknown(
    call: Call, other_api_key: str, webhook: Callable[[str], None]
) -> None:
    webhook("a")
    consumer_id = call("POST", "/consumers", {"name": "w"})[1]["id"]
    (delivery,) = call("POST", "/consumers/w/receive", {})[1]["data"]
    for path in (f"/consumers/{consumer_id}", "/consumers/w", "/consumers/w/dead-letters"):
        status, answer = call("GET", path, key=other_api_key)
        assert (status, answer["error"]["key"]) == (404, "consumer_not_found")
    call("POST", "/consumers", {"name": "w"}, key=other_api_key)
    status, answer = call("POST", "/consumers/w/ack", {"ack_ids": [delivery["ack_id"]]}, key=other_api_key)
    assert (status, answer["error"]["key"]) == (400, "invalid_ack_id")
    assert call("POST", "/consumers/w/ack", {"ack_ids": [delivery["ack_id"]]})[1] == {
        "acked": 1,
        "expired": [],
    }


def test_an_unknown_consumer_is_404_on_every_route(call: Call) -> None:
    for method, path, body in [
        ("GET", "/consumers/nobody", None),
        ("PATCH", "/consumers/nobody", {"max_ack_pending": 3}),
        ("DELETE", "/consumers/nobody", None),
        ("POST", "/consumers/nobody/receive", {}),
        ("POST", "/consumers/cns_unknown/seek", {"position": "new"}),
        ("GET", "/consumers/nobody/dead-letters", None),
    ]:
        status, answer = call(method, path, body)
        assert (status, answer["error"]["key"]) == (404, "consumer_not_found"), (method, path)


def test_a_receive_without_a_body_takes_the_defaults(call: Call, webhook: Callable[[str], None]) -> None:
    webhook("a")
    call("POST", "/consumers", {"name": "w"})
    status, received = call("POST", "/consumers/w/receive")
    assert (status, len(received["data"])) == (200, 1)
