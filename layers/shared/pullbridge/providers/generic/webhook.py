"""A generic connection's webhooks: the HMAC scheme its `settings` configure, and the event read from them.

The signature header holds `prefix + encode(HMAC(secret, signed_content))`. `signed_content` is a template
over the raw request: `{body}` alone by default, `{timestamp}.{body}` by default when a timestamp header is
configured. A configured timestamp is always checked against a tolerance of at most 300 s, and the template
must sign it, so a replayed body cannot be given a fresh timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import NormalizedEvent, WebhookRequest, action_from_type, parse_json_body
from pullbridge.providers.generic.paths import id_string, resolve, time_seconds
from pullbridge.providers.generic.settings import (
    DEFAULT_TYPE,
    PLACEHOLDER_PATTERN,
    GenericSettings,
    parse_settings,
)
from pullbridge.providers.signing import (
    MILLISECONDS_DIGITS,
    hmac_keys,
    hmac_matches,
    parse_unix_time,
    read_digest,
    require_fresh,
)


def verify(request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float) -> None:
    config = _usable_settings(settings)
    candidate = read_digest(
        request.require_header(config.signature_header),
        config.signature_header,
        encoding=config.encoding,
        prefix=config.prefix,
        algorithm=config.algorithm,
    )
    message = _signed_content(config.template, _signed_values(request, config, now), request.body)
    if not hmac_matches(hmac_keys(secrets), [message], [candidate], algorithm=config.algorithm):
        raise SignatureInvalid(f"{config.signature_header} matches no active secret")


def normalize(request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
    config = _usable_settings(settings)
    payload = parse_json_body(request.body)
    delivery_id = _delivery_id(request, payload, config)
    event_type = _event_type(payload, config)
    return [
        NormalizedEvent(
            delivery_id=delivery_id,
            type=event_type,
            collection=config.collection,
            action=action_from_type(event_type),
            record_id=id_string(resolve(payload, config.record_id_path)),
            occurred_at=time_seconds(resolve(payload, config.occurred_at_path)),
            data=payload,
        )
    ]


def _usable_settings(settings: Mapping[str, Any]) -> GenericSettings:
    # Settings are validated when the connection is written; failing here means no delivery can be
    # authenticated until they are fixed, so the sender is told to retry (401), not that it erred (400).
    try:
        return parse_settings(settings)
    except ValidationFailed as exc:
        raise SignatureInvalid(
            "the connection's generic settings are invalid", key="invalid_connection_settings"
        ) from exc


def _signed_values(request: WebhookRequest, config: GenericSettings, now: float) -> dict[str, str]:
    """What the template's placeholders other than `{body}` stand for in this request."""
    values = {"method": request.method.upper(), "url": request.url}
    if config.timestamp_header is not None:
        values["timestamp"] = _fresh_timestamp(request, config.timestamp_header, config, now)
    if config.delivery_id_header is not None and "{delivery_id}" in config.template:
        values["delivery_id"] = request.require_header(config.delivery_id_header)
    return values


def _fresh_timestamp(request: WebhookRequest, header: str, config: GenericSettings, now: float) -> str:
    """The timestamp header as sent (it is signed as it is), once it is within the tolerance."""
    raw = request.require_header(header).strip()
    timestamp = parse_unix_time(raw, header, max_digits=MILLISECONDS_DIGITS)
    seconds = timestamp / 1000 if config.timestamp_unit == "milliseconds" else float(timestamp)
    require_fresh(seconds, now, header, tolerance=config.tolerance_seconds)
    return raw


def _signed_content(template: str, values: Mapping[str, str], body: bytes) -> bytes:
    parts: list[bytes] = []
    try:
        for part in PLACEHOLDER_PATTERN.split(template):
            if PLACEHOLDER_PATTERN.fullmatch(part):
                name = part[1:-1]
                parts.append(body if name == "body" else values[name].encode())
            else:
                parts.append(part.encode())
    except UnicodeEncodeError as exc:
        raise SignatureInvalid(
            "a signed header cannot be encoded as UTF-8", key="malformed_signature"
        ) from exc
    return b"".join(parts)


def _delivery_id(request: WebhookRequest, payload: Any, config: GenericSettings) -> str:
    if config.delivery_id_header is not None:
        delivery_id = request.header(config.delivery_id_header)
        if not delivery_id:
            raise MalformedPayload(
                f"the delivery carries no {config.delivery_id_header} header", key="missing_header"
            )
        return delivery_id
    found = id_string(resolve(payload, config.delivery_id_path))
    if found is None:
        raise MalformedPayload(
            f"the payload has no id at delivery_id_path {config.delivery_id_path}", key="malformed_payload"
        )
    return found


def _event_type(payload: Any, config: GenericSettings) -> str:
    if config.type_path is None:
        return DEFAULT_TYPE
    found = resolve(payload, config.type_path)
    if not isinstance(found, str) or not found:
        raise MalformedPayload(
            f"the payload has no string at type_path {config.type_path}", key="malformed_payload"
        )
    return found
