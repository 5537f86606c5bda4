"""Standard Webhooks v1 (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
`webhook-signature` headers; HMAC-SHA256 over `{id}.{timestamp}.{body}` with a `whsec_` base64 key;
several space-separated `v1,<base64>` signatures, any of which may match; other versions are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import (
    TIMESTAMP_TOLERANCE_SECONDS,
    ListPage,
    NormalizedEvent,
    PullSource,
    SettingRule,
    WebhookRequest,
    action_from_type,
    check_rate_limit,
    check_settings,
    parse_iso_time,
    parse_json_body,
)

if TYPE_CHECKING:
    from pullbridge.pulls.http import PullHttp

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a secret

SETTING_RULES: Mapping[str, SettingRule] = {"rate_limit": check_rate_limit}
"""The scheme is fixed, so there is nothing to configure; `rate_limit` is every provider's setting."""


def decode_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_` secret. Raises ValueError for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from exc
    if len(key) < 16:
        raise ValueError("a Standard Webhooks secret must hold at least 16 bytes of key")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for a delivery: used by tests, the dev stack's example and clients."""
    digest = hmac.new(decode_secret(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode()


def _parse_timestamp(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise SignatureInvalid("webhook-timestamp is not a unix timestamp", key="malformed_signature")
    return int(value)


def _candidate_signatures(header: str) -> list[bytes]:
    candidates = []
    for entry in header.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            candidates.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return candidates


class StandardWebhooks:
    name: ClassVar[str] = "standard"
    collections: ClassVar[frozenset[str]] = frozenset()
    webhook_matches_list_representation: ClassVar[bool] = False
    max_page_size: ClassVar[int] = 0
    default_base_url: ClassVar[str | None] = None

    def validate_secret(self, secret: str) -> None:
        try:
            decode_secret(secret)
        except ValueError as exc:
            raise ValidationFailed(str(exc), key="invalid_webhook_secret") from exc

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return check_settings(self.name, settings, SETTING_RULES)

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        message_id = request.require_header("webhook-id")
        timestamp = _parse_timestamp(request.require_header("webhook-timestamp"))
        header = request.require_header("webhook-signature")
        if abs(now - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
            raise SignatureInvalid("webhook-timestamp is outside the 300 s tolerance", key="stale_timestamp")
        candidates = _candidate_signatures(header)
        if not candidates:
            raise SignatureInvalid("webhook-signature holds no v1 signature", key="malformed_signature")
        signed = f"{message_id}.{timestamp}.".encode() + request.body
        for secret in secrets:
            try:
                key = decode_secret(secret)
            except ValueError:
                continue
            expected = hmac.new(key, signed, hashlib.sha256).digest()
            # Every candidate is compared, so timing does not reveal which one matched.
            if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
                return
        raise SignatureInvalid("no webhook-signature matches an active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        payload = parse_json_body(request.body)
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str) or not payload["type"]:
            raise MalformedPayload(
                "a Standard Webhooks payload is an object with a string 'type'", key="malformed_payload"
            )
        data = payload.get("data")
        record_id = data.get("id") if isinstance(data, dict) else None
        return [
            NormalizedEvent(
                delivery_id=request.require_header("webhook-id"),
                type=payload["type"],
                action=action_from_type(payload["type"]),
                record_id=str(record_id) if isinstance(record_id, str | int) else None,
                occurred_at=parse_iso_time(payload.get("timestamp")),
                data=data,
            )
        ]

    def list_pages(self, http: PullHttp, source: PullSource, checkpoint: str | None) -> Iterator[ListPage]:
        raise NotImplementedError("Standard Webhooks senders have no list API")


PROVIDER = StandardWebhooks()
