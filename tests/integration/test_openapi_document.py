"""The OpenAPI document tells the truth: each operation's real success status, every error status with
the contract's error object, 400 for validation (never 422), and the bearer scheme (issue 11)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.support import api_event, json_body, lambda_context

PUBLIC = {("get", "/health"), ("post", "/webhooks/{connection_id}")}
SUCCESS = {
    ("post", "/connections"): "201",
    ("post", "/external-event-subscriptions"): "201",
    ("post", "/external-event-subscriptions/{subscription_id}/pull"): "202",
    ("delete", "/external-event-subscriptions/{subscription_id}"): "204",
    ("post", "/consumers"): "201",
    ("delete", "/consumers/{consumer}"): "204",
    ("delete", "/consumers/{consumer}/dead-letters/{event_id}"): "204",
}


@pytest.fixture
def document(api: ModuleType, api_key: str) -> dict[str, Any]:
    response = api.lambda_handler(api_event("health.json", api_key, path="/openapi.json"), lambda_context())
    assert response["statusCode"] == 200
    return json_body(response)  # type: ignore[no-any-return]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_no_operation_documents_powertools_422_or_its_schema(document: dict[str, Any]) -> None:
    """Validation is 400; the one 422 is a provider refusing a mutation, in the contract's error object."""
    with_422 = [
        (method, path) for method, path, operation in _operations(document) if "422" in operation["responses"]
    ]
    assert with_422 == [("post", "/mutations")]
    refusal = document["paths"]["/mutations"]["post"]["responses"]["422"]
    assert refusal["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_operation_has_its_real_success_status(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        successes = {status for status in operation["responses"] if status.startswith("2")}
        assert successes == {SUCCESS.get((method, path), "200")}, (method, path)
    no_content = document["paths"]["/external-event-subscriptions/{subscription_id}"]["delete"]
    assert "content" not in no_content["responses"]["204"]


def test_every_error_status_carries_the_contract_error_object(document: dict[str, Any]) -> None:
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for method, path, operation in _operations(document):
        errors = {status: r for status, r in operation["responses"].items() if int(status) >= 400}
        assert {"400", "500", "503"} <= set(errors), (method, path)
        assert all(r["content"]["application/json"]["schema"] == error_ref for r in errors.values())
        if "{" in path:
            assert "404" in errors, (method, path)
        if method in ("post", "patch") and (method, path) != (
            "post",
            "/external-event-subscriptions/{subscription_id}/pull",
        ):
            assert "413" in errors, (method, path)
    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == {"error"}


def test_the_bearer_scheme_is_declared_and_only_public_routes_waive_it(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["api_key"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Bearer pb_...`",
    }
    assert document["security"] == [{"api_key": []}]
    for method, path, operation in _operations(document):
        if (method, path) in PUBLIC:
            assert operation["security"] == [], path
            assert "401" in operation["responses"] or path == "/health"
        else:
            assert "security" not in operation, path  # the document's default: the bearer key
            assert "401" in operation["responses"], (method, path)
    assert ("post", "/webhooks/{connection_id}") in {(m, p) for m, p, _ in _operations(document)}


def test_a_validation_error_is_400_in_the_contract_shape(api: ModuleType, api_key: str) -> None:
    response = api.lambda_handler(
        api_event("list_events.json", api_key, query={"limit": "0"}), lambda_context()
    )
    assert response["statusCode"] == 400
    assert json_body(response)["error"]["data"]["field"] == "limit"
