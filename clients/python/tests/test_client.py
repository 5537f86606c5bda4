"""The Python client (`pullbridge_client`) against an in-memory API on httpx.MockTransport."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_api import API_KEY, BASE_URL, FakeApi, _event, _ids

from pullbridge_client import (
    Client,
    NotFound,
    PullbridgeAPIError,
    ResumeError,
)

# --- cursors ---------------------------------------------------------------------------------------


def test_iter_events_follows_next_cursor_until_has_more_is_false(api: FakeApi, client: Client) -> None:
    api.log = [_event(i) for i in range(1, 8)]

    stream = client.iter_events(limit=3)
    events = list(stream)

    assert _ids(events) == [f"evt_{i:04d}" for i in range(1, 8)]
    assert [r.url.params.get("cursor") for r in api.event_requests] == [None, "c3", "c6"]
    assert all("wait" not in r.url.params for r in api.event_requests)  # no long poll without follow
    assert stream.cursor == "c7"
    assert events[0].data == {"n": 1}


def test_a_stream_of_nothing_new_keeps_the_cursor(api: FakeApi, client: Client) -> None:
    api.log = [_event(i) for i in range(1, 3)]

    stream = client.iter_events("c2")

    assert list(stream) == []
    assert stream.cursor == "c2"


@pytest.mark.parametrize("limit", [1, 3, 4, 100])
def test_a_cursor_saved_after_any_event_resumes_exactly_once(
    api: FakeApi, client: Client, limit: int
) -> None:
    api.log = [_event(i) for i in range(1, 10)]
    everything = [f"evt_{i:04d}" for i in range(1, 10)]

    for stop_after in range(len(everything) + 1):
        stream = client.iter_events(limit=limit)
        consumed: list[str] = []
        saved = stream.cursor
        for event in stream:
            if len(consumed) == stop_after:
                break
            consumed.append(event.id)
            saved = stream.cursor  # the pattern: save once the event is processed
        stream.close()

        resumed = list(client.iter_events(saved, limit=limit))

        assert consumed + _ids(resumed) == everything, (limit, stop_after, saved)


def test_resuming_twice_and_with_new_events_in_between_loses_and_repeats_nothing(
    api: FakeApi, client: Client
) -> None:
    api.log = [_event(i) for i in range(1, 6)]
    received: list[str] = []
    cursor: str | None = None
    for batch in (2, 1, 3):
        stream = client.iter_events(cursor, limit=4)
        for event in stream:
            received.append(event.id)
            cursor = stream.cursor
            if len(received) % batch == 0:
                break
        api.append()  # a new event arrives while the consumer is away
    received.extend(_ids(client.iter_events(cursor, limit=4)))

    assert received == [f"evt_{i:04d}" for i in range(1, 9)]
    assert len(set(received)) == len(received)


def test_a_mid_page_cursor_is_a_plain_string_that_survives_storage(api: FakeApi, client: Client) -> None:
    api.log = [_event(i) for i in range(1, 6)]
    stream = client.iter_events(limit=5)
    next(stream)
    stored = json.loads(json.dumps({"cursor": stream.cursor}))["cursor"]

    assert isinstance(stored, str)
    assert _ids(client.iter_events(stored)) == [f"evt_{i:04d}" for i in range(2, 6)]


def test_resume_with_a_larger_page_than_the_saved_one(api: FakeApi, client: Client) -> None:
    api.log = [_event(i) for i in range(1, 10)]
    stream = client.iter_events(limit=5)
    for _ in range(3):
        next(stream)

    assert _ids(client.iter_events(stream.cursor, limit=2)) == [f"evt_{i:04d}" for i in range(4, 10)]


def test_a_resume_cursor_of_another_stream_is_refused(api: FakeApi, client: Client) -> None:
    api.log = [_event(1, "a"), _event(2, "a"), _event(3, "b"), _event(4, "b")]
    stream = client.iter_events(limit=10, type="a")
    next(stream)

    with pytest.raises(ResumeError):
        list(client.iter_events(stream.cursor, type="b"))
    with pytest.raises(ResumeError):
        list(client.iter_events("pbr1:not-base64-json"))


def test_filters_are_sent(api: FakeApi, client: Client) -> None:
    list(
        client.iter_events(
            connection_id="conn_1", provider="stripe", collection="customers", type="t", source="pull"
        )
    )

    params = dict(api.event_requests[0].url.params)
    assert params == {
        "limit": "100",
        "connection_id": "conn_1",
        "provider": "stripe",
        "collection": "customers",
        "type": "t",
        "source": "pull",
    }


def test_follow_long_polls_and_stops_when_the_caller_breaks(api: FakeApi, client: Client) -> None:
    api.log = [_event(1)]
    empty_polls = 0

    def new_events_now_and_then() -> None:
        nonlocal empty_polls
        empty_polls += 1
        if empty_polls % 2 == 0:  # one poll holds nothing, the next gets an event
            api.append()

    api.on_empty_page = new_events_now_and_then
    stream = client.iter_events(follow=True, wait=20)

    received: list[str] = []
    for event in stream:
        received.append(event.id)
        if len(received) == 4:
            break
    requests_at_break = len(api.event_requests)

    assert received == [f"evt_{i:04d}" for i in range(1, 5)]
    assert {r.url.params["wait"] for r in api.event_requests} == {"20"}
    assert [r.url.params.get("cursor") for r in api.event_requests][-1] == "c3"
    assert stream.cursor == "c4"

    stream.close()
    assert list(stream) == []
    assert len(api.event_requests) == requests_at_break  # nothing more was asked after the break


def test_follow_without_long_polling_waits_between_empty_polls(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    polls = 0

    def arrive_on_third_poll() -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            api.append()

    api.on_empty_page = arrive_on_third_poll
    with client.iter_events(follow=True, wait=0) as stream:
        first = next(stream)

    assert first.id == "evt_0001"
    assert sleeps == [1.0, 1.0]


def test_a_follow_stream_in_a_with_block_is_closed_on_exit(api: FakeApi, client: Client) -> None:
    api.log = [_event(1), _event(2)]
    with client.iter_events(follow=True) as stream:
        next(stream)
    assert list(stream) == []


def test_long_polls_get_a_read_timeout_longer_than_their_wait(api: FakeApi, sleeps: list[float]) -> None:
    seen: list[Any] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return api(request)

    with (
        httpx.Client(transport=httpx.MockTransport(record)) as http,
        Client(BASE_URL, API_KEY, http=http, timeout=5, sleep=sleeps.append) as client,
    ):
        client.list_events(wait=20)
        client.list_events()

    assert [timeout["read"] for timeout in seen] == [30, 5]


def test_limit_is_checked_before_any_request(api: FakeApi, client: Client) -> None:
    with pytest.raises(ValueError, match="limit"):
        client.iter_events(limit=0)
    assert api.requests == []


# --- resources -------------------------------------------------------------------------------------


def test_get_event_returns_a_typed_event(api: FakeApi, client: Client) -> None:
    api.routes["GET", "/events/evt_0001"] = lambda _: httpx.Response(200, json={**_event(1), "extra": 1})

    event = client.get_event("evt_0001")

    assert (event.id, event.type, event.record_id) == ("evt_0001", "invoice.paid", "inv_1")
    assert event.extra == {"extra": 1}  # fields a newer server adds are kept
    assert event.to_dict() == {**_event(1), "extra": 1}


@pytest.mark.parametrize(
    "item",
    [
        {key: value for key, value in _event(1).items() if key != "received_at"},
        {**_event(1), "id": 1},
        {**_event(1), "connection_id": None},
        {**_event(1), "record_id": 7},
        ["evt_0001"],
    ],
    ids=["missing field", "number id", "null required field", "number record id", "not an object"],
)
def test_an_event_of_an_unexpected_shape_is_a_bad_response(api: FakeApi, client: Client, item: Any) -> None:
    api.routes["GET", "/events"] = lambda _: httpx.Response(
        200, json={"data": [item], "next_cursor": "c1", "has_more": False}
    )

    with pytest.raises(PullbridgeAPIError) as raised:
        client.list_events()

    assert raised.value.error_type == "bad_response"


def test_optional_event_fields_may_be_left_out(api: FakeApi, client: Client) -> None:
    required = {
        k: v
        for k, v in _event(1).items()
        if k in {"id", "connection_id", "provider", "type", "source", "received_at"}
    }
    api.routes["GET", "/events/evt_0001"] = lambda _: httpx.Response(200, json=required)

    event = client.get_event("evt_0001")

    assert (event.collection, event.action, event.record_id, event.data, event.extra) == (
        None,
        None,
        None,
        None,
        {},
    )


def test_ids_are_escaped_in_paths(api: FakeApi, client: Client) -> None:
    with pytest.raises(NotFound):
        client.get_pull("../connections")
    assert api.requests[0].url.raw_path == b"/external-event-pulls/..%2Fconnections"


def test_iter_connections_follows_pages(api: FakeApi, client: Client) -> None:
    pages = {
        None: {"data": [{"id": "conn_3"}, {"id": "conn_2"}], "next_cursor": "n1", "has_more": True},
        "n1": {"data": [{"id": "conn_1"}], "next_cursor": "n2", "has_more": False},
    }
    api.routes["GET", "/connections"] = lambda request: httpx.Response(
        200, json=pages[request.url.params.get("cursor")]
    )

    assert [c["id"] for c in client.iter_connections(limit=2)] == ["conn_3", "conn_2", "conn_1"]
    page = client.list_connections("n1")
    assert (page.next_cursor, page.has_more) == ("n2", False)


def test_iter_pulls_sends_the_contracts_filter_names(api: FakeApi, client: Client) -> None:
    api.routes["GET", "/external-event-pulls"] = lambda _: httpx.Response(
        200, json={"data": [{"id": "pull_1"}], "next_cursor": "x", "has_more": False}
    )

    pulls = list(client.iter_pulls("error", "sub_1", connection_id="conn_1", from_="2026-01-01T00:00:00Z"))

    assert pulls == [{"id": "pull_1"}]
    assert dict(api.requests[0].url.params) == {
        "limit": "100",
        "status": "error",
        "external_event_subscription_id": "sub_1",
        "connection_id": "conn_1",
        "from": "2026-01-01T00:00:00Z",
    }


def test_list_pulls_sends_datetimes_as_utc_iso_strings(api: FakeApi, client: Client) -> None:
    api.routes["GET", "/external-event-pulls"] = lambda _: httpx.Response(
        200, json={"data": [], "next_cursor": "p", "has_more": False}
    )

    page = client.list_pulls(from_=datetime(2026, 1, 1), to=datetime(2026, 1, 2, tzinfo=UTC), limit=10)

    assert page.next_cursor == "p"
    assert dict(api.requests[0].url.params) == {
        "limit": "10",
        "from": "2026-01-01T00:00:00+00:00",
        "to": "2026-01-02T00:00:00+00:00",
    }


def test_create_connection_sends_only_what_is_given(api: FakeApi, client: Client) -> None:
    api.routes["POST", "/connections"] = lambda request: httpx.Response(
        201, json={"id": "conn_1", "sent": json.loads(request.content)}
    )

    created = client.create_connection(
        "stripe", "billing", webhook_secrets=["whsec_x"], credentials={"api_key": "sk_test"}
    )

    assert created["sent"] == {
        "provider": "stripe",
        "name": "billing",
        "webhook_secrets": ["whsec_x"],
        "credentials": {"api_key": "sk_test"},
    }


def test_subscription_and_connection_helpers_use_the_contracts_routes(api: FakeApi, client: Client) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        return httpx.Response(200, json={"method": request.method, "path": request.url.path, "body": body})

    for route in [
        ("PATCH", "/connections/conn_1"),
        ("DELETE", "/connections/conn_1"),
        ("POST", "/external-event-subscriptions"),
        ("GET", "/external-event-subscriptions/sub_1"),
        ("PATCH", "/external-event-subscriptions/sub_1"),
        ("POST", "/external-event-subscriptions/sub_1/pull"),
    ]:
        api.routes[route] = echo
    api.routes["DELETE", "/external-event-subscriptions/sub_1"] = lambda _: httpx.Response(204)
    api.routes["GET", "/external-event-subscriptions"] = lambda _: httpx.Response(
        200, json={"data": [{"id": "sub_1"}], "next_cursor": "s", "has_more": False}
    )

    assert client.update_connection("conn_1", name="renamed")["body"] == {"name": "renamed"}
    assert client.archive_connection("conn_1")["method"] == "DELETE"
    assert client.create_subscription("conn_1", "customers", backfill=False)["body"] == {
        "connection_id": "conn_1",
        "collection": "customers",
        "backfill": False,
    }
    assert client.get_subscription("sub_1")["path"] == "/external-event-subscriptions/sub_1"
    assert client.update_subscription("sub_1", status="paused")["body"] == {"status": "paused"}
    incremental = client.create_subscription("conn_1", "customers", pull_updates_interval_seconds=300)
    assert incremental["body"]["pull_updates_interval_seconds"] == 300
    assert client.update_subscription("sub_1", pull_updates_interval_seconds=120)["body"] == {
        "pull_updates_interval_seconds": 120
    }
    assert client.update_subscription("sub_1", pull_updates_interval_seconds="off")["body"] == {
        "pull_updates_interval_seconds": None
    }
    assert client.trigger_pull("sub_1")["method"] == "POST"
    assert client.delete_subscription("sub_1") is None
    assert [s["id"] for s in client.iter_subscriptions()] == ["sub_1"]
    assert client.list_subscriptions().next_cursor == "s"


# --- the client's own resources ---------------------------------------------------------------------


def test_the_client_closes_its_own_http_client_but_not_an_injected_one(api: FakeApi) -> None:
    injected = httpx.Client(transport=httpx.MockTransport(api))
    with Client(BASE_URL, API_KEY, http=injected):
        pass
    assert not injected.is_closed
    injected.close()

    own = Client(BASE_URL, API_KEY)
    own.close()
    assert own._http.is_closed


def test_importing_the_package_loads_no_server_module_and_no_click_boto3_or_pydantic(tmp_path: Path) -> None:
    # httpx imports click itself when click is installed (for its own `httpx` command), so what the
    # package adds is measured on top of what `import httpx` loads.
    probe = (
        "import json, sys, httpx; before = set(sys.modules); import pullbridge_client; "
        "print(json.dumps([sorted(before), sorted(set(sys.modules) - before)]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    with_httpx, added = (set(modules) for modules in json.loads(output))
    top_level = {module.split(".")[0] for module in with_httpx | added}

    assert not top_level & {"pullbridge", "pullbridge_local", "pydantic", "boto3", "botocore"}
    assert not {module for module in added if module.split(".")[0] == "click"}
    assert {m for m in added if m.startswith("pullbridge_client")} == {"pullbridge_client"} | {
        f"pullbridge_client.{name}"
        for name in (
            "_params",
            "_version",
            "client",
            "consumer_models",
            "consumers",
            "errors",
            "models",
            "mutation_models",
            "mutations",
            "retry",
            "stream",
        )
    }
