from __future__ import annotations

import json

from pullbridge.errors import Gone, InvalidCursor, PayloadTooLarge, SignatureInvalid, StorageUnavailable
from pullbridge.http import error_response, validation_error


def test_every_error_renders_the_contract_shape() -> None:
    for error, status, kind in (
        (InvalidCursor("bad"), 400, "bad_request"),
        (SignatureInvalid("no"), 401, "unauthorized"),
        (Gone("old"), 410, "gone"),
        (PayloadTooLarge("big"), 413, "payload_too_large"),
        (StorageUnavailable("later"), 503, "internal"),
    ):
        response = error_response(error)
        body = json.loads(response.body or "")
        assert response.status_code == status
        assert set(body["error"]) == {"type", "message", "key", "data"}
        assert body["error"]["type"] == kind


def test_validation_errors_name_each_field() -> None:
    error = validation_error(
        [
            {"loc": ("query", "limit"), "msg": "Input should be less than or equal to 500"},
            {"loc": ("body", "webhook_secrets", 0), "msg": "bad"},
        ]
    )
    assert error.data["field"] == "limit"
    assert [item["field"] for item in error.data["fields"]] == ["limit", "webhook_secrets.0"]
    assert error.message.startswith("limit: Input should be")
