"""Generic: per-connection HMAC settings, their validation, verification and normalization."""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import pytest

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import WebhookRequest
from pullbridge.providers.generic import PROVIDER
from pullbridge.providers.generic.settings import GenericSettings, validate_settings

from .support import WEBHOOK_URL, make_request

SECRET = "generic-secret"
NOW = 1_700_000_000
BODY = b'{"id": "dlv_1", "type": "order.updated", "order": {"id": 42}, "at": "2023-11-14T22:13:20Z"}'
MINIMAL: dict[str, Any] = {"signature_header": "X-Signature", "delivery_id_path": "$.id"}
TIMESTAMPED: dict[str, Any] = MINIMAL | {"timestamp_header": "X-Timestamp"}


def digest(message: bytes, *, algorithm: str = "sha256", secret: str = SECRET) -> bytes:
    return hmac.new(secret.encode(), message, algorithm).digest()


def request(signature: str, body: bytes = BODY, headers: dict[str, str] | None = None) -> WebhookRequest:
    return make_request({"X-Signature": signature, **(headers or {})}, body)


def failed_fields(settings: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        validate_settings(settings)
    fields: list[str] = caught.value.data["fields"]
    return fields


# --- settings ------------------------------------------------------------------------------------


def test_validate_settings_fills_in_the_defaults() -> None:
    assert validate_settings(MINIMAL) == MINIMAL | {
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "",
        "timestamp_unit": "seconds",
        "tolerance_seconds": 300,
    }


def test_validate_settings_keeps_a_valid_rate_limit() -> None:
    rate_limit = {"allowed_requests": 10, "interval_seconds": 1}
    assert validate_settings(MINIMAL | {"rate_limit": rate_limit})["rate_limit"] == rate_limit


def test_validate_settings_refuses_keys_it_does_not_know() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_settings(MINIMAL | {"rate_limt": {"allowed_requests": 10, "interval_seconds": 1}})
    assert caught.value.data == {"field": "settings.rate_limt", "fields": ["settings.rate_limt"]}


def test_validate_settings_names_every_wrong_field_at_once() -> None:
    settings = {
        "delivery_id_path": "id",
        "extra": 1,
        "rate_limit": {"allowed_requests": 0, "interval_seconds": 1},
    }
    assert failed_fields(settings) == [
        "settings.extra",
        "settings.rate_limit.allowed_requests",
        "settings.signature_header",
    ]


def test_validate_settings_leaves_out_unset_options_and_a_null_rate_limit() -> None:
    stored = validate_settings(MINIMAL | {"type_path": None, "rate_limit": None})
    assert "type_path" not in stored
    assert "rate_limit" not in stored


def test_settings_stored_before_unknown_keys_were_refused_still_verify() -> None:
    # Verification parses stored settings leniently: a connection written earlier keeps working.
    signature = digest(BODY).hex()
    PROVIDER.verify(request(signature), [SECRET], MINIMAL | {"note": "kept from before"}, NOW)


def test_the_provider_offers_validate_settings() -> None:
    assert PROVIDER.validate_settings(MINIMAL) == validate_settings(MINIMAL)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"delivery_id_path": "id"}, "settings.signature_header"),
        (MINIMAL | {"signature_header": "X Signature"}, "settings.signature_header"),
        (MINIMAL | {"algorithm": "md5"}, "settings.algorithm"),
        (MINIMAL | {"encoding": "base32"}, "settings.encoding"),
        (TIMESTAMPED | {"tolerance_seconds": 0}, "settings.tolerance_seconds"),
        (TIMESTAMPED | {"tolerance_seconds": -1}, "settings.tolerance_seconds"),
        (TIMESTAMPED | {"tolerance_seconds": 301}, "settings.tolerance_seconds"),
        (TIMESTAMPED | {"tolerance_seconds": "300"}, "settings.tolerance_seconds"),
        (TIMESTAMPED | {"tolerance_seconds": False}, "settings.tolerance_seconds"),
        (TIMESTAMPED | {"timestamp_unit": "minutes"}, "settings.timestamp_unit"),
        (MINIMAL | {"delivery_id_header": "X-Id"}, "settings.delivery_id_header"),
        ({"signature_header": "X-Signature"}, "settings.delivery_id_header"),
        (MINIMAL | {"delivery_id_path": "a..b"}, "settings.delivery_id_path"),
        (MINIMAL | {"type_path": ""}, "settings.type_path"),
        (MINIMAL | {"record_id_path": "$."}, "settings.record_id_path"),
        (MINIMAL | {"collection": "Bad Name"}, "settings.collection"),
        (TIMESTAMPED | {"signed_content": "{body}"}, "settings.signed_content"),
        (MINIMAL | {"signed_content": "{timestamp}.{body}"}, "settings.signed_content"),
        (MINIMAL | {"signed_content": "{body}{body}"}, "settings.signed_content"),
        (MINIMAL | {"signed_content": "{method}"}, "settings.signed_content"),
        (MINIMAL | {"signed_content": "{secret}.{body}"}, "settings.signed_content"),
        (MINIMAL | {"signed_content": "{ {body}"}, "settings.signed_content"),
        (MINIMAL | {"signed_content": "{delivery_id}.{body}"}, "settings.signed_content"),
        (MINIMAL | {"rate_limit": "fast"}, "settings.rate_limit"),
        (
            MINIMAL | {"rate_limit": {"allowed_requests": 0, "interval_seconds": 0}},
            "settings.rate_limit.allowed_requests",
        ),
        (
            MINIMAL | {"rate_limit": {"allowed_requests": 5, "interval_seconds": 0.5}},
            "settings.rate_limit.interval_seconds",
        ),
        (MINIMAL | {"signature_heder": "X-Signature"}, "settings.signature_heder"),
    ],
)
def test_validate_settings_names_the_wrong_field(settings: dict[str, Any], field: str) -> None:
    assert field in failed_fields(settings)


