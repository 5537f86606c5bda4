"""`POST /mutations`, `GET /mutations`, `GET /mutations/{id}` through the API Lambda: bad input gets the
contract's error and calls no provider; the routes and their statuses (issue 16)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from pullbridge.mutations.idempotency import IdempotentMutations
from pullbridge.mutations.service import Mutations
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store, dynamodb_client
from pullbridge.storage.idempotency import idempotency_persistence
from tests.fakes.provider_server import WRITES, FakeProviderServer
from tests.support import api_event, json_body, lambda_context


class NoProvider:
    """An httpx transport that records every request a test said must not happen."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500)


@pytest.fixture
def provider_calls(
    api: ModuleType, store: Store, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch
) -> NoProvider:
    transport = NoProvider()
    runner = Mutations(store, httpx.Client(transport=httpx.MockTransport(transport)), allow_private=True)
    persistence = idempotency_persistence(
        dynamodb_client(settings.dynamodb_endpoint), settings.idempotency_table
    )
    wiring = sys.modules["api_routes.wiring"]  # the API's services, which its routes read at each request
    monkeypatch.setattr(wiring, "idempotent_mutations", lambda: IdempotentMutations(runner, persistence))
    return transport


def call(
    api: ModuleType,
    key: str | None,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    parts = path.strip("/").split("/")
    event = api_event(
        "create_mutation.json",
        key,
        path=path,
        method=method,
        body=body,
        query=query,
        path_parameters={"mutation_id": parts[1]} if len(parts) > 1 else None,
    )
    event["headers"].pop("idempotency-key", None)
    event["headers"].update(headers or {})
    if body is None:
        event.pop("body", None)
    response = api.lambda_handler(event, lambda_context())
    return (
        response["statusCode"],
        json_body(response) if response.get("body") else None,
        response.get("headers", {}),
    )


def _connection(api: ModuleType, key: str, **fields: Any) -> str:
    body = {
        "provider": "github",
        "name": "repo",
        "webhook_secrets": ["gh_secret"],
        "credentials": {"token": "ghp_test"},
        "api_base_url": "https://api.github.example",
        "settings": {"repository": "octo/hello"},
        **fields,
    }
    event = api_event("create_connection.json", key, body=body)
    response = api.lambda_handler(event, lambda_context())
    assert response["statusCode"] == 201, response["body"]
    return str(json_body(response)["id"])


def _mutations(api: ModuleType, key: str) -> list[dict[str, Any]]:
    status, body, _ = call(api, key, "GET", "/mutations")
    assert status == 200, body
    return body["data"]  # type: ignore[no-any-return]


BAD_BODIES = [
    pytest.param(
        {"collection": "issues", "kind": "create", "data": {"title": "x"}},
        "connection_id",
        id="no-connection",
    ),
    pytest.param({"kind": "create", "data": {"title": "x"}}, "collection", id="no-collection"),
    pytest.param({"collection": "issues", "kind": "destroy", "data": {}}, "kind", id="unknown-kind"),
    pytest.param({"collection": "issues", "kind": "create"}, "data", id="create-without-data"),
    pytest.param(
        {"collection": "issues", "kind": "create", "data": ["title"]}, "data", id="data-not-an-object"
    ),
    pytest.param({"collection": "issues", "kind": "create", "data": "title"}, "data", id="data-a-string"),
    pytest.param(
        {"collection": "issues", "kind": "update", "data": {"state": "closed"}},
        "record_id",
        id="update-without-id",
    ),
    pytest.param({"collection": "issues", "kind": "delete"}, "record_id", id="delete-without-id"),
    pytest.param(
        {"collection": "issues", "kind": "create", "record_id": "1", "data": {"title": "x"}},
        "record_id",
        id="create-with-id",
    ),
    pytest.param(
        {"collection": "issues", "kind": "create", "data": {"title": "x"}, "extra": 1},
        "extra",
        id="unknown-field",
    ),
    pytest.param(
        {"collection": "pulls", "kind": "create", "data": {"title": "x"}},
        "collection",
        id="unknown-collection",
    ),
    pytest.param(
        {"collection": "issues", "kind": "delete", "record_id": "7"}, "kind", id="kind-the-provider-cannot-do"
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_gets_the_contracts_error_and_calls_no_provider(
    api: ModuleType, api_key: str, provider_calls: NoProvider, body: dict[str, Any], field: str
) -> None:
    connection_id = _connection(api, api_key)
    if field != "connection_id":
        body = {"connection_id": connection_id, **body}
    status, error, _ = call(api, api_key, "POST", "/mutations", body=body)
    assert status == 400, error
    assert error["error"]["type"] == "bad_request"
    assert field in (error["error"]["data"].get("field") or error["error"]["message"])
    assert provider_calls.requests == []
    assert _mutations(api, api_key) == []


def test_github_says_it_cannot_delete_an_issue(
    api: ModuleType, api_key: str, provider_calls: NoProvider
) -> None:
    connection_id = _connection(api, api_key)
    body = {"connection_id": connection_id, "collection": "issues", "kind": "delete", "record_id": "7"}
    status, error, _ = call(api, api_key, "POST", "/mutations", body=body)
    assert (status, error["error"]["key"]) == (400, "unsupported_kind")
    assert "github cannot delete issues" in error["error"]["message"]


def test_a_connection_without_credentials_or_archived_calls_no_provider(
    api: ModuleType, api_key: str, provider_calls: NoProvider
) -> None:
    bare = _connection(api, api_key, credentials={})
    archived = _connection(api, api_key)
    event = api_event(
        "create_connection.json",
        api_key,
        path=f"/connections/{archived}",
        method="DELETE",
        path_parameters={"connection_id": archived},
    )
    event.pop("body", None)
    assert api.lambda_handler(event, lambda_context())["statusCode"] in (200, 204)
    for connection_id, key in ((bare, "missing_credentials"), (archived, "connection_archived")):
        body = {
            "connection_id": connection_id,
            "collection": "issues",
            "kind": "create",
            "data": {"title": "x"},
        }
        status, error, _ = call(api, api_key, "POST", "/mutations", body=body)
        assert (status, error["error"]["key"]) == (400, key), error
    assert provider_calls.requests == []
    assert _mutations(api, api_key) == []


def test_another_tenants_connection_and_mutation_are_not_found(
    api: ModuleType, api_key: str, other_api_key: str, provider_calls: NoProvider
) -> None:
    theirs = _connection(api, other_api_key)
    body = {"connection_id": theirs, "collection": "issues", "kind": "create", "data": {"title": "x"}}
    status, error, _ = call(api, api_key, "POST", "/mutations", body=body)
    assert (status, error["error"]["type"]) == (404, "not_found")
    status, error, _ = call(api, api_key, "GET", "/mutations/mut_notyours")
    assert (status, error["error"]["key"]) == (404, "mutation_not_found")
    assert provider_calls.requests == []


def test_an_unknown_connection_is_not_found(
    api: ModuleType, api_key: str, provider_calls: NoProvider
) -> None:
    body = {"connection_id": "conn_nope", "collection": "issues", "kind": "create", "data": {"title": "x"}}
    status, error, _ = call(api, api_key, "POST", "/mutations", body=body)
    assert (status, error["error"]["key"]) == (404, "connection_not_found")


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_idempotency_key_outside_its_bounds_is_refused(
    api: ModuleType, api_key: str, provider_calls: NoProvider, key: str
) -> None:
    connection_id = _connection(api, api_key)
    body = {"connection_id": connection_id, "collection": "issues", "kind": "create", "data": {"title": "x"}}
    status, error, _ = call(api, api_key, "POST", "/mutations", body=body, headers={"idempotency-key": key})
    assert status == 400, error
    assert provider_calls.requests == []


def test_a_list_filter_outside_its_values_and_a_forged_cursor_are_refused(
    api: ModuleType, api_key: str, provider_calls: NoProvider
) -> None:
    status, error, _ = call(api, api_key, "GET", "/mutations", query={"status": "done"})
    assert status == 400
    status, error, _ = call(api, api_key, "GET", "/mutations", query={"cursor": "forged"})
    assert (status, error["error"]["type"]) == (400, "bad_request")


@pytest.fixture
def fake_provider() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def through_fake(
    api: ModuleType, store: Store, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's connections and mutations allowed to reach the fake on 127.0.0.1."""
    wiring = sys.modules["api_routes.wiring"]  # the API's services, which its routes read at each request
    monkeypatch.setattr(wiring, "settings", dataclasses.replace(wiring.settings, allow_private_urls=True))
    runner = Mutations(store, httpx.Client(timeout=2), allow_private=True)
    persistence = idempotency_persistence(
        dynamodb_client(settings.dynamodb_endpoint), settings.idempotency_table
    )
    monkeypatch.setattr(wiring, "idempotent_mutations", lambda: IdempotentMutations(runner, persistence))


def _fake_connection(api: ModuleType, key: str, fake: FakeProviderServer, provider: str) -> str:
    return _connection(
        api,
        key,
        provider=provider,
        credentials=fake.credentials(provider),
        api_base_url=fake.base_url,
        settings=fake.settings(provider),
    )


@pytest.mark.usefixtures("through_fake")
def test_a_mutation_over_http_answers_200_and_is_served_by_id_and_in_the_list(
    api: ModuleType, api_key: str, fake_provider: FakeProviderServer
) -> None:
    connection_id = _fake_connection(api, api_key, fake_provider, "stripe")
    body = {
        "connection_id": connection_id,
        "collection": "customers",
        "kind": "create",
        "data": {"email": "a@b.test"},
    }
    status, created, _ = call(
        api, api_key, "POST", "/mutations", body=body, headers={"idempotency-key": "http-1"}
    )
    assert status == 200, created
    assert set(created) == {
        "id",
        "connection_id",
        "collection",
        "kind",
        "record_id",
        "status",
        "record",
        "event_id",
        "error",
        "created_at",
        "updated_at",
    }
    assert (created["status"], created["kind"], created["record"]["email"]) == (
        "succeeded",
        "create",
        "a@b.test",
    )
    status, fetched, _ = call(api, api_key, "GET", f"/mutations/{created['id']}")
    assert (status, fetched) == (200, created)
    assert [m["id"] for m in _mutations(api, api_key)] == [created["id"]]
    status, event = 0, None
    from tests.support import api_event as _event

    response = api.lambda_handler(
        _event(
            "get_event.json",
            api_key,
            path=f"/events/{created['event_id']}",
            path_parameters={"event_id": created["event_id"]},
        ),
        lambda_context(),
    )
    event = json_body(response)
    assert (response["statusCode"], event["source"], event["record_id"]) == (
        200,
        "mutation",
        created["record_id"],
    )


@pytest.mark.usefixtures("through_fake")
def test_a_refusal_and_a_rate_limit_over_http_carry_the_contracts_statuses(
    api: ModuleType, api_key: str, fake_provider: FakeProviderServer
) -> None:
    connection_id = _fake_connection(api, api_key, fake_provider, "github")
    body = {"connection_id": connection_id, "collection": "issues", "kind": "create", "data": {"title": "x"}}
    fake_provider.fail_with(422, method=WRITES)
    status, error, _ = call(api, api_key, "POST", "/mutations", body=body)
    assert status == 422
    assert error["error"]["type"] == "unprocessable"
    assert {"status_code", "message", "request_id", "mutation_id"} <= set(error["error"]["data"])
    assert error["error"]["data"]["status_code"] == 422

    fake_provider.fail_with(429, method=WRITES, retry_after=12)
    status, error, headers = call(api, api_key, "POST", "/mutations", body=body)
    assert (status, error["error"]["type"]) == (429, "rate_limited")
    assert headers["Retry-After"] == "12"
