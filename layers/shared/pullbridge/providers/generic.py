"""A generic signed source: an HMAC scheme configured per connection in `settings` (see `GenericSettings`).

The signature header holds `prefix + encode(HMAC(secret, signed_content))`. `signed_content` is a template
over the raw request: `{body}` alone by default, `{timestamp}.{body}` by default when a timestamp header is
configured. A configured timestamp is always checked against a tolerance of at most 300 s, and the template
must sign it, so a replayed body cannot be given a fresh timestamp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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

DEFAULT_TYPE = "webhook"
"""The event type when no `type_path` is configured."""

PLACEHOLDERS = frozenset({"body", "timestamp", "method", "url", "delivery_id"})
_PLACEHOLDER = re.compile(r"(\{[a-z_]+\})")

HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$", max_length=128)]
"""An HTTP header name (an RFC 9110 token)."""

JsonPath = Annotated[str, Field(pattern=r"^(\$\.)?[^.\s]+(\.[^.\s]+)*$", max_length=256)]
"""Dotted keys into the JSON body, optionally after `$.`: `id`, `$.id`, `meta.delivery`, `items.0.id`."""


class GenericSettings(BaseModel):
    """The webhook half of a generic connection's `settings`. Keys it does not know are kept as they are
    (e.g. `rate_limit`, the pull configuration)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    signature_header: HeaderName
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: Annotated[str, Field(max_length=64)] = ""
    timestamp_header: HeaderName | None = None
    timestamp_unit: Literal["seconds", "milliseconds"] = "seconds"
    tolerance_seconds: Annotated[int, Field(strict=True, ge=1, le=TIMESTAMP_TOLERANCE_SECONDS)] = (
        TIMESTAMP_TOLERANCE_SECONDS
    )
    signed_content: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    delivery_id_header: HeaderName | None = None
    delivery_id_path: JsonPath | None = None
    type_path: JsonPath | None = None
    record_id_path: JsonPath | None = None
    occurred_at_path: JsonPath | None = None
    collection: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)] | None = None

    @field_validator("tolerance_seconds", mode="before")
    @classmethod
    def _null_tolerance_is_the_default(cls, value: object) -> object:
        # `null` must never read as "no tolerance": it means the default.
        return TIMESTAMP_TOLERANCE_SECONDS if value is None else value

    @model_validator(mode="after")
    def _check_consistency(self) -> GenericSettings:
        if (self.delivery_id_header is None) == (self.delivery_id_path is None):
            raise ValueError("set exactly one of delivery_id_header and delivery_id_path")
        names = _template_placeholders(self.template)
        if names.count("body") != 1:
            raise ValueError("signed_content must contain {body} exactly once")
        if self.timestamp_header is not None and "timestamp" not in names:
            raise ValueError("signed_content must contain {timestamp} when timestamp_header is set")
        if self.timestamp_header is None and "timestamp" in names:
            raise ValueError("signed_content uses {timestamp} but no timestamp_header is set")
        if self.delivery_id_header is None and "delivery_id" in names:
            raise ValueError("signed_content uses {delivery_id} but no delivery_id_header is set")
        return self

    @property
    def template(self) -> str:
        if self.signed_content is not None:
            return self.signed_content
        return "{timestamp}.{body}" if self.timestamp_header else "{body}"


def _template_placeholders(template: str) -> list[str]:
    names = []
    for part in _PLACEHOLDER.split(template):
        if _PLACEHOLDER.fullmatch(part):
            name = part[1:-1]
            if name not in PLACEHOLDERS:
                raise ValueError(f"signed_content has an unknown placeholder {part}")
            names.append(name)
        elif "{" in part or "}" in part:
            raise ValueError("signed_content has a brace outside a placeholder")
    return names


