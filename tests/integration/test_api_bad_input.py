"""Any body a client can send gets a 4xx with the contract's error object, and changes nothing; every
stored field has a maximum, checked before storage (issue 11)."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from pullbridge.http import MAX_API_BODY_BYTES
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store
from tests.integration.conftest import counting
from tests.support import TEST_SECRET, api_event, json_body, lambda_context

VALID = {"provider": "standard", "name": "billing", "webhook_secrets": [TEST_SECRET]}


def _raw_request(
    key: str | None,
    raw: bytes,
    *,
    content_type: str | None = "application/json",
    sample: str = "create_connection.json",
    path: str | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """A request whose body is exactly `raw`, base64-encoded as API Gateway passes bytes that are not UTF-8."""
    event = api_event(sample, key, path=path, method=method)
    try:
        event["body"], event["isBase64Encoded"] = raw.decode(), False
    except UnicodeDecodeError:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    if content_type is None:
        event["headers"].pop("content-type", None)
    else:
        event["headers"]["content-type"] = content_type
    return event


def _call(api: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = api.lambda_handler(event, lambda_context())
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json_body(response)


def _connections(api: ModuleType, key: str) -> list[dict[str, Any]]:
    status, body = _call(api, api_event("get_event.json", key, path="/connections"))
    assert status == 200
    return body["data"]  # type: ignore[no-any-return]


NESTED = b'{"provider":"standard","name":"x","metadata":' + b"[" * 10_000 + b"]" * 10_000 + b"}"


@pytest.mark.parametrize(
    ("raw", "content_type", "key"),
    [
        pytest.param(b'{"name":"caf\xe9"}', "application/json", "invalid_encoding", id="latin-1"),
        pytest.param(json.dumps(VALID).encode("utf-16"), "application/json", "invalid_encoding", id="utf-16"),
        pytest.param(json.dumps(VALID).encode(), "application/json; charset=utf-16", None, id="charset"),
        pytest.param(NESTED, "application/json", "malformed_json", id="nested-10000-deep"),
        pytest.param(json.dumps(VALID).encode(), "text/plain", "unsupported_content_type", id="text/plain"),
        pytest.param(b"provider=standard&name=x", "application/x-www-form-urlencoded", None, id="form"),
        pytest.param(b'{"provider":', "application/json", "malformed_json", id="truncated"),
        pytest.param(b'{"provider":"standard","name":NaN}', "application/json", "malformed_json", id="NaN"),
        pytest.param(b"", "application/json", "validation_error", id="empty"),
        pytest.param(b"null", "application/json", "validation_error", id="null"),
        pytest.param(b"[]", "application/json", "validation_error", id="array"),
    ],
)
def test_an_unparseable_body_is_400_and_stores_nothing(
    api: ModuleType, api_key: str, raw: bytes, content_type: str, key: str | None
) -> None:
    for method, path in (("POST", "/connections"), ("POST", "/external-event-subscriptions")):
        status, body = _call(
            api, _raw_request(api_key, raw, content_type=content_type, method=method, path=path)
        )
        assert status == 400, body
        assert set(body["error"]) == {"type", "message", "key", "data"}
        assert body["error"]["type"] == "bad_request"
        if key is not None:
            assert body["error"]["key"] == key
    assert _connections(api, api_key) == []


def test_a_body_over_the_limit_is_413_naming_the_body(api: ModuleType, api_key: str) -> None:
    raw = json.dumps({**VALID, "metadata": {"k": "v" * MAX_API_BODY_BYTES}}).encode()
    status, body = _call(api, _raw_request(api_key, raw))
    assert status == 413
    assert body["error"]["type"] == "payload_too_large"
    assert body["error"]["data"]["field"] == "body"
    assert _connections(api, api_key) == []


def test_a_patch_with_a_bad_body_is_400(api: ModuleType, api_key: str, connection: dict[str, Any]) -> None:
    path = f"/connections/{connection['id']}"
    event = _raw_request(api_key, b"\xff\xfe{", sample="get_event.json", path=path, method="PATCH")
    event["pathParameters"] = {"connection_id": connection["id"]}
    assert _call(api, event)[0] == 400


def test_the_key_is_checked_before_the_body(api: ModuleType) -> None:
    # An unauthenticated caller hears 401, not what is wrong with its body
    status, body = _call(api, _raw_request(None, b"\xff", content_type="text/plain"))
    assert status == 401
    assert body["error"]["type"] == "unauthorized"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metadata": {"k": "v" * 501}}, "metadata.k"),
        ({"metadata": {"k" * 41: "v"}}, "metadata"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
        ({"credentials": {"api_key": "s" * 8_193}}, "credentials.api_key"),
        ({"credentials": {f"c{i}": "s" for i in range(21)}}, "credentials"),
        ({"webhook_secrets": [TEST_SECRET, "w" * 1_025]}, "webhook_secrets.1"),
        ({"settings": {"note": "x" * 16_400}}, "settings"),
        ({"name": "n" * 201}, "name"),
        ({"api_base_url": "https://example.com/" + "p" * 2_048}, "api_base_url"),
    ],
)
def test_an_oversized_field_is_400_naming_it(
    api: ModuleType, api_key: str, fields: dict[str, Any], field: str
) -> None:
    body_fields = {**VALID, **fields}
    status, body = _call(api, api_event("create_connection.json", api_key, body=body_fields))
    assert status == 400, body
    assert body["error"]["data"]["field"].startswith(field), body
    assert _connections(api, api_key) == []


def test_an_oversized_field_on_patch_is_400_and_changes_nothing(
    api: ModuleType, api_key: str, connection: dict[str, Any]
) -> None:
    path = f"/connections/{connection['id']}"
    event = api_event(
        "get_event.json", api_key, path=path, method="PATCH", body={"metadata": {"k": "v" * 450_000}}
    )
    event["pathParameters"] = {"connection_id": connection["id"]}
    status, body = _call(api, event)
    assert status == 413  # over the body limit before any field is looked at
    event = api_event(
        "get_event.json", api_key, path=path, method="PATCH", body={"metadata": {"k": "v" * 501}}
    )
    event["pathParameters"] = {"connection_id": connection["id"]}
    status, body = _call(api, event)
    assert status == 400
    assert body["error"]["data"]["field"] == "metadata.k"
    [stored] = _connections(api, api_key)
    assert stored["metadata"] == {}
    assert stored["updated_at"] == connection["updated_at"]


def test_health_is_liveness_and_deep_health_checks_dynamodb(api: ModuleType, store: Store) -> None:
    assert _call(api, api_event("health.json", None)) == (200, {"status": "ok", "checks": {}})
    deep = api_event("health.json", None, query={"deep": "true"})
    assert _call(api, deep) == (200, {"status": "ok", "checks": {"dynamodb": "ok"}})
    # Liveness reads nothing; readiness reads DynamoDB
    with counting(api.store._client) as calls:
        _call(api, api_event("health.json", None))
        assert calls.names == []


def test_deep_health_is_503_when_dynamodb_is_unreachable(api: ModuleType, settings: ApiSettings) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    events = api.store._client.meta.events
    events.register("before-send.dynamodb.GetItem", unreachable)
    try:
        status, body = _call(api, api_event("health.json", None, query={"deep": "true"}))
        assert _call(api, api_event("health.json", None))[0] == 200  # liveness stays cheap
    finally:
        events.unregister("before-send.dynamodb.GetItem", unreachable)
    assert status == 503
    assert body["error"]["key"] == "storage_unavailable"
