"""Whatever arrives, `verify` and `normalize` answer with the product's errors and nothing else."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pullbridge.errors import MalformedPayload, SignatureInvalid
from pullbridge.providers import get_provider
from pullbridge.providers.base import WebhookRequest

from .support import fixture_bytes

PROVIDERS = ["stripe", "github", "shopify", "hubspot", "generic", "standard"]
NOW = 1_700_000_000

KNOWN_HEADERS = [
    "stripe-signature",
    "x-hub-signature-256",
    "x-github-event",
    "x-github-delivery",
    "content-type",
    "x-shopify-hmac-sha256",
    "x-shopify-topic",
    "x-shopify-webhook-id",
    "x-shopify-triggered-at",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-signature",
    "x-timestamp",
    "x-delivery",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
]

GENERIC_SETTINGS: list[dict[str, Any]] = [
    {
        "signature_header": "X-Signature",
        "delivery_id_path": "$.id",
        "type_path": "type",
        "record_id_path": "a.0.b",
    },
    {
        "signature_header": "X-Signature",
        "encoding": "base64",
        "algorithm": "sha512",
        "prefix": "v1=",
        "timestamp_header": "X-Timestamp",
        "timestamp_unit": "milliseconds",
        "delivery_id_header": "X-Delivery",
        "signed_content": "{method}{url}{delivery_id}{timestamp}{body}",
        "occurred_at_path": "at",
        "collection": "things",
    },
]

text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=80)
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(NOW - 400, NOW + 400),
    st.integers(NOW - 400, NOW + 400).map(lambda seconds: seconds * 1000),
).map(str)
digests = st.binary(max_size=70) | st.sampled_from([20, 32, 64]).flatmap(
    lambda size: st.binary(min_size=size, max_size=size)
)
hexes = digests.map(bytes.hex)
structured_values = st.one_of(
    numbers,
    hexes,
    st.builds(lambda t, s: f"t={t},v1={s}", numbers, hexes | text),
    st.builds(lambda s: f"sha256={s}", hexes | text),
    digests.map(lambda raw: base64.b64encode(raw).decode()),
    st.builds(lambda s: f"v1={s}", hexes),
    st.builds(lambda s: f"v1,{s}", text),
    st.sampled_from(["orders/create", "issues", "pull_request", "ping", "application/x-www-form-urlencoded"]),
)
headers = st.one_of(
    st.dictionaries(st.sampled_from(KNOWN_HEADERS) | text, structured_values | text, max_size=12),
    # Every header a provider reads present at once, so normalize gets past its header checks.
    st.fixed_dictionaries({name: structured_values | text for name in KNOWN_HEADERS}),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(text | st.sampled_from(["id", "type"]), children, max_size=4)
    ),
    max_leaves=20,
)
PUBLISHED_BODIES = [
    fixture_bytes(path)
    for path in (
        "stripe/webhook_events/customer_updated.json",
        "github/issues/opened.payload.json",
        "shopify/webhooks/customers_redact.json",
        "hubspot/webhooks/docs-legacy-webhooks-api.batch-example.json",
    )
]
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(PUBLISHED_BODIES),
    st.sampled_from(PUBLISHED_BODIES).flatmap(
        lambda body: st.integers(0, len(body)).map(lambda cut: body[:cut])
    ),
)
requests = st.builds(
    WebhookRequest,
    method=st.sampled_from(["POST", "GET"]) | text,
    url=st.just("https://api.example.com/webhooks/conn_1") | text,
    headers=headers,
    body=bodies,
)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _hmac(body: bytes, *, encoding: str = "hex", key: bytes = SECRET.encode()) -> str:
    digest = hmac.new(key, body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def _valid_request(name: str) -> WebhookRequest:
    """A delivery each provider accepts, for the fuzzer to mutate from."""
    url = "https://api.example.com/webhooks/conn_1"
    headers: dict[str, str]
    if name == "stripe":
        body = PUBLISHED_BODIES[0]
        headers = {"stripe-signature": f"t={NOW},v1={_hmac(f'{NOW}.'.encode() + body)}"}
    elif name == "github":
        body = PUBLISHED_BODIES[1]
        headers = {
            "x-hub-signature-256": "sha256=" + _hmac(body),
            "x-github-event": "issues",
            "x-github-delivery": "d",
        }
    elif name == "shopify":
        body = PUBLISHED_BODIES[2]
        headers = {
            "x-shopify-hmac-sha256": _hmac(body, encoding="base64"),
            "x-shopify-topic": "customers/update",
            "x-shopify-webhook-id": "w",
        }
    elif name == "hubspot":
        body = PUBLISHED_BODIES[3]
        stamp = str(NOW * 1000)
        signature = _hmac(f"POST{url}".encode() + body + stamp.encode(), encoding="base64")
        headers = {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": stamp}
    elif name == "generic":
        body = b'{"id": "d", "type": "thing.created", "a": [{"b": 1}]}'
        headers = {"x-signature": _hmac(body)}
    else:
        body = b'{"type": "contact.created", "timestamp": "2022-11-03T20:26:10.344522Z", "data": {"id": "c"}}'
        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        signature = "v1," + _hmac(f"msg_1.{NOW}.".encode() + body, encoding="base64", key=key)
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    return WebhookRequest(method="POST", url=url, headers=headers, body=body)


def mutated_requests(name: str) -> st.SearchStrategy[WebhookRequest]:
    """The valid delivery with some headers replaced and maybe another body: reaches the code past parsing."""
    valid = _valid_request(name)
    overrides = st.dictionaries(st.sampled_from(sorted(valid.headers)), structured_values | text, max_size=2)
    body = st.none() | bodies
    return st.builds(
        lambda changed, new_body: WebhookRequest(
            method=valid.method,
            url=valid.url,
            headers={**valid.headers, **changed},
            body=valid.body if new_body is None else new_body,
        ),
        overrides,
        body,
    )


provider_settings = st.sampled_from(GENERIC_SETTINGS) | st.dictionaries(text, json_values, max_size=3)
secrets = st.lists(st.just(SECRET) | text, max_size=3)
fuzz = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_each_mutation_base_is_accepted() -> None:
    # The mutated deliveries start from ones that verify, or the fuzzer would never pass the signature check.
    for name in PROVIDERS:
        config = GENERIC_SETTINGS[0] if name == "generic" else {}
        get_provider(name).verify(_valid_request(name), [SECRET], config, NOW)
        assert get_provider(name).normalize(_valid_request(name), config)


def test_a_mutated_body_is_rejected() -> None:
    for name in PROVIDERS:
        config = GENERIC_SETTINGS[0] if name == "generic" else {}
        valid = _valid_request(name)
        tampered = WebhookRequest(
            method=valid.method, url=valid.url, headers=valid.headers, body=valid.body + b" "
        )
        with pytest.raises(SignatureInvalid):
            get_provider(name).verify(tampered, [SECRET], config, NOW)


@pytest.mark.parametrize("name", PROVIDERS)
@fuzz
@given(data=st.data(), secrets=secrets, config=provider_settings, now=st.just(NOW) | st.integers(0, 2 * NOW))
def test_verify_raises_only_signature_invalid(
    name: str, data: st.DataObject, secrets: list[str], config: dict[str, Any], now: int
) -> None:
    request = data.draw(requests | mutated_requests(name))
    if name == "generic" and data.draw(st.booleans()):
        config = GENERIC_SETTINGS[0]
    with contextlib.suppress(SignatureInvalid):
        get_provider(name).verify(request, secrets, config, now)


@pytest.mark.parametrize("name", PROVIDERS)
@fuzz
@given(data=st.data(), config=provider_settings)
def test_normalize_raises_only_malformed_payload_or_signature_invalid(
    name: str, data: st.DataObject, config: dict[str, Any]
) -> None:
    request = data.draw(requests | mutated_requests(name))
    with contextlib.suppress(MalformedPayload, SignatureInvalid):
        get_provider(name).normalize(request, config)
