"""Every provider through the ingest Lambda: real published payloads, signed per each provider's scheme,
land as events; and a fuzz of the handler never answers 5xx nor stores anything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pullbridge.settings import ApiSettings
from tests.integration.conftest import scan_events_table
from tests.paths import FIXTURES_DIR
from tests.support import api_event, json_body, lambda_context, sample_event

DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
PLAIN_SECRET = "a-provider-webhook-secret-0123456789"


def _hex(secret: str, message: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode(), message, algorithm).hexdigest()


def _b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _stripe(body: bytes, connection_id: str) -> dict[str, str]:
    stamp = int(time.time())
    return {"Stripe-Signature": f"t={stamp},v1={_hex(PLAIN_SECRET, f'{stamp}.'.encode() + body)}"}


def _github(event: str) -> Callable[[bytes, str], dict[str, str]]:
    def sign(body: bytes, connection_id: str) -> dict[str, str]:
        return {
            "X-Hub-Signature-256": "sha256=" + _hex(PLAIN_SECRET, body),
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
        }

    return sign


def _shopify(topic: str) -> Callable[[bytes, str], dict[str, str]]:
    def sign(body: bytes, connection_id: str) -> dict[str, str]:
        return {
            "X-Shopify-Hmac-Sha256": _b64(PLAIN_SECRET, body),
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        }

    return sign


def _hubspot(body: bytes, connection_id: str) -> dict[str, str]:
    stamp = str(int(time.time() * 1000))
    uri = f"https://{DOMAIN}/webhooks/{connection_id}"
    return {
        "X-HubSpot-Signature-v3": _b64(PLAIN_SECRET, b"POST" + uri.encode() + body + stamp.encode()),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def _generic(body: bytes, connection_id: str) -> dict[str, str]:
    return {"X-Signature": "sha256=" + _hex(PLAIN_SECRET, body)}


GENERIC_SETTINGS = {
    "signature_header": "X-Signature",
    "prefix": "sha256=",
    "delivery_id_path": "id",
    "type_path": "type",
    "record_id_path": "data.object.id",
}


@dataclass(frozen=True)
class Case:
    provider: str
    fixture: str
    sign: Callable[[bytes, str], dict[str, str]]
    expected: list[dict[str, Any]]
    settings: dict[str, Any] | None = None


CASES = [
    Case(
        "stripe",
        "stripe/webhook_events/customer_updated.json",
        _stripe,
        [{"type": "customer.updated", "collection": "customers", "action": "updated"}],
    ),
    Case(
        "github",
        "github/issues/opened.payload.json",
        _github("issues"),
        [{"type": "issues.opened", "collection": "issues", "action": "created"}],
    ),
    Case("github", "github/ping/payload.json", _github("ping"), [{"type": "ping", "collection": None}]),
    Case(
        "shopify",
        "shopify/webhooks/customers_redact.json",
        _shopify("customers/redact"),
        [{"type": "customers/redact"}],
    ),
    Case(
        "hubspot",
        "hubspot/webhooks/docs-legacy-webhooks-api.batch-example.json",
        _hubspot,
        [{"collection": "contacts"}, {"collection": "contacts"}],
    ),
    Case(
        "generic",
        "stripe/webhook_events/customer_updated.json",
        _generic,
        [{"type": "customer.updated"}],
        GENERIC_SETTINGS,
    ),
]


def _create(api: ModuleType, api_key: str, provider: str, connection_settings: dict[str, Any] | None) -> str:
    body = {
        "provider": provider,
        "name": provider,
        "webhook_secrets": [PLAIN_SECRET],
        "settings": connection_settings or {},
    }
    response = api.lambda_handler(api_event("create_connection.json", api_key, body=body), lambda_context())
    assert response["statusCode"] == 201, response["body"]
    return str(json_body(response)["id"])


def _webhook(connection_id: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    event = sample_event("webhook_standard.json")
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        event["headers"].pop(name)
    event["headers"].update({name.lower(): value for name, value in headers.items()})
    event["pathParameters"] = {"connection_id": connection_id}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/webhooks/{connection_id}"
    try:
        event["body"] = body.decode()
    except UnicodeDecodeError:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


@pytest.mark.parametrize("case", CASES, ids=[f"{c.provider}-{c.fixture.rsplit('/', 2)[-2]}" for c in CASES])
def test_a_real_payload_is_verified_normalized_and_served(
    api: ModuleType, ingest: ModuleType, api_key: str, case: Case
) -> None:
    connection_id = _create(api, api_key, case.provider, case.settings)
    body = (FIXTURES_DIR / case.fixture).read_bytes()
    response = ingest.lambda_handler(
        _webhook(connection_id, body, case.sign(body, connection_id)), lambda_context()
    )
    assert response["statusCode"] == 200, response["body"]
    assert len(json_body(response)["event_ids"]) == len(case.expected)
    listed = json_body(api.lambda_handler(api_event("list_events.json", api_key), lambda_context()))["data"]
    assert len(listed) == len(case.expected)
    for event, expected in zip(listed, case.expected, strict=True):
        assert {name: event[name] for name in expected} == expected
        assert (event["provider"], event["source"], event["connection_id"]) == (
            case.provider,
            "webhook",
            connection_id,
        )
    # And the same bytes signed with another secret are refused
    forged = ingest.lambda_handler(
        _webhook(
            connection_id,
            body,
            {k: v.replace(v[-6:], "AAAAAA") for k, v in case.sign(body, connection_id).items()},
        ),
        lambda_context(),
    )
    assert forged["statusCode"] == 401


HEADER_NAMES = [
    "stripe-signature",
    "x-hub-signature-256",
    "x-github-event",
    "x-github-delivery",
    "x-shopify-hmac-sha256",
    "x-shopify-topic",
    "x-shopify-webhook-id",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
]
FUZZ = hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
header_values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


@pytest.mark.parametrize("provider", ["stripe", "github", "shopify", "hubspot", "standard", "generic"])
def test_fuzzed_deliveries_never_get_5xx_and_store_nothing(
    api: ModuleType, ingest: ModuleType, api_key: str, settings: ApiSettings, provider: str
) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" if provider == "standard" else PLAIN_SECRET
    body = {"provider": provider, "name": "fuzz", "webhook_secrets": [secret]}
    if provider == "generic":
        body["settings"] = GENERIC_SETTINGS
    response = api.lambda_handler(api_event("create_connection.json", api_key, body=body), lambda_context())
    connection_id = json_body(response)["id"]
    client = ingest.store._client

    @FUZZ
    @given(
        body=st.binary(max_size=512),
        headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=6),
    )
    def deliver(body: bytes, headers: dict[str, str]) -> None:
        answer = ingest.lambda_handler(_webhook(connection_id, body, headers), lambda_context())
        assert answer["statusCode"] in (400, 401), answer["body"]
        assert set(json_body(answer)["error"]) == {"type", "message", "key", "data"}

    deliver()
    assert scan_events_table(client, settings.events_table) == []
