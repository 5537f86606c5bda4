"""Standard Webhooks v1 (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
`webhook-signature` headers; HMAC-SHA256 over `{id}.{timestamp}.{body}` with a `whsec_` base64 key;
several space-separated `v1,<base64>` signatures, any of which may match; other versions are ignored.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import (
    ListPage,
    NormalizedEvent,
    ProviderHttp,
    PullSource,
    ResponseT,
    SettingRule,
    WebhookRequest,
    WriteRequest,
    WrittenRecord,
    action_from_type,
    check_rate_limit,
    check_settings,
    parse_iso_time,
    parse_json_body,
)
from pullbridge.providers.signing import (
    decode_digest,
    hmac_matches,
    hmac_signature,
    parse_unix_time,
    require_fresh,
)

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
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + hmac_signature(decode_secret(secret), signed, encoding="base64")


def _candidate_signatures(header: str) -> list[bytes]:
    candidates = []
    for entry in header.split(" "):
        version, _, encoded = entry.partition(",")
        if version == "v1" and (digest := decode_digest(encoded, "base64")) is not None:
            candidates.append(digest)
    return candidates


def _keys(secrets: Sequence[str]) -> Iterator[bytes]:
    """The keys of the `whsec_` secrets; a secret that is not one (stored before the rule) matches nothing."""
    for secret in secrets:
        try:
            yield decode_secret(secret)
        except ValueError:
            continue


class StandardWebhooks:
    name: ClassVar[str] = "standard"
    collections: ClassVar[frozenset[str]] = frozenset()
    webhook_matches_list_representation: ClassVar[bool] = False
    webhook_carries_records: ClassVar[bool] = False
    max_page_size: ClassVar[int] = 0
    default_base_url: ClassVar[str | None] = None
    request_id_header: ClassVar[str | None] = None
    updates_lookback_seconds: ClassVar[float | None] = None
    write_idempotency_keys: ClassVar[bool] = False

    def record_version(self, data: Any) -> float | None:
        return None

    def validate_secret(self, secret: str) -> None:
        try:
            decode_secret(secret)
        except ValueError as exc:
            raise ValidationFailed(str(exc), key="invalid_webhook_secret") from exc

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return check_settings(self.name, settings, SETTING_RULES)

    def pullable_collections(self, settings: Mapping[str, Any]) -> frozenset[str]:
        return self.collections

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        message_id = request.require_header("webhook-id")
        timestamp = parse_unix_time(request.require_header("webhook-timestamp"), "webhook-timestamp")
        header = request.require_header("webhook-signature")
        require_fresh(timestamp, now, "webhook-timestamp")
        candidates = _candidate_signatures(header)
        if not candidates:
            raise SignatureInvalid("webhook-signature holds no v1 signature", key="malformed_signature")
        signed = f"{message_id}.{timestamp}.".encode() + request.body
        if not hmac_matches(_keys(secrets), [signed], candidates):
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

    def list_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        raise NotImplementedError("Standard Webhooks senders have no list API")

    def supports_updates(self, settings: Mapping[str, Any]) -> bool:
        return False  # no list API, so nothing to ask what changed

    def updated_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        raise NotImplementedError("Standard Webhooks senders have no list API")

    def writable_collections(self, settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
        return {}  # a sender of webhooks and nothing else: there is no API to write to

    def write(
        self, http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest
    ) -> WrittenRecord:
        raise NotImplementedError("Standard Webhooks senders have no API to write to")

    def read_record(self, http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
        raise NotImplementedError("Standard Webhooks senders have no API to read from")

    def error_message(self, body: Any) -> str | None:
        return None


PROVIDER = StandardWebhooks()
