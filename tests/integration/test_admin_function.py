"""The admin function: operators create and revoke API keys by invoking it, never over HTTP."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from pullbridge.auth import hash_api_key
from tests.support import api_event, lambda_context, sample_event


def _admin(admin: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = admin.lambda_handler(event, lambda_context("pullbridge-admin"))
    return answer


def _status(api: ModuleType, api_key: str) -> int:
    response = api.lambda_handler(api_event("list_events.json", api_key), lambda_context())
    return int(response["statusCode"])


@pytest.fixture
def admin(functions: dict[str, ModuleType], tables: dict[str, str]) -> ModuleType:
    return functions["admin"]


def test_a_created_key_opens_the_api_for_its_tenant_and_a_revoked_one_does_not(
    admin: ModuleType, api: ModuleType
) -> None:
    created = _admin(admin, sample_event("admin_create_key.json"))
    assert created["tenant"] == "acme"
    assert created["api_key"].startswith("pb_")
    assert _status(api, created["api_key"]) == 200

    assert _admin(admin, {"action": "keys.revoke", "key": created["api_key"]}) == {"tenant": "acme"}
    assert _status(api, created["api_key"]) == 401


def test_a_key_can_be_revoked_by_the_hash_an_operator_may_hold(admin: ModuleType, api: ModuleType) -> None:
    key = _admin(admin, {"action": "keys.create", "tenant": "acme"})["api_key"]
    assert _admin(admin, {"action": "keys.revoke", "key": hash_api_key(key)}) == {"tenant": "acme"}
    assert _status(api, key) == 401


@pytest.mark.parametrize(
    ("event", "error_type", "key", "field"),
    [
        ({"action": "keys.delete"}, "bad_request", "validation_error", "action"),
        ({"action": "keys.create"}, "bad_request", "validation_error", "keys.create.tenant"),
        ({"action": "keys.create", "tenant": "a b"}, "bad_request", "validation_error", "keys.create.tenant"),
        ({"action": "keys.create", "tenant": "t", "admin": True}, "bad_request", "validation_error", None),
        ({"action": "keys.revoke", "key": "pb_" + "x" * 40}, "not_found", "api_key_not_found", None),
        ({}, "bad_request", "validation_error", None),
    ],
    ids=["unknown-action", "no-tenant", "bad-tenant", "unknown-field", "unknown-key", "empty"],
)
def test_a_refused_action_answers_the_contracts_error_object_and_changes_nothing(
    admin: ModuleType, store: Any, event: dict[str, Any], error_type: str, key: str, field: str | None
) -> None:
    answer = _admin(admin, event)
    assert set(answer) == {"error"}
    assert (answer["error"]["type"], answer["error"]["key"]) == (error_type, key)
    assert set(answer["error"]) == {"type", "message", "key", "data"}
    if field is not None:
        assert answer["error"]["data"]["field"] == field
    assert store.get_control("TENANT#t", "TENANT") is None


def test_neither_the_new_key_nor_a_revoked_one_is_logged(
    admin: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    admin.logger.setLevel("DEBUG")
    try:
        with caplog.at_level("DEBUG"):
            key = _admin(admin, {"action": "keys.create", "tenant": "acme"})["api_key"]
            _admin(admin, {"action": "keys.revoke", "key": key})
    finally:
        admin.logger.setLevel("WARNING")
    ours = [record for record in caplog.records if record.name == admin.logger.name]
    lines = [json.loads(admin.logger.registered_formatter.format(record)) for record in ours]
    assert [line["action"] for line in lines if line["message"] == "admin action"] == [
        "keys.create",
        "keys.revoke",
    ]
    assert key not in json.dumps(lines)
    assert hash_api_key(key) not in json.dumps(lines)