def test_validate_settings_reads_a_null_tolerance_as_the_default() -> None:
    assert validate_settings(TIMESTAMPED | {"tolerance_seconds": None})["tolerance_seconds"] == 300


def test_validate_settings_accepts_a_tolerance_below_the_default() -> None:
    assert validate_settings(TIMESTAMPED | {"tolerance_seconds": 60})["tolerance_seconds"] == 60


def test_the_default_signed_content_signs_the_timestamp_when_there_is_one() -> None:
    assert GenericSettings.model_validate(TIMESTAMPED).template == "{timestamp}.{body}"


def test_the_default_signed_content_is_the_body_without_a_timestamp() -> None:
    assert GenericSettings.model_validate(MINIMAL).template == "{body}"


# --- verify -------------------------------------------------------------------------------------


def test_verify_accepts_a_hex_signature_of_the_body() -> None:
    PROVIDER.verify(request(digest(BODY).hex()), [SECRET], MINIMAL, NOW)


def test_verify_rejects_a_hex_signature_of_another_body() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(digest(BODY).hex(), BODY + b" "), [SECRET], MINIMAL, NOW)


def test_verify_accepts_a_signature_after_its_prefix() -> None:
    PROVIDER.verify(request("sha256=" + digest(BODY).hex()), [SECRET], MINIMAL | {"prefix": "sha256="}, NOW)


def test_verify_rejects_a_signature_without_its_prefix() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(digest(BODY).hex()), [SECRET], MINIMAL | {"prefix": "sha256="}, NOW)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_verify_accepts_a_base64_signature_with_the_configured_algorithm(algorithm: str) -> None:
    settings = MINIMAL | {"algorithm": algorithm, "encoding": "base64"}
    signature = base64.b64encode(digest(BODY, algorithm=algorithm)).decode()
    PROVIDER.verify(request(signature), [SECRET], settings, NOW)


def test_verify_rejects_a_signature_made_with_another_algorithm() -> None:
    settings = MINIMAL | {"algorithm": "sha512", "encoding": "base64"}
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(base64.b64encode(digest(BODY)).decode()), [SECRET], settings, NOW)


def test_verify_accepts_a_signature_made_with_any_active_secret() -> None:
    PROVIDER.verify(request(digest(BODY, secret="new").hex()), ["old", "new"], MINIMAL, NOW)


def test_verify_rejects_a_signature_made_with_no_active_secret() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(digest(BODY, secret="retired").hex()), ["old", "new"], MINIMAL, NOW)


def test_verify_never_treats_an_empty_secret_as_a_key() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(digest(BODY, secret="").hex()), [""], MINIMAL, NOW)


def test_verify_accepts_a_signed_timestamp_within_the_tolerance() -> None:
    signature = digest(f"{NOW - 300}.".encode() + BODY).hex()
    PROVIDER.verify(request(signature, headers={"X-Timestamp": str(NOW - 300)}), [SECRET], TIMESTAMPED, NOW)


