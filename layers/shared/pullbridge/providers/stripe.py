"""Stripe (https://docs.stripe.com/webhooks#verify-manually): `Stripe-Signature: t=<unix>,v1=<hex>[,v1=..]`,
the hex HMAC-SHA256 of `"{t}.{body}"` keyed with the `whsec_...` secret used as is. Any `v1` entry may
match; `v0` and unknown schemes are ignored. The event body's `id` is what redeliveries share.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import (
    TIMESTAMP_TOLERANCE_SECONDS,
    ListPage,
    NormalizedEvent,
    PullSource,
    WebhookRequest,
    action_from_type,
    parse_json_body,
)

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "Stripe-Signature"

COLLECTION_BY_OBJECT_TYPE: Mapping[str, str] = {
    "customer": "customers",
    "invoice": "invoices",
    "subscription": "subscriptions",
    "charge": "charges",
    "product": "products",
    "price": "prices",
    "payment_intent": "payment_intents",
}
"""`data.object.object` -> collection. The object type, not the event type's prefix, names the record:
`customer.subscription.updated` carries a subscription."""


def _parse_signature_header(header: str) -> tuple[int, list[bytes]]:
    """The timestamp and every well-formed `v1` digest. Anything unparseable is `SignatureInvalid`."""
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for entry in header.split(","):
        scheme, separator, value = entry.strip().partition("=")
        if not separator:
            raise SignatureInvalid(
                "Stripe-Signature is not a list of key=value pairs", key="malformed_signature"
            )
        if scheme == "t":
            timestamps.append(value)
        elif scheme == "v1" and value.isascii() and len(value) == 2 * hashlib.sha256().digest_size:
            try:
                candidates.append(bytes.fromhex(value))
            except ValueError:
                continue
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise SignatureInvalid("Stripe-Signature needs exactly one numeric t=", key="malformed_signature")
    if len(timestamps[0]) > 12:
        raise SignatureInvalid("Stripe-Signature t= is not a unix timestamp", key="malformed_signature")
    if not candidates:
        raise SignatureInvalid("Stripe-Signature holds no v1 signature", key="malformed_signature")
    return int(timestamps[0]), candidates


def _hmac_keys(secrets: Sequence[str]) -> Iterator[bytes]:
    # An empty key would let anyone sign, so it never counts as a secret.
    for secret in secrets:
        if secret:
            try:
                yield secret.encode()
            except UnicodeEncodeError:
                continue


class Stripe:
    name: ClassVar[str] = "stripe"
    collections: ClassVar[frozenset[str]] = frozenset(COLLECTION_BY_OBJECT_TYPE.values())
    webhook_matches_list_representation: ClassVar[bool] = True

    def validate_secret(self, secret: str) -> None:
        if not secret or secret != secret.strip() or not secret.isascii():
            raise ValidationFailed(
                "a Stripe webhook signing secret is a non-empty ASCII string (whsec_...)",
                key="invalid_webhook_secret",
                data={"fields": ["webhook_secrets"]},
            )

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return dict(settings)

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        timestamp, candidates = _parse_signature_header(request.require_header(SIGNATURE_HEADER))
        if abs(now - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
            raise SignatureInvalid(
                "Stripe-Signature t= is outside the 300 s tolerance", key="stale_timestamp"
            )
        signed = f"{timestamp}.".encode() + request.body
        for key in _hmac_keys(secrets):
            expected = hmac.new(key, signed, hashlib.sha256).digest()
            # Every candidate is compared, so timing does not reveal which one matched.
            if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
                return
        raise SignatureInvalid("no Stripe-Signature v1 matches an active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        event = _parse_json(request.body)
        if not isinstance(event, dict):
            raise MalformedPayload("a Stripe event is a JSON object", key="malformed_payload")
        event_id, event_type = event.get("id"), event.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
            raise MalformedPayload("a Stripe event has a string 'id' and 'type'", key="malformed_payload")
        envelope = event.get("data", {})
        if not isinstance(envelope, dict):
            raise MalformedPayload("a Stripe event's 'data' is an object", key="malformed_payload")
        record = envelope.get("object")
        if record is not None and not isinstance(record, dict):
            raise MalformedPayload("a Stripe event's 'data.object' is an object", key="malformed_payload")
        record_id = record.get("id") if record else None
        object_type = record.get("object") if record else None
        collection = COLLECTION_BY_OBJECT_TYPE.get(object_type) if isinstance(object_type, str) else None
        return [
            NormalizedEvent(
                delivery_id=event_id,
                type=event_type,
                collection=collection,
                # `invoice.paid` and the like name no action; only known collections get one.
                action=action_from_type(event_type) if collection else None,
                record_id=record_id if isinstance(record_id, str) and record_id else None,
                occurred_at=_epoch_seconds(event.get("created")),
                data=record,
            )
        ]

    def list_pages(
        self, http: httpx.Client, source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        raise NotImplementedError("Stripe full scans are not implemented yet")


def _parse_json(body: bytes) -> Any:
    try:
        return parse_json_body(body)
    except RecursionError as exc:  # json raises it for deeply nested input; base does not catch it yet
        raise MalformedPayload("the body is nested too deeply", key="malformed_json") from exc


def _epoch_seconds(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


PROVIDER = Stripe()