def validate_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as stored, defaults filled in; `ValidationFailed` naming each wrong field."""
    stored = parse_settings(settings).model_dump()
    # Unset options are left out; keys the model does not own are kept as given, null included.
    return {
        key: value
        for key, value in stored.items()
        if value is not None or key not in GenericSettings.model_fields
    }


def parse_settings(settings: Mapping[str, Any]) -> GenericSettings:
    try:
        return GenericSettings.model_validate(dict(settings))
    except ValidationError as exc:
        problems = [
            (_field_name(error["loc"], error["msg"]), error["msg"].removeprefix("Value error, "))
            for error in exc.errors()
        ]
        fields = sorted({field for field, _ in problems})
        details = "; ".join(f"{field}: {message}" for field, message in problems)
        raise ValidationFailed(
            f"invalid generic settings: {details}", key="invalid_settings", data={"fields": fields}
        ) from exc


def _field_name(location: tuple[int | str, ...], message: str) -> str:
    if location:
        return "settings." + ".".join(str(part) for part in location)
    # A model-level rule: name the field its message mentions first.
    mentioned = [(message.find(name), name) for name in GenericSettings.model_fields if name in message]
    return f"settings.{min(mentioned)[1]}" if mentioned else "settings"


def _hmac_keys(secrets: Sequence[str]) -> Iterator[bytes]:
    # An empty key would let anyone sign, so it never counts as a secret.
    for secret in secrets:
        if secret:
            try:
                yield secret.encode()
            except UnicodeEncodeError:
                continue


class Generic:
    name: ClassVar[str] = "generic"
    # The collection is per connection (`settings.collection`); there is no fixed list to declare.
    collections: ClassVar[frozenset[str]] = frozenset()
    webhook_matches_list_representation: ClassVar[bool] = False

    def validate_secret(self, secret: str) -> None:
        if not secret or secret != secret.strip() or not _encodable(secret):
            raise ValidationFailed(
                "a webhook secret is a non-empty string without surrounding spaces",
                key="invalid_webhook_secret",
                data={"fields": ["webhook_secrets"]},
            )

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return validate_settings(settings)

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        config = _usable_settings(settings)
        candidate = _parse_signature_header(request.require_header(config.signature_header), config)
        values = {"method": request.method.upper(), "url": request.url}
        if config.timestamp_header is not None:
            raw_timestamp = request.require_header(config.timestamp_header).strip()
            timestamp = _parse_timestamp(raw_timestamp, config.timestamp_header)
            if config.timestamp_unit == "milliseconds":
                timestamp /= 1000
            if abs(now - timestamp) > config.tolerance_seconds:
                raise SignatureInvalid(
                    f"{config.timestamp_header} is outside the {config.tolerance_seconds} s tolerance",
                    key="stale_timestamp",
                )
            values["timestamp"] = raw_timestamp
        if config.delivery_id_header is not None and "{delivery_id}" in config.template:
            values["delivery_id"] = request.require_header(config.delivery_id_header)
        message = _signed_content(config.template, values, request.body)
        for key in _hmac_keys(secrets):
            if hmac.compare_digest(hmac.new(key, message, config.algorithm).digest(), candidate):
                return
        raise SignatureInvalid(f"{config.signature_header} matches no active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        config = _usable_settings(settings)
        try:
            payload = parse_json_body(request.body)
        except RecursionError as exc:  # json raises it for deeply nested input; base does not catch it yet
            raise MalformedPayload("the body is nested too deeply", key="malformed_json") from exc
        if config.delivery_id_header is not None:
            delivery_id = request.header(config.delivery_id_header)
            if not delivery_id:
                raise MalformedPayload(
                    f"the delivery carries no {config.delivery_id_header} header", key="missing_header"
                )
        else:
            delivery_id = _required_id(payload, config.delivery_id_path, "delivery_id_path")
        event_type = DEFAULT_TYPE
        if config.type_path is not None:
            found = _resolve(payload, config.type_path)
            if not isinstance(found, str) or not found:
                raise MalformedPayload(
                    f"the payload has no string at type_path {config.type_path}", key="malformed_payload"
                )
            event_type = found
        return [
            NormalizedEvent(
                delivery_id=delivery_id,
                type=event_type,
                collection=config.collection,
                action=action_from_type(event_type),
                record_id=_id_string(_resolve(payload, config.record_id_path)),
                occurred_at=_epoch_seconds(_resolve(payload, config.occurred_at_path)),
                data=payload,
            )
        ]

    def list_pages(
        self, http: httpx.Client, source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        raise NotImplementedError("generic full scans are not implemented yet")


def _usable_settings(settings: Mapping[str, Any]) -> GenericSettings:
    # Settings are validated when the connection is written; failing here means no delivery can be
    # authenticated until they are fixed, so the sender is told to retry (401), not that it erred (400).
    try:
        return parse_settings(settings)
    except ValidationFailed as exc:
        raise SignatureInvalid(
            "the connection's generic settings are invalid", key="invalid_connection_settings"
        ) from exc


def _parse_signature_header(header: str, config: GenericSettings) -> bytes:
    value = header.strip()
    if not value.startswith(config.prefix):
        raise SignatureInvalid(
            f"{config.signature_header} does not start with {config.prefix!r}", key="malformed_signature"
        )
    encoded = value[len(config.prefix) :]
    size = hashlib.new(config.algorithm).digest_size
    digest = _decode_digest(encoded, config.encoding)
    if digest is None or len(digest) != size:
        raise SignatureInvalid(
            f"{config.signature_header} is not a {config.encoding} {config.algorithm} digest",
            key="malformed_signature",
        )
    return digest


def _decode_digest(encoded: str, encoding: str) -> bytes | None:
    if not encoded.isascii():
        return None
    try:
        if encoding == "hex":
            return bytes.fromhex(encoded) if len(encoded) % 2 == 0 and encoded.isalnum() else None
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse_timestamp(value: str, header: str) -> float:
    if not value.isascii() or not value.isdigit() or len(value) > 15:
        raise SignatureInvalid(f"{header} is not a unix timestamp", key="malformed_signature")
    return float(value)


def _signed_content(template: str, values: Mapping[str, str], body: bytes) -> bytes:
    parts: list[bytes] = []
    try:
        for part in _PLACEHOLDER.split(template):
            if _PLACEHOLDER.fullmatch(part):
                name = part[1:-1]
                parts.append(body if name == "body" else values[name].encode())
            else:
                parts.append(part.encode())
    except UnicodeEncodeError as exc:
        raise SignatureInvalid(
            "a signed header cannot be encoded as UTF-8", key="malformed_signature"
        ) from exc
    return b"".join(parts)


def _resolve(payload: Any, path: str | None) -> Any:
    if path is None:
        return None
    found = payload
    for segment in path.removeprefix("$.").split("."):
        if isinstance(found, dict):
            found = found.get(segment)
        elif (
            isinstance(found, list) and segment.isascii() and segment.isdigit() and int(segment) < len(found)
        ):
            found = found[int(segment)]
        else:
            return None
    return found


def _required_id(payload: Any, path: str | None, setting: str) -> str:
    found = _id_string(_resolve(payload, path))
    if found is None:
        raise MalformedPayload(f"the payload has no id at {setting} {path}", key="malformed_payload")
    return found


def _id_string(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _epoch_seconds(value: object) -> float | None:
    """A number of seconds since the epoch, or an ISO-8601 time."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError):
            return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


PROVIDER = Generic()