@pytest.mark.parametrize("skew", [-301, 301])
def test_verify_rejects_a_timestamp_outside_the_tolerance(skew: int) -> None:
    timestamp = str(NOW + skew)
    signature = digest(f"{timestamp}.".encode() + BODY).hex()
    with pytest.raises(SignatureInvalid) as caught:
        PROVIDER.verify(request(signature, headers={"X-Timestamp": timestamp}), [SECRET], TIMESTAMPED, NOW)
    assert caught.value.key == "stale_timestamp"


@pytest.mark.parametrize("tolerance", [None, 0])
def test_verify_never_reads_a_zero_or_null_tolerance_as_off(tolerance: int | None) -> None:
    timestamp = str(NOW - 10_000)
    signature = digest(f"{timestamp}.".encode() + BODY).hex()
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(
            request(signature, headers={"X-Timestamp": timestamp}),
            [SECRET],
            TIMESTAMPED | {"tolerance_seconds": tolerance},
            NOW,
        )


def test_verify_applies_a_configured_tolerance_below_the_default() -> None:
    timestamp = str(NOW - 61)
    signature = digest(f"{timestamp}.".encode() + BODY).hex()
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(
            request(signature, headers={"X-Timestamp": timestamp}),
            [SECRET],
            TIMESTAMPED | {"tolerance_seconds": 60},
            NOW,
        )


def test_verify_rejects_a_signature_whose_timestamp_was_replaced() -> None:
    signature = digest(f"{NOW - 1000}.".encode() + BODY).hex()
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(signature, headers={"X-Timestamp": str(NOW)}), [SECRET], TIMESTAMPED, NOW)


def test_verify_reads_a_timestamp_in_milliseconds_when_configured() -> None:
    timestamp = str(NOW * 1000)
    settings = TIMESTAMPED | {"timestamp_unit": "milliseconds"}
    signature = digest(f"{timestamp}.".encode() + BODY).hex()
    PROVIDER.verify(request(signature, headers={"X-Timestamp": timestamp}), [SECRET], settings, NOW)


def test_verify_reads_a_timestamp_in_seconds_as_stale_milliseconds() -> None:
    settings = TIMESTAMPED | {"timestamp_unit": "milliseconds"}
    signature = digest(f"{NOW}.".encode() + BODY).hex()
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(signature, headers={"X-Timestamp": str(NOW)}), [SECRET], settings, NOW)


def test_verify_signs_the_method_url_and_delivery_id_as_the_template_says() -> None:
    settings = {
        "signature_header": "X-Signature",
        "delivery_id_header": "X-Id",
        "signed_content": "{method} {url} {delivery_id}\n{body}",
    }
    signature = digest(f"POST {WEBHOOK_URL} dlv_9\n".encode() + BODY).hex()
    PROVIDER.verify(request(signature, headers={"X-Id": "dlv_9"}), [SECRET], settings, NOW)


def test_verify_rejects_a_template_signature_with_another_delivery_id() -> None:
    settings = {
        "signature_header": "X-Signature",
        "delivery_id_header": "X-Id",
        "signed_content": "{delivery_id}.{body}",
    }
    signature = digest(b"dlv_9." + BODY).hex()
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(signature, headers={"X-Id": "dlv_10"}), [SECRET], settings, NOW)


@pytest.mark.parametrize(
    ("settings", "signature", "timestamp"),
    [
        (MINIMAL, "", str(NOW)),
        (MINIMAL, "zz" * 32, str(NOW)),
        (MINIMAL, "00" * 31, str(NOW)),
        (MINIMAL, "0 " * 32, str(NOW)),
        (MINIMAL, "é" * 64, str(NOW)),
        (MINIMAL | {"encoding": "base64"}, "not base64!", str(NOW)),
        (MINIMAL | {"encoding": "base64"}, base64.b64encode(b"\0" * 20).decode(), str(NOW)),
        (MINIMAL | {"prefix": "v1="}, "v2=" + "00" * 32, str(NOW)),
        (TIMESTAMPED, "00" * 32, "soon"),
        (TIMESTAMPED, "00" * 32, ""),
        (TIMESTAMPED, "00" * 32, "٣"),
        (TIMESTAMPED, "00" * 32, "9" * 40),
    ],
)
def test_verify_rejects_a_malformed_header_with_signature_invalid(
    settings: dict[str, Any], signature: str, timestamp: str
) -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request(signature, headers={"X-Timestamp": timestamp}), [SECRET], settings, NOW)


