"""The client's consumer routes on httpx.MockTransport: what each method sends, and how it reads the answer.
(The worker loop, `Client.consume`, is tests/test_consume.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from consumer_payloads import API_KEY, BASE_URL, consumer_json, event_json

from pullbridge_client import (
    AckResult,
    Client,
    Conflict,
    Consumer,
    DeadLetter,
    Delivery,
    ExtendResult,
    NackResult,
    PullbridgeAPIError,
    RedriveResult,
    TermResult,
)

Route = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Answers each (method, path) from `routes`, recording every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"error": {"type": "not_found", "message": "no route"}})
        return route(request)

    def answer(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.routes[method, path] = lambda _: httpx.Response(status, json=body)

    def bodies(self, path: str | None = None) -> list[Any]:
        return [
            json.loads(request.content) if request.content else None
            for request in self.requests
            if path is None or request.url.path == path
        ]


@pytest.fixture
def api() -> Recorder:
    return Recorder()


@pytest.fixture
def client(api: Recorder) -> Iterator[Client]:
    http = httpx.Client(transport=httpx.MockTransport(api))
    with http, Client(BASE_URL, API_KEY, http=http, sleep=lambda _: None) as pullbridge:
        yield pullbridge


# --- consumers -------------------------------------------------------------------------------------


def test_create_consumer_sends_what_is_given_and_reads_the_consumer(api: Recorder, client: Client) -> None:
    api.answer("POST", "/consumers", consumer_json(), status=201)

    consumer = client.create_consumer(
        "billing",
        connection_id="conn_1",
        type="invoice.paid",
        start=datetime(2026, 1, 1),
        ack_wait_seconds=60,
        max_deliveries="unlimited",
        ordering="none",
    )

    assert api.bodies() == [
        {
            "name": "billing",
            "filters": {"connection_id": "conn_1", "type": "invoice.paid"},
            "start": {"time": "2026-01-01T00:00:00+00:00"},
            "ack_wait_seconds": 60,
            "max_deliveries": None,
            "ordering": "none",
        }
    ]
    assert isinstance(consumer, Consumer)
    assert (consumer.id, consumer.name, consumer.num_pending, consumer.num_dead) == (
        "cns_billing",
        "billing",
        3,
        2,
    )
    assert consumer.filters == consumer_json()["filters"]
    assert consumer.lag_seconds == 1.5


def test_create_consumer_with_only_a_name_leaves_the_apis_defaults(api: Recorder, client: Client) -> None:
    api.answer("POST", "/consumers", consumer_json(), status=201)

    client.create_consumer("billing")
    client.create_consumer("billing", start="new", max_deliveries=3)
    client.create_consumer("billing", start={"cursor": "c_1"})

    assert api.bodies() == [
        {"name": "billing"},
        {"name": "billing", "start": "new", "max_deliveries": 3},
        {"name": "billing", "start": {"cursor": "c_1"}},
    ]


def test_a_taken_name_is_a_conflict(api: Recorder, client: Client) -> None:
    error = {"error": {"type": "conflict", "message": "exists", "key": "consumer_exists", "data": {}}}
    api.answer("POST", "/consumers", error, status=409)

    with pytest.raises(Conflict) as raised:
        client.create_consumer("billing")

    assert raised.value.key == "consumer_exists"


def test_a_consumer_keeps_fields_a_newer_server_adds(api: Recorder, client: Client) -> None:
    api.answer("GET", "/consumers/billing", consumer_json(max_deliveries=None, paused=False))

    consumer = client.get_consumer("billing")

    assert consumer.max_deliveries is None
    assert consumer.extra == {"paused": False}
    assert consumer.to_dict() == consumer_json(max_deliveries=None, paused=False)


@pytest.mark.parametrize(
    "changes",
    [{"num_pending": True}, {"num_pending": "3"}, {"name": None}, {"filters": []}, {"lag_seconds": "1"}],
)
def test_a_consumer_of_an_unexpected_shape_is_a_bad_response(
    api: Recorder, client: Client, changes: dict[str, Any]
) -> None:
    api.answer("GET", "/consumers/billing", consumer_json(**changes))

    with pytest.raises(PullbridgeAPIError) as raised:
        client.get_consumer("billing")

    assert raised.value.error_type == "bad_response"


def test_a_consumer_without_a_required_field_is_a_bad_response(api: Recorder, client: Client) -> None:
    body = consumer_json()
    del body["num_dead"]
    api.answer("GET", "/consumers/billing", body)

    with pytest.raises(PullbridgeAPIError, match="num_dead"):
        client.get_consumer("billing")


def test_list_iter_update_and_delete_use_the_contracts_routes(api: Recorder, client: Client) -> None:
    pages = {
        None: {"data": [consumer_json("b")], "next_cursor": "n1", "has_more": True},
        "n1": {"data": [consumer_json("a")], "next_cursor": "n2", "has_more": False},
    }
    api.routes["GET", "/consumers"] = lambda request: httpx.Response(
        200, json=pages[request.url.params.get("cursor")]
    )
    api.answer("PATCH", "/consumers/a b", consumer_json())
    api.routes["DELETE", "/consumers/billing"] = lambda _: httpx.Response(204)

    assert [consumer.name for consumer in client.iter_consumers()] == ["b", "a"]
    page = client.list_consumers("n1", limit=5)
    assert (page.next_cursor, page.has_more, [c.name for c in page.data]) == ("n2", False, ["a"])
    assert dict(api.requests[-1].url.params) == {"cursor": "n1", "limit": "5"}
    client.update_consumer("a b", ack_wait_seconds=90, max_deliveries="unlimited")
    client.update_consumer("a b", max_ack_pending=5)
    assert api.bodies("/consumers/a b") == [
        {"ack_wait_seconds": 90, "max_deliveries": None},
        {"max_ack_pending": 5},
    ]
    assert api.requests[-1].url.raw_path == b"/consumers/a%20b"
    assert client.delete_consumer("billing") is None
    assert api.requests[-1].method == "DELETE"


@pytest.mark.parametrize(
    ("arguments", "body"),
    [
        ({"cursor": "c_9"}, {"cursor": "c_9"}),
        ({"time": datetime(2026, 2, 1, tzinfo=UTC)}, {"time": "2026-02-01T00:00:00+00:00"}),
        ({"position": "new"}, {"position": "new"}),
    ],
)
def test_seek_sends_one_position(api: Recorder, client: Client, arguments: dict[str, Any], body: Any) -> None:
    api.answer("POST", "/consumers/billing/seek", consumer_json())

    assert client.seek("billing", **arguments).name == "billing"
    assert api.bodies() == [body]


@pytest.mark.parametrize("arguments", [{}, {"cursor": "c", "position": "all"}])
def test_seek_needs_exactly_one_position(api: Recorder, client: Client, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client.seek("billing", **arguments)
    assert api.requests == []


# --- leases ----------------------------------------------------------------------------------------


def delivery_json(number: int, count: int = 1) -> dict[str, Any]:
    return {
        "ack_id": f"ack_{number}",
        "delivery_count": count,
        "lease_expires_at": "2026-01-01T00:00:30Z",
        "event": event_json(number),
    }


def test_receive_sends_its_batch_and_wait_and_reads_deliveries(api: Recorder, client: Client) -> None:
    timeouts: list[Any] = []

    def receive(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200, json={"data": [delivery_json(1), delivery_json(2, 3)]})

    api.routes["POST", "/consumers/billing/receive"] = receive

    deliveries = client.receive("billing", max_batch_size=5, wait=20)

    assert api.bodies() == [{"max_batch_size": 5, "wait": 20}]
    assert timeouts[0]["read"] >= 30  # a long poll's read timeout outlasts its wait
    assert [type(d) for d in deliveries] == [Delivery, Delivery]
    assert [(d.ack_id, d.delivery_count, d.event.id) for d in deliveries] == [
        ("ack_1", 1, "evt_0001"),
        ("ack_2", 3, "evt_0002"),
    ]
    assert deliveries[0].to_dict() == delivery_json(1)


def test_a_receive_of_an_unexpected_shape_is_a_bad_response(api: Recorder, client: Client) -> None:
    api.answer("POST", "/consumers/billing/receive", {"data": [{**delivery_json(1), "event": {"id": "e"}}]})

    with pytest.raises(PullbridgeAPIError) as raised:
        client.receive("billing")

    assert raised.value.error_type == "bad_response"


def test_ack_nack_extend_and_term_send_their_bodies(api: Recorder, client: Client) -> None:
    path = "/consumers/billing/"
    api.answer("POST", path + "ack", {"acked": 1, "expired": ["ack_2"]})
    api.answer("POST", path + "nack", {"nacked": 2, "expired": []})
    api.answer(
        "POST", path + "extend", {"extended": 1, "lease_expires_at": "2026-01-01T00:01:00Z", "expired": []}
    )
    api.answer("POST", path + "term", {"termed": 1, "expired": []})
    delivery = Delivery.from_dict(delivery_json(1))

    assert client.ack("billing", [delivery, "ack_2"]) == AckResult(1, ("ack_2",))
    assert client.nack("billing", ["ack_1", "ack_2"], delay_seconds=5) == NackResult(2, ())
    assert client.extend("billing", ["ack_1"], seconds=60) == ExtendResult(1, "2026-01-01T00:01:00Z", ())
    assert client.term("billing", ["ack_1"], reason="poison") == TermResult(1, ())
    assert api.bodies() == [
        {"ack_ids": ["ack_1", "ack_2"]},
        {"delay_seconds": 5, "ack_ids": ["ack_1", "ack_2"]},
        {"seconds": 60, "ack_ids": ["ack_1"]},
        {"reason": "poison", "ack_ids": ["ack_1"]},
    ]


def test_more_ack_ids_than_one_request_takes_go_in_several(api: Recorder, client: Client) -> None:
    def ack(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["ack_ids"]
        return httpx.Response(200, json={"acked": len(ids) - 1, "expired": ids[:1]})

    api.routes["POST", "/consumers/billing/ack"] = ack

    result = client.ack("billing", [f"ack_{n}" for n in range(1500)])

    assert [len(body["ack_ids"]) for body in api.bodies()] == [1000, 500]
    assert result == AckResult(1498, ("ack_0", "ack_1000"))


def test_no_ack_ids_is_refused_before_any_request(api: Recorder, client: Client) -> None:
    with pytest.raises(ValueError, match="no ack ids"):
        client.ack("billing", [])
    assert api.requests == []


# --- dead letters ----------------------------------------------------------------------------------


def test_dead_letters_are_read_and_followed_page_after_page(api: Recorder, client: Client) -> None:
    dead = {
        "event_id": "evt_0001",
        "delivery_count": 10,
        "reason": "max_deliveries",
        "dead_at": "2026-01-02T00:00:00Z",
    }
    pages = {
        None: {"data": [{**dead, "event": event_json(1)}], "next_cursor": "d1", "has_more": True},
        "d1": {
            "data": [{**dead, "event_id": "evt_0002", "event": None}],
            "next_cursor": "d2",
            "has_more": False,
        },
    }
    api.routes["GET", "/consumers/billing/dead-letters"] = lambda request: httpx.Response(
        200, json=pages[request.url.params.get("cursor")]
    )

    letters = list(client.iter_dead_letters("billing", limit=1))

    assert [type(letter) for letter in letters] == [DeadLetter, DeadLetter]
    assert letters[0].event is not None
    assert (letters[0].event.id, letters[0].delivery_count, letters[0].reason) == (
        "evt_0001",
        10,
        "max_deliveries",
    )
    assert letters[1].event is None
    assert letters[1].to_dict() == {**dead, "event_id": "evt_0002", "event": None}
    assert client.dead_letters("billing", "d1").next_cursor == "d2"


def test_redrive_sends_event_ids_or_all(api: Recorder, client: Client) -> None:
    api.answer("POST", "/consumers/billing/dead-letters/redrive", {"redriven": 1, "remaining": 4})

    assert client.redrive("billing", ["evt_0001"]) == RedriveResult(1, 4)
    assert client.redrive("billing", all=True) == RedriveResult(1, 4)
    assert api.bodies() == [{"event_ids": ["evt_0001"]}, {"all": True}]


@pytest.mark.parametrize("arguments", [{}, {"event_ids": ["evt_1"], "all": True}])
def test_redrive_needs_event_ids_or_all(api: Recorder, client: Client, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="event_ids or all"):
        client.redrive("billing", **arguments)
    assert api.requests == []


def test_discard_deletes_one_dead_letter(api: Recorder, client: Client) -> None:
    api.routes["DELETE", "/consumers/billing/dead-letters/evt_0001"] = lambda _: httpx.Response(204)

    assert client.discard_dead_letter("billing", "evt_0001") is None
    assert api.requests[0].method == "DELETE"
