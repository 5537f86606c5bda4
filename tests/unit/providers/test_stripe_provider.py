"""Stripe: `Stripe-Signature` verification and event normalization, on Stripe's published payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.stripe import PROVIDER

from .support import fixture_bytes, fixture_json, make_request

SECRET = "whsec_test_secret"
NOW = 1_700_000_000
BODY = b'{"id":"evt_1","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}'

ARABIC_INDIC_DIGITS = "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"
"""Digits to `str.isdigit`, not to a parser of unix timestamps."""


def v1(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed(header: str, body: bytes = BODY) -> Any:
    return make_request({"Stripe-Signature": header}, body)


def event(event_type: str, record: dict[str, Any] | None, **extra: Any) -> bytes:
    return json.dumps(
        {"id": "evt_1", "type": event_type, "created": NOW, "data": {"object": record}, **extra}
    ).encode()


# --- verify -------------------------------------------------------------------------------------


def test_verify_accepts_a_valid_v1_signature() -> None:
    PROVIDER.verify(signed(f"t={NOW},v1={v1(BODY, NOW)}"), [SECRET], {}, NOW)


def test_verify_rejects_a_v1_signature_of_another_body() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(f"t={NOW},v1={v1(BODY + b' ', NOW)}"), [SECRET], {}, NOW)


def test_verify_accepts_when_any_of_several_v1_signatures_matches() -> None:
    header = f"t={NOW},v1={'0' * 64},v1={v1(BODY, NOW)},v1={'f' * 64}"
    PROVIDER.verify(signed(header), [SECRET], {}, NOW)


def test_verify_rejects_when_none_of_several_v1_signatures_matches() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(f"t={NOW},v1={'0' * 64},v1={'f' * 64}"), [SECRET], {}, NOW)


def test_verify_ignores_v0_and_unknown_schemes_next_to_a_matching_v1() -> None:
    header = f"t={NOW},v0={'0' * 64},v9=whatever,v1={v1(BODY, NOW)}"
    PROVIDER.verify(signed(header), [SECRET], {}, NOW)


def test_verify_rejects_a_matching_signature_sent_only_as_v0() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(f"t={NOW},v0={v1(BODY, NOW)}"), [SECRET], {}, NOW)


def test_verify_accepts_a_signature_made_with_any_active_secret() -> None:
    header = f"t={NOW},v1={v1(BODY, NOW, 'whsec_new')}"
    PROVIDER.verify(signed(header), ["whsec_old", "whsec_new"], {}, NOW)


def test_verify_rejects_a_signature_made_with_no_active_secret() -> None:
    header = f"t={NOW},v1={v1(BODY, NOW, 'whsec_retired')}"
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(header), ["whsec_old", "whsec_new"], {}, NOW)


def test_verify_never_treats_an_empty_secret_as_a_key() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(f"t={NOW},v1={v1(BODY, NOW, '')}"), [""], {}, NOW)


def test_verify_rejects_when_the_connection_has_no_secret() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(f"t={NOW},v1={v1(BODY, NOW)}"), [], {}, NOW)


@pytest.mark.parametrize("skew", [-300, 300])
def test_verify_accepts_a_timestamp_at_the_edge_of_the_tolerance(skew: int) -> None:
    timestamp = NOW + skew
    PROVIDER.verify(signed(f"t={timestamp},v1={v1(BODY, timestamp)}"), [SECRET], {}, NOW)


@pytest.mark.parametrize("skew", [-301, 301])
def test_verify_rejects_a_timestamp_outside_the_tolerance_in_either_direction(skew: int) -> None:
    timestamp = NOW + skew
    with pytest.raises(SignatureInvalid) as caught:
        PROVIDER.verify(signed(f"t={timestamp},v1={v1(BODY, timestamp)}"), [SECRET], {}, NOW)
    assert caught.value.key == "stale_timestamp"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={'0' * 64}",
        f"t=,v1={'0' * 64}",
        f"t=abc,v1={'0' * 64}",
        f"t=-{NOW},v1={'0' * 64}",
        f"t={ARABIC_INDIC_DIGITS},v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={'9' * 40},v1={'0' * 64}",
        f"t={NOW}",
        f"t={NOW},v1=zz",
        f"t={NOW},v1={'é' * 64}",
        f"t={NOW},v1",
        f"t={NOW},,v1={'0' * 64}",
    ],
)
def test_verify_rejects_a_malformed_header_with_signature_invalid(header: str) -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(header), [SECRET], {}, NOW)


def test_verify_rejects_a_delivery_without_the_header() -> None:
    with pytest.raises(SignatureInvalid) as caught:
        PROVIDER.verify(make_request({}, BODY), [SECRET], {}, NOW)
    assert caught.value.key == "missing_signature"


# --- normalize: Stripe's published events ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "stripe/webhook_events/customer_updated.json",
            (
                "evt_1DHsSdKCFFPkgtRhy4YMdffC",
                "customer.updated",
                "customers",
                "updated",
                "cus_DjL8lObxrWj04W",
            ),
        ),
        (
            "stripe/webhook_events/event_test_signature.customer.created.json",
            ("evt_123", "customer.created", "customers", "created", "cus_123"),
        ),
        ("stripe/webhook_events/event_plan.json", ("evt_123", "plan.created", None, None, "gold")),
        ("stripe/webhook_events/event_pre_2017-05-25.json", ("evt_123", "ping", None, None, None)),
        (
            "stripe/objects/event.json",
            ("evt_1Pgc76B7WZ01zgkWwyRHS12y", "plan.created", None, None, "price_1PgafmB7WZ01zgkW6dKueIc5"),
        ),
    ],
)
def test_normalize_reads_a_published_event(path: str, expected: tuple[str, ...]) -> None:
    [normalized] = PROVIDER.normalize(make_request({}, fixture_bytes(path)), {})
    found = (
        normalized.delivery_id,
        normalized.type,
        normalized.collection,
        normalized.action,
        normalized.record_id,
    )
    assert found == expected


def test_normalize_keeps_data_object_as_the_data() -> None:
    [normalized] = PROVIDER.normalize(
        make_request({}, fixture_bytes("stripe/webhook_events/customer_updated.json")), {}
    )
    assert normalized.data == fixture_json("stripe/webhook_events/customer_updated.json")["data"]["object"]


def test_normalize_takes_occurred_at_from_created() -> None:
    [normalized] = PROVIDER.normalize(
        make_request({}, fixture_bytes("stripe/webhook_events/customer_updated.json")), {}
    )
    assert normalized.occurred_at == 1538742675.0


def test_normalize_leaves_occurred_at_unknown_without_a_numeric_created() -> None:
    [normalized] = PROVIDER.normalize(
        make_request({}, event("customer.created", {"id": "c", "object": "customer"}, created="soon")), {}
    )
    assert normalized.occurred_at is None


@pytest.mark.parametrize(
    ("object_file", "collection"),
    [
        ("customer", "customers"),
        ("invoice", "invoices"),
        ("subscription", "subscriptions"),
        ("charge", "charges"),
        ("product", "products"),
        ("price", "prices"),
        ("payment_intent", "payment_intents"),
    ],
)
def test_normalize_maps_each_object_type_to_its_collection(object_file: str, collection: str) -> None:
    record = fixture_json(f"stripe/objects/{object_file}.json")
    [normalized] = PROVIDER.normalize(make_request({}, event(f"{object_file}.updated", record)), {})
    assert (normalized.collection, normalized.action, normalized.record_id) == (
        collection,
        "updated",
        record["id"],
    )


def test_normalize_names_the_collection_by_object_not_by_event_prefix() -> None:
    record = fixture_json("stripe/objects/subscription.json")
    [normalized] = PROVIDER.normalize(make_request({}, event("customer.subscription.deleted", record)), {})
    assert (normalized.collection, normalized.action) == ("subscriptions", "deleted")


def test_normalize_maps_a_deleted_customer_to_a_deletion() -> None:
    record = fixture_json("stripe/objects/deleted_customer.json")
    [normalized] = PROVIDER.normalize(make_request({}, event("customer.deleted", record)), {})
    assert (normalized.collection, normalized.action, normalized.record_id) == (
        "customers",
        "deleted",
        record["id"],
    )


def test_normalize_gives_no_action_to_an_event_that_names_none() -> None:
    record = fixture_json("stripe/objects/invoice.json")
    [normalized] = PROVIDER.normalize(make_request({}, event("invoice.paid", record)), {})
    assert (normalized.collection, normalized.action) == ("invoices", None)


def test_normalize_gives_no_collection_or_action_to_an_unknown_object_type() -> None:
    [normalized] = PROVIDER.normalize(
        make_request({}, event("coupon.created", {"id": "co_1", "object": "coupon"})), {}
    )
    assert (normalized.collection, normalized.action) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"evt_1"',
        b'{"type": "customer.created"}',
        b'{"id": "evt_1"}',
        b'{"id": 1, "type": "customer.created"}',
        b'{"id": "evt_1", "type": ""}',
        b'{"id": "evt_1", "type": "customer.created", "data": []}',
        b'{"id": "evt_1", "type": "customer.created", "data": {"object": "cus_1"}}',
        b"[" * 100_000,
    ],
)
def test_normalize_rejects_a_malformed_payload(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(make_request({}, body), {})


# --- connection-time checks --------------------------------------------------------------------


def test_validate_secret_accepts_a_signing_secret() -> None:
    PROVIDER.validate_secret("whsec_5uRVrDkR0yaGWvPSNQsBtKKqgEvN6fme")


@pytest.mark.parametrize("secret", ["", " whsec_x", "whsec_x\n", "whsec_é"])
def test_validate_secret_rejects_an_unusable_secret(secret: str) -> None:
    with pytest.raises(ValidationFailed):
        PROVIDER.validate_secret(secret)
