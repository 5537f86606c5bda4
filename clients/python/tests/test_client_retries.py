"""The Python client's retries and typed errors, against an in-memory API on httpx.MockTransport."""

from __future__ import annotations

import httpx
import pytest
from fake_api import BASE_URL, FakeApi, _error, _scripted

from pullbridge_client import (
    BadRequest,
    Client,
    Conflict,
    Gone,
    NotFound,
    PayloadTooLarge,
    PullbridgeAPIError,
    RateLimited,
    ServerError,
    Unauthorized,
)

# --- retries ---------------------------------------------------------------------------------------


def test_a_429_is_retried_after_its_retry_after(api: FakeApi, client: Client, sleeps: list[float]) -> None:
    limited = httpx.Response(
        429, headers={"retry-after": "7"}, json={"error": {"type": "rate_limited", "message": "slow down"}}
    )
    api.routes["GET", "/connections/conn_1"] = _scripted(
        limited, limited, httpx.Response(200, json={"id": "conn_1"})
    )

    assert client.get_connection("conn_1") == {"id": "conn_1"}
    assert sleeps == [7.0, 7.0]
    assert len(api.requests) == 3


def test_a_5xx_is_retried_with_exponential_backoff(api: FakeApi, client: Client, sleeps: list[float]) -> None:
    api.routes["GET", "/external-event-pulls/pull_1"] = _scripted(
        _error(503, "internal", "storage unavailable"),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(200, json={"id": "pull_1", "status": "success"}),
    )

    assert client.get_pull("pull_1")["status"] == "success"
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5  # backoff 0.5 s, jittered in its upper half
    assert 0.5 <= sleeps[1] <= 1.0


def test_transport_errors_are_retried(api: FakeApi, client: Client, sleeps: list[float]) -> None:
    api.routes["GET", "/connections/conn_1"] = _scripted(
        httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json={"id": "conn_1"})
    )

    assert client.get_connection("conn_1") == {"id": "conn_1"}
    assert len(sleeps) == 2


