"""Shopify (https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook):
`X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw body keyed with the app's client secret.
`X-Shopify-Webhook-Id` is what redeliveries share and `X-Shopify-Topic` (e.g. `orders/create`) names the
event. The body is the record in the REST Admin API's representation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import ListPage, NormalizedEvent, PullSource, WebhookRequest, parse_json_body

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
DELIVERY_HEADER = "X-Shopify-Webhook-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"

ACTION_BY_TOPIC: Mapping[str, Mapping[str, str]] = {
    "orders": {
        "create": "created",
        "updated": "updated",
        "edited": "updated",
        "paid": "updated",
        "cancelled": "updated",
        "fulfilled": "updated",
        "partially_fulfilled": "updated",
        "delete": "deleted",
    },
    "products": {"create": "created", "update": "updated", "delete": "deleted"},
    "customers": {
        "create": "created",
        "update": "updated",
        "enable": "updated",
        "disable": "updated",
        "delete": "deleted",
    },
}
"""collection -> topic verb -> action. Topics whose body is not the record (`customers/redact`,
`customers/data_request`, `shop/redact`, ...) have no collection."""


def _parse_signature_header(header: str) -> bytes:
    try:
        digest = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 is not base64", key="malformed_signature") from exc
    if len(digest) != hashlib.sha256().digest_size:
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 is not a SHA-256 digest", key="malformed_signature")
    return digest


def _hmac_keys(secrets: Sequence[str]) -> Iterator[bytes]:
    # An empty key would let anyone sign, so it never counts as a secret.
    for secret in secrets:
        if secret:
            try:
                yield secret.encode()
            except UnicodeEncodeError:
                continue


class Shopify:
    name: ClassVar[str] = "shopify"
    collections: ClassVar[frozenset[str]] = frozenset(ACTION_BY_TOPIC)
    webhook_matches_list_representation: ClassVar[bool] = True

    def validate_secret(self, secret: str) -> None:
        if not secret or secret != secret.strip() or not secret.isascii():
            raise ValidationFailed(
                "a Shopify webhook secret (the app's client secret) is a non-empty ASCII string",
                key="invalid_webhook_secret",
                data={"fields": ["webhook_secrets"]},
            )

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return dict(settings)

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        candidate = _parse_signature_header(request.require_header(SIGNATURE_HEADER))
        for key in _hmac_keys(secrets):
            if hmac.compare_digest(hmac.new(key, request.body, hashlib.sha256).digest(), candidate):
                return
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 matches no active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        topic = _required_header(request, TOPIC_HEADER)
        delivery_id = _required_header(request, DELIVERY_HEADER)
        try:
            payload = parse_json_body(request.body)
        except RecursionError as exc:  # json raises it for deeply nested input; base does not catch it yet
            raise MalformedPayload("the body is nested too deeply", key="malformed_json") from exc
        if not isinstance(payload, dict):
            raise MalformedPayload("a Shopify webhook body is a JSON object", key="malformed_payload")
        resource, _, verb = topic.partition("/")
        action = ACTION_BY_TOPIC.get(resource, {}).get(verb)
        occurred_at = _parse_iso(request.header(TRIGGERED_AT_HEADER))
        if occurred_at is None:
            occurred_at = _parse_iso(payload.get("updated_at"))
        return [
            NormalizedEvent(
                delivery_id=delivery_id,
                type=topic,
                collection=resource if action else None,
                action=action,
                record_id=_record_id(payload.get("id")),
                occurred_at=occurred_at,
                data=payload,
            )
        ]

    def list_pages(
        self, http: httpx.Client, source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        raise NotImplementedError("Shopify full scans are not implemented yet")


def _required_header(request: WebhookRequest, name: str) -> str:
    value = request.header(name)
    if not value:
        raise MalformedPayload(f"a Shopify delivery carries a {name} header", key="missing_header")
    return value


def _record_id(value: object) -> str | None:
    """REST ids are integers; stringified they match the list API's ids (`"450789469"`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _parse_iso(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        return None


PROVIDER = Shopify()
