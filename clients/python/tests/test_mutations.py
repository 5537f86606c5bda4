"""The client's mutation routes on httpx.MockTransport: what `mutate` sends (its Idempotency-Key above
all, the same on every retry), how its failures are typed, and the reading of mutations."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from fake_api import FakeApi, _scripted
from mutation_payloads import error_json, mutation_json

from pullbridge_client import (
    BadRequest,
    Client,
    Conflict,
    Mutation,
    NotFound,
    PullbridgeAPIError,
    RateLimited,
    ServerError,
    Unprocessable,
)
from pullbridge_client.errors import ErrorObject, error_from_response


def _answer(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _posts(api: FakeApi) -> list[httpx.Request]:
    return [
        request for request in api.requests if (request.method, request.url.path) == ("POST", "/mutations")
    ]


def _body(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- mutate: what it sends ---------------------------------------------------------------------------


def test_a_create_sends_the_contracts_body_with_a_new_idempotency_key(api: FakeApi, client: Client) -> None:
    created = mutation_json(kind="create", record_id="cus_9")
    api.routes["POST", "/mutations"] = lambda _: _answer(200, created)

    mutation = client.mutate("conn_1", "customers", "create", data={"name": "Ada", "email": "a@x.test"})

    (request,) = _posts(api)
    assert _body(request) == {
        "connection_id": "conn_1",
        "collection": "customers",
        "kind": "create",
        "data": {"name": "Ada", "email": "a@x.test"},
    }
    assert request.headers["content-type"] == "application/json"
    assert uuid.UUID(request.headers["idempotency-key"]).version == 4
    assert isinstance(mutation, Mutation)
    assert (mutation.id, mutation.kind, mutation.status, mutation.record_id) == (
        "mut_0001",
        "create",
        "succeeded",
        "cus_9",
    )
    assert mutation.record == created["record"]
    assert mutation.event_id == "evt_0001"
    assert mutation.error is None
    assert mutation.to_dict() == created


def test_an_update_and_a_delete_send_the_record_id(api: FakeApi, client: Client) -> None:
    api.routes["POST", "/mutations"] = lambda _: _answer(200, mutation_json())

    client.mutate("conn_1", "customers", "update", record_id="cus_1", data={"name": "Ada"})
    client.mutate("conn_1", "customers", "delete", record_id="cus_1")

    assert [_body(request) for request in _posts(api)] == [
        {
            "connection_id": "conn_1",
            "collection": "customers",
            "kind": "update",
            "record_id": "cus_1",
            "data": {"name": "Ada"},
        },
        {"connection_id": "conn_1", "collection": "customers", "kind": "delete", "record_id": "cus_1"},
    ]


def test_each_call_gets_its_own_key_and_a_given_key_is_sent_as_it_is(api: FakeApi, client: Client) -> None:
    api.routes["POST", "/mutations"] = lambda _: _answer(200, mutation_json())

    client.mutate("conn_1", "customers", "delete", record_id="cus_1")
    client.mutate("conn_1", "customers", "delete", record_id="cus_1")
    client.mutate("conn_1", "customers", "delete", record_id="cus_1", idempotency_key="order-7-refund")

    first, second, given = (request.headers["idempotency-key"] for request in _posts(api))
    assert first != second
    assert given == "order-7-refund"


def test_other_requests_send_no_idempotency_key(api: FakeApi, client: Client) -> None:
    api.routes["GET", "/mutations/mut_0001"] = lambda _: _answer(200, mutation_json())

    client.get_mutation("mut_0001")

    assert "idempotency-key" not in api.requests[0].headers


@pytest.mark.parametrize(
    ("kind", "arguments", "message"),
    [
        ("create", {"record_id": "cus_1", "data": {"a": 1}}, "a create takes no record_id"),
        ("create", {}, "a create needs data"),
        ("update", {"data": {"a": 1}}, "a update needs a record_id"),
        ("update", {"record_id": "cus_1"}, "a update needs data"),
        ("delete", {}, "a delete needs a record_id"),
        ("delete", {"record_id": "cus_1", "data": {"a": 1}}, "a delete takes no data"),
        ("upsert", {"record_id": "cus_1", "data": {"a": 1}}, "kind must be one of create, update, delete"),
    ],
)
def test_arguments_the_kind_does_not_take_are_refused_before_any_request(
    api: FakeApi, client: Client, kind: Any, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        client.mutate("conn_1", "customers", kind, **arguments)

    assert api.requests == []


def test_data_must_be_a_mapping(api: FakeApi, client: Client) -> None:
    with pytest.raises(TypeError, match="mapping"):
        client.mutate("conn_1", "customers", "create", data=[1, 2])  # type: ignore[arg-type]

    assert api.requests == []


# --- mutate: retries under one key -------------------------------------------------------------------


def test_the_generated_key_is_sent_again_after_a_502(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    bad_gateway = _answer(
        502, error_json("bad_gateway", "stripe answered 503", data={"mutation_id": "mut_0001"})
    )
    api.routes["POST", "/mutations"] = _scripted(bad_gateway, _answer(200, mutation_json()))

    mutation = client.mutate("conn_1", "customers", "update", record_id="cus_1", data={"name": "Ada"})

    first, second = _posts(api)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.content == second.content
    assert mutation.status == "succeeded"
    assert len(sleeps) == 1


def test_a_409_saying_the_keys_first_request_is_running_is_waited_out_under_the_same_key(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    running = _answer(409, error_json("conflict", "still in progress", "idempotency_key_in_progress"))
    api.routes["POST", "/mutations"] = _scripted(running, running, _answer(200, mutation_json()))

    mutation = client.mutate("conn_1", "customers", "create", data={"name": "Ada"})

    assert mutation.id == "mut_0001"
    assert len({request.headers["idempotency-key"] for request in _posts(api)}) == 1
    assert len(_posts(api)) == 3
    assert len(sleeps) == 2


def test_after_a_lost_answer_a_409_is_taken_as_the_first_attempt_still_running(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    running = _answer(409, error_json("conflict", "a request with this key is in progress", "in_progress"))
    api.routes["POST", "/mutations"] = _scripted(
        httpx.ReadTimeout("no answer"), running, running, _answer(200, mutation_json())
    )

    mutation = client.mutate("conn_1", "customers", "create", data={"name": "Ada"})

    assert mutation.id == "mut_0001"
    assert len({request.headers["idempotency-key"] for request in _posts(api)}) == 1
    assert len(_posts(api)) == 4
    assert len(sleeps) == 3


def test_a_429_is_retried_after_its_retry_after_under_the_same_key(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    limited = _answer(
        429, error_json("rate_limited", "the provider is rate limiting"), **{"retry-after": "3"}
    )
    api.routes["POST", "/mutations"] = _scripted(limited, _answer(200, mutation_json()))

    client.mutate("conn_1", "customers", "delete", record_id="cus_1")

    assert sleeps == [3.0]
    assert len({request.headers["idempotency-key"] for request in _posts(api)}) == 1


def test_a_timeout_past_the_retries_is_a_server_error_naming_the_unknown_mutation(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    api.routes["POST", "/mutations"] = lambda _: _answer(
        504,
        error_json(
            "timeout", "github did not answer in time", "provider_timeout", {"mutation_id": "mut_0042"}
        ),
    )

    with pytest.raises(ServerError) as raised:
        client.mutate("conn_1", "issues", "create", data={"title": "Bug"}, idempotency_key="k-1")

    error = raised.value
    assert (error.status_code, error.error_type, error.mutation_id) == (504, "timeout", "mut_0042")
    assert len(_posts(api)) == 1 + client.max_retries
    assert {request.headers["idempotency-key"] for request in _posts(api)} == {"k-1"}


@pytest.mark.parametrize(
    ("before", "key"),
    [
        ([], "idempotency_key_reused"),
        ([], "some_other_conflict"),
        ([httpx.ReadTimeout("no answer")], "idempotency_key_reused"),
        ([httpx.ReadTimeout("no answer")], "outcome_unknown"),
    ],
    ids=[
        "key-reused",
        "another-conflict",
        "key-reused-after-a-lost-answer",
        "outcome-unknown-after-a-lost-answer",
    ],
)
def test_other_409s_are_raised_at_once(
    api: FakeApi, client: Client, sleeps: list[float], before: list[Exception], key: str
) -> None:
    conflict = _answer(409, error_json("conflict", "this Idempotency-Key was used with another body", key))
    api.routes["POST", "/mutations"] = _scripted(*before, conflict)

    with pytest.raises(Conflict) as raised:
        client.mutate("conn_1", "customers", "delete", record_id="cus_1", idempotency_key="k-1")

    assert raised.value.key == key
    assert len(_posts(api)) == 1 + len(before)
    assert len(sleeps) == len(before)


def test_a_409_to_a_request_without_a_key_is_not_retried(api: FakeApi, client: Client) -> None:
    api.routes["POST", "/connections"] = _scripted(
        _answer(409, error_json("conflict", "in progress", "idempotency_key_in_progress"))
    )

    with pytest.raises(Conflict):
        client.create_connection("standard", "billing")

    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [(400, "bad_request", BadRequest), (404, "not_found", NotFound), (422, "unprocessable", Unprocessable)],
)
def test_refusals_are_not_retried(
    api: FakeApi,
    client: Client,
    sleeps: list[float],
    status: int,
    error_type: str,
    expected: type[PullbridgeAPIError],
) -> None:
    api.routes["POST", "/mutations"] = lambda _: _answer(status, error_json(error_type, "no"))

    with pytest.raises(expected):
        client.mutate("conn_1", "customers", "delete", record_id="cus_1")

    assert len(_posts(api)) == 1
    assert sleeps == []


# --- mutate: typed failures ----------------------------------------------------------------------------


def test_a_provider_refusal_is_unprocessable_with_the_providers_status_message_and_request_id(
    api: FakeApi, client: Client
) -> None:
    api.routes["POST", "/mutations"] = lambda _: _answer(
        422,
        error_json(
            "unprocessable",
            "stripe refused the write: No such customer: 'cus_404'",
            "provider_refused",
            {
                "status_code": 404,
                "message": "No such customer: 'cus_404'",
                "request_id": "req_abc",
                "mutation_id": "mut_0009",
            },
        ),
    )

    with pytest.raises(Unprocessable) as raised:
        client.mutate("conn_1", "customers", "update", record_id="cus_404", data={"name": "Ada"})

    refusal = raised.value
    assert isinstance(refusal, BadRequest)
    assert (refusal.status_code, refusal.error_type, refusal.key) == (
        422,
        "unprocessable",
        "provider_refused",
    )
    assert (refusal.provider_status_code, refusal.provider_message, refusal.request_id) == (
        404,
        "No such customer: 'cus_404'",
        "req_abc",
    )
    assert refusal.mutation_id == "mut_0009"


def test_a_rate_limit_longer_than_the_client_waits_is_raised_with_its_retry_after(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    api.routes["POST", "/mutations"] = lambda _: _answer(
        429, error_json("rate_limited", "slow down"), **{"retry-after": "600"}
    )

    with pytest.raises(RateLimited) as raised:
        client.mutate("conn_1", "customers", "delete", record_id="cus_1")

    assert raised.value.retry_after == 600.0
    assert sleeps == []


def test_a_502_is_a_server_error_of_type_bad_gateway(api: FakeApi, client: Client) -> None:
    api.routes["POST", "/mutations"] = lambda _: _answer(
        502, error_json("bad_gateway", "hubspot answered 500")
    )

    with pytest.raises(ServerError) as raised:
        client.mutate("conn_1", "contacts", "delete", record_id="501")

    assert raised.value.error_type == "bad_gateway"
    assert raised.value.mutation_id is None


def test_a_422_that_is_not_the_apis_own_is_still_unprocessable() -> None:
    error = error_from_response(httpx.Response(422, text="Unprocessable"))

    assert type(error) is Unprocessable
    assert error.error_type == "unprocessable"
    assert (error.provider_status_code, error.provider_message, error.request_id) == (None, None, None)


# --- reading mutations ---------------------------------------------------------------------------------


def test_list_mutations_sends_the_filters_and_reads_a_page(api: FakeApi, client: Client) -> None:
    body = {"data": [mutation_json(2), mutation_json(1)], "next_cursor": "c_2", "has_more": True}
    api.routes["GET", "/mutations"] = lambda _: _answer(200, body)

    page = client.list_mutations("c_1", limit=2, connection_id="conn_1", status="unknown")

    assert dict(api.requests[0].url.params) == {
        "cursor": "c_1",
        "limit": "2",
        "connection_id": "conn_1",
        "status": "unknown",
    }
    assert [mutation.id for mutation in page.data] == ["mut_0002", "mut_0001"]
    assert (page.next_cursor, page.has_more) == ("c_2", True)


def test_list_mutations_without_arguments_sends_no_parameters(api: FakeApi, client: Client) -> None:
    api.routes["GET", "/mutations"] = lambda _: _answer(
        200, {"data": [], "next_cursor": "c", "has_more": False}
    )

    page = client.list_mutations()

    assert dict(api.requests[0].url.params) == {}
    assert page.data == []


def test_iter_mutations_follows_every_page_with_the_same_filters(api: FakeApi, client: Client) -> None:
    pages = {
        None: {"data": [mutation_json(3), mutation_json(2)], "next_cursor": "c_2", "has_more": True},
        "c_2": {"data": [mutation_json(1)], "next_cursor": "c_3", "has_more": False},
    }
    api.routes["GET", "/mutations"] = lambda request: _answer(200, pages[request.url.params.get("cursor")])

    found = list(client.iter_mutations(connection_id="conn_1", status="succeeded", limit=2))

    assert [mutation.id for mutation in found] == ["mut_0003", "mut_0002", "mut_0001"]
    assert [dict(request.url.params) for request in api.requests] == [
        {"limit": "2", "connection_id": "conn_1", "status": "succeeded"},
        {"cursor": "c_2", "limit": "2", "connection_id": "conn_1", "status": "succeeded"},
    ]


def test_get_mutation_reads_an_unknown_one_with_its_error(api: FakeApi, client: Client) -> None:
    unknown = mutation_json(
        7,
        kind="create",
        record_id=None,
        status="unknown",
        record=None,
        event_id=None,
        error={"type": "timeout", "message": "no answer", "key": "provider_timeout", "data": {}},
    )
    api.routes["GET", "/mutations/mut_0007"] = lambda _: _answer(200, unknown)

    mutation = client.get_mutation("mut_0007")

    assert (mutation.status, mutation.record_id, mutation.record, mutation.event_id) == (
        "unknown",
        None,
        None,
        None,
    )
    assert mutation.error == ErrorObject("timeout", "no answer", "provider_timeout", {})
    assert mutation.to_dict() == unknown


def test_mutation_ids_are_escaped_in_the_path(api: FakeApi, client: Client) -> None:
    with pytest.raises(NotFound):
        client.get_mutation("../events")

    assert api.requests[0].url.raw_path == b"/mutations/..%2Fevents"


def test_fields_a_newer_server_adds_are_kept(api: FakeApi, client: Client) -> None:
    newer = mutation_json(provider="stripe", attempts=2)
    api.routes["GET", "/mutations/mut_0001"] = lambda _: _answer(200, newer)

    mutation = client.get_mutation("mut_0001")

    assert mutation.extra == {"provider": "stripe", "attempts": 2}
    assert mutation.to_dict() == newer


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {key: value for key, value in mutation_json().items() if key != "status"},
        mutation_json(record_id=7),
        mutation_json(error={"message": "no type"}),
        mutation_json(error="boom"),
    ],
)
def test_a_mutation_of_another_shape_is_a_bad_response(api: FakeApi, client: Client, answer: Any) -> None:
    api.routes["GET", "/mutations/mut_0001"] = lambda _: _answer(200, answer)

    with pytest.raises(PullbridgeAPIError) as raised:
        client.get_mutation("mut_0001")

    assert raised.value.error_type == "bad_response"
