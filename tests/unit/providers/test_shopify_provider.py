"""Shopify: `X-Shopify-Hmac-Sha256` verification and normalization of Shopify's published bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import WebhookRequest
from pullbridge.providers.shopify import PROVIDER

from .support import fixture_bytes, fixture_json, make_request

SECRET = "shpss_client_secret"
NOW = 1_700_000_000
BODY = b'{"id": 450789469, "updated_at": "2008-01-10T11:00:00-05:00"}'
WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery(topic: str, body: bytes, **headers: str) -> WebhookRequest:
    return make_request({"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": WEBHOOK_ID, **headers}, body)


def rest_record(name: str) -> Any:
    """A REST Admin API resource unwrapped: exactly what a webhook for that resource carries as its body."""
    return fixture_json(f"shopify/rest/{name}.json")[name]


# --- verify -------------------------------------------------------------------------------------


def test_verify_accepts_a_valid_signature() -> None:
    PROVIDER.verify(make_request({"X-Shopify-Hmac-Sha256": sign(BODY)}, BODY), [SECRET], {}, NOW)


def test_verify_rejects_a_signature_of_another_body() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({"X-Shopify-Hmac-Sha256": sign(BODY)}, BODY[:-1]), [SECRET], {}, NOW)


def test_verify_accepts_a_signature_made_with_any_active_secret() -> None:
    request = make_request({"X-Shopify-Hmac-Sha256": sign(BODY, "new")}, BODY)
    PROVIDER.verify(request, ["old", "new"], {}, NOW)


def test_verify_rejects_a_signature_made_with_no_active_secret() -> None:
    request = make_request({"X-Shopify-Hmac-Sha256": sign(BODY, "retired")}, BODY)
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request, ["old", "new"], {}, NOW)


def test_verify_never_treats_an_empty_secret_as_a_key() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({"X-Shopify-Hmac-Sha256": sign(BODY, "")}, BODY), [""], {}, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "not base64!",
        "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g",
        "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3",
        base64.b64encode(b"\0" * 20).decode(),
        "ü" * 44,
        "0" * 64,
    ],
)
def test_verify_rejects_a_malformed_header_with_signature_invalid(header: str) -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({"X-Shopify-Hmac-Sha256": header}, BODY), [SECRET], {}, NOW)


def test_verify_rejects_a_delivery_without_the_header() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({}, BODY), [SECRET], {}, NOW)


# --- normalize -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "name", "expected"),
    [
        ("orders/create", "order", ("orders", "created")),
        ("orders/updated", "order", ("orders", "updated")),
        ("orders/paid", "order", ("orders", "updated")),
        ("orders/cancelled", "order", ("orders", "updated")),
        ("orders/delete", "order", ("orders", "deleted")),
        ("products/create", "product", ("products", "created")),
        ("products/update", "product", ("products", "updated")),
        ("products/delete", "product", ("products", "deleted")),
        ("customers/create", "customer", ("customers", "created")),
        ("customers/update", "customer", ("customers", "updated")),
        ("customers/disable", "customer", ("customers", "updated")),
        ("customers/delete", "customer", ("customers", "deleted")),
    ],
)
def test_normalize_maps_a_topic_to_its_collection_and_action(
    topic: str, name: str, expected: tuple[str, str]
) -> None:
    [normalized] = PROVIDER.normalize(delivery(topic, json.dumps(rest_record(name)).encode()), {})
    assert (normalized.type, normalized.collection, normalized.action) == (topic, *expected)


@pytest.mark.parametrize("name", ["order", "product", "customer"])
def test_normalize_identifies_the_record_by_its_rest_id_as_a_string(name: str) -> None:
    record = rest_record(name)
    [normalized] = PROVIDER.normalize(delivery(f"{name}s/update", json.dumps(record).encode()), {})
    assert normalized.record_id == str(record["id"])


def test_normalize_keeps_the_body_as_the_data() -> None:
    record = rest_record("order")
    [normalized] = PROVIDER.normalize(delivery("orders/create", json.dumps(record).encode()), {})
    assert normalized.data == record


@pytest.mark.parametrize(
    ("topic", "path"),
    [
        ("customers/data_request", "shopify/webhooks/customers_data_request.json"),
        ("customers/redact", "shopify/webhooks/customers_redact.json"),
        ("shop/redact", "shopify/webhooks/shop_redact.json"),
    ],
)
def test_normalize_gives_a_compliance_topic_no_collection(topic: str, path: str) -> None:
    [normalized] = PROVIDER.normalize(delivery(topic, fixture_bytes(path)), {})
    found = (
        normalized.delivery_id,
        normalized.type,
        normalized.collection,
        normalized.action,
        normalized.record_id,
    )
    assert found == (WEBHOOK_ID, topic, None, None, None)


def test_normalize_gives_an_unknown_verb_of_a_known_resource_no_collection() -> None:
    [normalized] = PROVIDER.normalize(
        delivery("customers/merge", json.dumps(rest_record("customer")).encode()), {}
    )
    assert (normalized.collection, normalized.action) == (None, None)


def test_normalize_takes_occurred_at_from_the_triggered_at_header() -> None:
    request = delivery("orders/create", BODY, **{"X-Shopify-Triggered-At": "2023-03-29T18:00:27.877041743Z"})
    [normalized] = PROVIDER.normalize(request, {})
    assert normalized.occurred_at == 1680112827.877041


def test_normalize_falls_back_to_updated_at_without_a_triggered_at_header() -> None:
    [normalized] = PROVIDER.normalize(delivery("orders/create", BODY), {})
    assert normalized.occurred_at == 1199980800.0  # 2008-01-10T11:00:00-05:00


def test_normalize_rejects_a_delivery_without_the_webhook_id_header() -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(make_request({"X-Shopify-Topic": "orders/create"}, BODY), {})


def test_normalize_rejects_a_delivery_without_the_topic_header() -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(make_request({"X-Shopify-Webhook-Id": WEBHOOK_ID}, BODY), {})


@pytest.mark.parametrize("body", [b"", b"<xml/>", b"[]", b"42", b"\xff", b"[" * 100_000])
def test_normalize_rejects_a_malformed_payload(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(delivery("orders/create", body), {})


# --- connection-time checks --------------------------------------------------------------------


def test_validate_secret_accepts_a_client_secret() -> None:
    PROVIDER.validate_secret("shpss_0123456789abcdef")


@pytest.mark.parametrize("secret", ["", "secret ", "sécret"])
def test_validate_secret_rejects_an_unusable_secret(secret: str) -> None:
    with pytest.raises(ValidationFailed):
        PROVIDER.validate_secret(secret)