def test_verify_rejects_every_delivery_while_the_settings_are_invalid() -> None:
    with pytest.raises(SignatureInvalid) as caught:
        PROVIDER.verify(request(digest(BODY).hex()), [SECRET], {"signature_header": "X-Signature"}, NOW)
    assert caught.value.key == "invalid_connection_settings"


# --- normalize -----------------------------------------------------------------------------------

FULL: dict[str, Any] = MINIMAL | {
    "type_path": "type",
    "record_id_path": "$.order.id",
    "occurred_at_path": "at",
    "collection": "orders",
}


def test_normalize_reads_every_configured_path() -> None:
    [event] = PROVIDER.normalize(request(""), FULL)
    found = (
        event.delivery_id,
        event.type,
        event.collection,
        event.action,
        event.record_id,
        event.occurred_at,
    )
    assert found == ("dlv_1", "order.updated", "orders", "updated", "42", 1700000000.0)


def test_normalize_keeps_the_whole_payload_as_the_data() -> None:
    [event] = PROVIDER.normalize(request(""), FULL)
    assert event.data == json.loads(BODY)


def test_normalize_takes_the_delivery_id_from_the_configured_header() -> None:
    settings = {"signature_header": "X-Signature", "delivery_id_header": "X-Delivery"}
    [event] = PROVIDER.normalize(request("", headers={"X-Delivery": "hdr_1"}), settings)
    assert event.delivery_id == "hdr_1"


def test_normalize_rejects_a_delivery_without_the_configured_delivery_header() -> None:
    settings = {"signature_header": "X-Signature", "delivery_id_header": "X-Delivery"}
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(request(""), settings)


def test_normalize_follows_a_path_through_a_list_index() -> None:
    body = b'{"meta": {"deliveries": [{"id": 7}]}}'
    [event] = PROVIDER.normalize(request("", body), MINIMAL | {"delivery_id_path": "meta.deliveries.0.id"})
    assert event.delivery_id == "7"


@pytest.mark.parametrize("path", ["missing", "id.deeper", "order", "order.id.0", "list.5"])
def test_normalize_rejects_a_payload_without_an_id_at_the_delivery_id_path(path: str) -> None:
    body = b'{"id": "dlv_1", "order": {"id": true}, "list": [1]}'
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(request("", body), MINIMAL | {"delivery_id_path": path})


def test_normalize_uses_the_default_type_without_a_type_path() -> None:
    [event] = PROVIDER.normalize(request(""), MINIMAL)
    assert (event.type, event.action, event.collection) == ("webhook", None, None)


@pytest.mark.parametrize("body", [b'{"id": "d"}', b'{"id": "d", "type": 3}', b'{"id": "d", "type": ""}'])
def test_normalize_rejects_a_payload_without_a_string_at_the_type_path(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(request("", body), MINIMAL | {"type_path": "type"})


def test_normalize_leaves_the_record_unknown_when_the_record_id_path_finds_nothing() -> None:
    [event] = PROVIDER.normalize(request("", b'{"id": "d"}'), MINIMAL | {"record_id_path": "order.id"})
    assert event.record_id is None


@pytest.mark.parametrize(
    ("value", "expected"), [(1700000000, 1700000000.0), (1.5, 1.5), ("2023-11-14T22:13:20", 1700000000.0)]
)
def test_normalize_reads_occurred_at_as_epoch_seconds_or_iso(value: object, expected: float) -> None:
    body = json.dumps({"id": "d", "at": value}).encode()
    [event] = PROVIDER.normalize(request("", body), MINIMAL | {"occurred_at_path": "at"})
    assert event.occurred_at == expected


@pytest.mark.parametrize("value", ["yesterday", True, None, 10**400, "NaN"])
def test_normalize_leaves_an_unreadable_occurred_at_unknown(value: object) -> None:
    body = json.dumps({"id": "d", "at": value}).encode()
    [event] = PROVIDER.normalize(request("", body), MINIMAL | {"occurred_at_path": "at"})
    assert event.occurred_at is None


@pytest.mark.parametrize("body", [b"", b"id=1", b"\xff", b"[" * 100_000])
def test_normalize_rejects_a_body_that_is_not_json(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(request("", body), MINIMAL)


# --- connection-time checks --------------------------------------------------------------------


def test_validate_secret_accepts_a_secret() -> None:
    PROVIDER.validate_secret(SECRET)


@pytest.mark.parametrize("secret", ["", " secret", "secret\n", "\udc80"])
def test_validate_secret_rejects_an_unusable_secret(secret: str) -> None:
    with pytest.raises(ValidationFailed):
        PROVIDER.validate_secret(secret)