def test_retries_are_bounded_and_the_last_error_is_raised(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    api.routes["GET", "/connections/conn_1"] = lambda _: _error(500, "internal", "boom", "internal")

    with pytest.raises(ServerError) as raised:
        client.get_connection("conn_1")

    assert len(api.requests) == 1 + client.max_retries
    assert len(sleeps) == client.max_retries
    assert raised.value.error == {"type": "internal", "message": "boom", "key": "internal", "data": {}}
    assert max(sleeps) <= client.max_backoff


def test_transport_errors_are_raised_once_retries_are_spent(api: FakeApi, client: Client) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    api.routes["GET", "/connections/conn_1"] = refuse

    with pytest.raises(httpx.ConnectError):
        client.get_connection("conn_1")
    assert len(api.requests) == 1 + client.max_retries


def test_a_post_is_not_repeated_after_a_5xx_or_a_lost_answer(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    api.routes["POST", "/connections"] = _scripted(_error(503, "internal", "unavailable"))
    with pytest.raises(ServerError):
        client.create_connection("standard", "billing")

    api.routes["POST", "/connections"] = _scripted(httpx.ReadTimeout("no answer"))
    with pytest.raises(httpx.ReadTimeout):
        client.create_connection("standard", "billing")

    assert len(api.requests) == 2
    assert sleeps == []


def test_a_post_is_retried_after_a_429_or_a_refused_connection(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    api.routes["POST", "/connections"] = _scripted(
        httpx.Response(429, headers={"retry-after": "2"}),
        httpx.ConnectError("refused"),
        httpx.Response(201, json={"id": "conn_9"}),
    )

    assert client.create_connection("standard", "billing")["id"] == "conn_9"
    assert sleeps[0] == 2.0
    assert len(sleeps) == 2


def test_a_retry_after_longer_than_the_client_waits_is_raised_at_once(
    api: FakeApi, client: Client, sleeps: list[float]
) -> None:
    api.routes["GET", "/connections/conn_1"] = lambda _: httpx.Response(
        429, headers={"retry-after": "3600"}, json={"error": {"type": "rate_limited", "message": "later"}}
    )

    with pytest.raises(RateLimited) as raised:
        client.get_connection("conn_1")

    assert raised.value.retry_after == 3600.0
    assert sleeps == []
    assert len(api.requests) == 1


def test_an_http_date_retry_after_is_honoured(api: FakeApi, client: Client, sleeps: list[float]) -> None:
    api.routes["GET", "/connections/conn_1"] = _scripted(
        httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        httpx.Response(200, json={"id": "conn_1"}),
    )

    client.get_connection("conn_1")

    assert sleeps == [0.0]  # a date in the past: retry now


def test_a_decimal_retry_after_is_waited_as_sent(api: FakeApi, client: Client, sleeps: list[float]) -> None:
    api.routes["GET", "/connections/conn_1"] = _scripted(
        httpx.Response(429, headers={"retry-after": "1.5"}), httpx.Response(200, json={"id": "conn_1"})
    )

    client.get_connection("conn_1")

    assert sleeps == [1.5]


# --- typed errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "bad_request", BadRequest),
        (401, "unauthorized", Unauthorized),
        (404, "not_found", NotFound),
        (409, "conflict", Conflict),
        (410, "gone", Gone),
        (413, "payload_too_large", PayloadTooLarge),
        (418, "teapot", PullbridgeAPIError),
    ],
)
def test_errors_are_typed_and_carry_the_error_object(
    api: FakeApi, client: Client, status: int, error_type: str, expected: type[PullbridgeAPIError]
) -> None:
    api.routes["GET", "/connections/conn_1"] = lambda _: _error(
        status, error_type, "what went wrong", "the_key", field="name"
    )

    with pytest.raises(expected) as raised:
        client.get_connection("conn_1")

    error = raised.value
    assert type(error) is expected
    assert (error.status_code, error.error_type, error.message, error.key) == (
        status,
        error_type,
        "what went wrong",
        "the_key",
    )
    assert error.data == {"field": "name"}
    assert error.error == {
        "type": error_type,
        "message": "what went wrong",
        "key": "the_key",
        "data": {"field": "name"},
    }
    assert str(status) in str(error)


def test_a_wrong_key_is_unauthorized(api: FakeApi, sleeps: list[float]) -> None:
    with (
        httpx.Client(transport=httpx.MockTransport(api)) as http,
        Client(BASE_URL, "wrong", http=http, sleep=sleeps.append) as client,
        pytest.raises(Unauthorized) as raised,
    ):
        list(client.iter_events())

    assert raised.value.key == "invalid_api_key"
    assert sleeps == []


def test_a_running_pull_is_a_conflict_naming_it(api: FakeApi, client: Client) -> None:
    api.routes["POST", "/external-event-subscriptions/sub_1/pull"] = lambda _: _error(
        409, "conflict", "a pull is already running", "pull_running", pull_id="pull_7"
    )

    with pytest.raises(Conflict) as raised:
        client.trigger_pull("sub_1")

    assert raised.value.pull_id == "pull_7"


def test_an_error_that_is_not_the_apis_own_is_still_typed(api: FakeApi, client: Client) -> None:
    api.routes["GET", "/connections"] = lambda _: httpx.Response(403, json={"message": "Forbidden"})
    with pytest.raises(Unauthorized) as forbidden:
        client.list_connections()
    assert (forbidden.value.error_type, forbidden.value.message) == ("unauthorized", "Forbidden")

    api.routes["GET", "/connections"] = lambda _: httpx.Response(504, text="<html>\nGateway\n</html>")
    with pytest.raises(ServerError) as timeout:
        client.list_connections()
    assert timeout.value.error_type == "internal"
    assert "\n" not in timeout.value.message


def test_a_success_that_is_not_json_is_an_error(api: FakeApi, client: Client) -> None:
    api.routes["GET", "/connections/conn_1"] = lambda _: httpx.Response(200, text="<html></html>")

    with pytest.raises(PullbridgeAPIError) as raised:
        client.get_connection("conn_1")

    assert raised.value.error_type == "bad_response"
