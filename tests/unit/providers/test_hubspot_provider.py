"""HubSpot: v3 signature verification and normalization of HubSpot's published batches."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import WebhookRequest
from pullbridge.providers.hubspot import PROVIDER, signed_uri

from .support import WEBHOOK_URL, fixture_bytes, fixture_json, make_request

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
NOW = 1_700_000_000
NOW_MS = str(NOW * 1000)
BODY = fixture_bytes("hubspot/webhooks/sdk-signature-test.contact.creation.json")

ARABIC_INDIC_DIGITS = "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"
"""Digits to `str.isdigit`, not to a parser of unix timestamps."""


def sign(uri: str, body: bytes, timestamp: str, *, method: str = "POST", secret: str = SECRET) -> str:
    message = f"{method}{uri}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signed(
    signature: str,
    *,
    timestamp: str = NOW_MS,
    url: str = WEBHOOK_URL,
    body: bytes = BODY,
    method: str = "POST",
) -> WebhookRequest:
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}
    return make_request(headers, body, url=url, method=method)


def item(**fields: Any) -> dict[str, Any]:
    base = {
        "eventId": 1,
        "subscriptionId": 12345,
        "portalId": 62515,
        "occurredAt": 1564113600000,
        "subscriptionType": "contact.creation",
        "objectId": 123,
    }
    return base | fields


def batch(*items: Any) -> WebhookRequest:
    return make_request({}, json.dumps(list(items)).encode())


# --- verify -------------------------------------------------------------------------------------


def test_verify_accepts_a_valid_v3_signature() -> None:
    PROVIDER.verify(signed(sign(WEBHOOK_URL, BODY, NOW_MS)), [SECRET], {}, NOW)


def test_verify_rejects_a_v3_signature_of_another_body() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(sign(WEBHOOK_URL, BODY + b" ", NOW_MS)), [SECRET], {}, NOW)


def test_verify_rejects_a_v3_signature_of_another_url() -> None:
    signature = sign("https://api.example.com/webhooks/conn_other", BODY, NOW_MS)
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(signature), [SECRET], {}, NOW)


def test_verify_rejects_a_v3_signature_of_another_method() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(sign(WEBHOOK_URL, BODY, NOW_MS, method="PUT")), [SECRET], {}, NOW)


def test_verify_rejects_a_v3_signature_of_another_timestamp() -> None:
    signature = sign(WEBHOOK_URL, BODY, str(NOW * 1000 - 1))
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(signature), [SECRET], {}, NOW)


def test_verify_accepts_a_signature_over_the_url_with_reserved_characters_decoded() -> None:
    url = WEBHOOK_URL + "?return=https%3A%2F%2Fexample.com%2Fa%40b&x=%28y%29"
    signature = sign(WEBHOOK_URL + "?return=https://example.com/a@b&x=(y)", BODY, NOW_MS)
    PROVIDER.verify(signed(signature, url=url), [SECRET], {}, NOW)


def test_verify_accepts_a_signature_over_the_url_as_received() -> None:
    url = WEBHOOK_URL + "?return=https%3A%2F%2Fexample.com"
    PROVIDER.verify(signed(sign(url, BODY, NOW_MS), url=url), [SECRET], {}, NOW)


def test_verify_rejects_a_signature_over_a_url_with_other_characters_decoded() -> None:
    url = WEBHOOK_URL + "?q=a%20b%26c"
    signature = sign(WEBHOOK_URL + "?q=a b&c", BODY, NOW_MS)
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(signature, url=url), [SECRET], {}, NOW)


def test_signed_uri_decodes_only_the_reserved_characters_of_hubspots_table() -> None:
    assert signed_uri("https://h/p?a=%3a%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%26%25") == (
        "https://h/p?a=:/?@!$'()*,;&b=%20%26%25"
    )


def test_verify_accepts_a_signature_made_with_any_active_secret() -> None:
    signature = sign(WEBHOOK_URL, BODY, NOW_MS, secret="new")
    PROVIDER.verify(signed(signature), ["old", "new"], {}, NOW)


def test_verify_rejects_a_signature_made_with_no_active_secret() -> None:
    signature = sign(WEBHOOK_URL, BODY, NOW_MS, secret="retired")
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(signature), ["old", "new"], {}, NOW)


def test_verify_never_treats_an_empty_secret_as_a_key() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(sign(WEBHOOK_URL, BODY, NOW_MS, secret="")), [""], {}, NOW)


@pytest.mark.parametrize("skew_ms", [-300_000, 300_000])
def test_verify_accepts_a_timestamp_at_the_edge_of_the_tolerance(skew_ms: int) -> None:
    timestamp = str(NOW * 1000 + skew_ms)
    PROVIDER.verify(signed(sign(WEBHOOK_URL, BODY, timestamp), timestamp=timestamp), [SECRET], {}, NOW)


@pytest.mark.parametrize("skew_ms", [-300_001, 300_001])
def test_verify_rejects_a_timestamp_outside_the_tolerance_in_either_direction(skew_ms: int) -> None:
    timestamp = str(NOW * 1000 + skew_ms)
    with pytest.raises(SignatureInvalid) as caught:
        PROVIDER.verify(signed(sign(WEBHOOK_URL, BODY, timestamp), timestamp=timestamp), [SECRET], {}, NOW)
    assert caught.value.key == "stale_timestamp"


def test_verify_reads_a_timestamp_in_seconds_as_stale_milliseconds() -> None:
    timestamp = str(NOW)
    with pytest.raises(SignatureInvalid) as caught:
        PROVIDER.verify(signed(sign(WEBHOOK_URL, BODY, timestamp), timestamp=timestamp), [SECRET], {}, NOW)
    assert caught.value.key == "stale_timestamp"


def test_verify_rejects_a_delivery_signed_only_with_v1() -> None:
    legacy = hashlib.sha256(SECRET.encode() + BODY).hexdigest()
    request = make_request({"X-HubSpot-Signature": legacy, "X-HubSpot-Signature-Version": "v1"}, BODY)
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request, [SECRET], {}, NOW)


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("", NOW_MS),
        ("not base64!", NOW_MS),
        (base64.b64encode(b"\0" * 16).decode(), NOW_MS),
        ("é" * 44, NOW_MS),
        ("valid", ""),
        ("valid", "soon"),
        ("valid", "1.7e12"),
        ("valid", "-" + NOW_MS),
        ("valid", ARABIC_INDIC_DIGITS),
        ("valid", "9" * 40),
    ],
)
def test_verify_rejects_a_malformed_header_with_signature_invalid(signature: str, timestamp: str) -> None:
    if signature == "valid":
        signature = sign(WEBHOOK_URL, BODY, timestamp)
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(signed(signature, timestamp=timestamp), [SECRET], {}, NOW)


# --- normalize: HubSpot's published batches ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "hubspot/webhooks/docs-legacy-webhooks-api.batch-example.json",
            [
                ("25:3816279340:1462216307945", "contact.propertyChange", "contacts", "updated", "1246965"),
                ("22:3816279480:1462216307945", "contact.creation", "contacts", "created", "1246978"),
            ],
        ),
        (
            "hubspot/webhooks/docs-sensitive-data.contact.propertyChange.json",
            [
                (
                    "686627:3029365631:1715203101896",
                    "contact.propertyChange",
                    "contacts",
                    "updated",
                    "847297356",
                )
            ],
        ),
        (
            "hubspot/webhooks/sdk-signature-test.contact.creation.json",
            [("12345:1:1564113600000", "contact.creation", "contacts", "created", "123")],
        ),
    ],
)
def test_normalize_reads_a_published_batch(path: str, expected: list[tuple[str, ...]]) -> None:
    events = PROVIDER.normalize(make_request({}, fixture_bytes(path)), {})
    assert [(e.delivery_id, e.type, e.collection, e.action, e.record_id) for e in events] == expected


def test_normalize_keeps_each_batch_item_as_the_data_of_its_event() -> None:
    path = "hubspot/webhooks/docs-legacy-webhooks-api.batch-example.json"
    events = PROVIDER.normalize(make_request({}, fixture_bytes(path)), {})
    assert [event.data for event in events] == fixture_json(path)


def test_normalize_takes_occurred_at_from_occurred_at_milliseconds() -> None:
    [event] = PROVIDER.normalize(batch(item(occurredAt=1564113600123)), {})
    assert event.occurred_at == 1564113600.123


def test_normalize_gives_events_sharing_an_event_id_distinct_delivery_ids() -> None:
    events = PROVIDER.normalize(batch(item(subscriptionId=1), item(subscriptionId=2)), {})
    assert events[0].delivery_id != events[1].delivery_id


def test_normalize_gives_a_redelivered_event_the_same_delivery_id() -> None:
    [first] = PROVIDER.normalize(batch(item(attemptNumber=0)), {})
    [again] = PROVIDER.normalize(batch(item(attemptNumber=3)), {})
    assert first.delivery_id == again.delivery_id


@pytest.mark.parametrize(
    ("subscription_type", "expected"),
    [
        ("contact.creation", ("contacts", "created")),
        ("contact.propertyChange", ("contacts", "updated")),
        ("contact.deletion", ("contacts", "deleted")),
        ("contact.privacyDeletion", ("contacts", "deleted")),
        ("contact.restore", ("contacts", "created")),
        ("contact.merge", ("contacts", "updated")),
        ("company.creation", ("companies", "created")),
        ("company.deletion", ("companies", "deleted")),
        ("deal.propertyChange", ("deals", "updated")),
        ("deal.associationChange", ("deals", None)),
        ("ticket.creation", (None, None)),
        ("conversation.creation", (None, None)),
    ],
)
def test_normalize_maps_a_subscription_type(subscription_type: str, expected: tuple[str | None, ...]) -> None:
    [event] = PROVIDER.normalize(batch(item(subscriptionType=subscription_type)), {})
    assert (event.type, event.collection, event.action) == (subscription_type, *expected)


@pytest.mark.parametrize(
    ("object_type_id", "collection"),
    [("0-1", "contacts"), ("0-2", "companies"), ("0-3", "deals"), ("2-123", None)],
)
def test_normalize_maps_a_generic_object_event_by_its_type_id(
    object_type_id: str, collection: str | None
) -> None:
    [event] = PROVIDER.normalize(
        batch(item(subscriptionType="object.creation", objectTypeId=object_type_id)), {}
    )
    assert event.collection == collection


def test_normalize_leaves_the_record_unknown_without_an_object_id() -> None:
    without = item(subscriptionType="contact.associationChange")
    del without["objectId"]
    [event] = PROVIDER.normalize(batch(without), {})
    assert event.record_id is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{}",
        b"[]",
        b"[1]",
        json.dumps([item(), "x"]).encode(),
        json.dumps([item(subscriptionType=None)]).encode(),
        json.dumps([item(subscriptionType="")]).encode(),
        json.dumps([item(eventId="1")]).encode(),
        json.dumps([item(subscriptionId=True)]).encode(),
        json.dumps([item(occurredAt=1.5)]).encode(),
        json.dumps([item(occurredAt=-1)]).encode(),
        json.dumps([item(occurredAt=10**400)]).encode(),
        b"[" * 100_000,
    ],
)
def test_normalize_rejects_a_malformed_batch(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(make_request({}, body), {})


# --- connection-time checks --------------------------------------------------------------------


def test_validate_secret_accepts_a_client_secret() -> None:
    PROVIDER.validate_secret(SECRET)


@pytest.mark.parametrize("secret", ["", "\tsecret", "sécret"])
def test_validate_secret_rejects_an_unusable_secret(secret: str) -> None:
    with pytest.raises(ValidationFailed):
        PROVIDER.validate_secret(secret)
