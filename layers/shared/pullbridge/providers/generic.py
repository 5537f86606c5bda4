"""A generic signed source: an HMAC scheme configured per connection in `settings` (see `GenericSettings`),
and optionally pulls from a REST collection or an events feed, configured there too.

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
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

from pullbridge.errors import MalformedPayload, PullFailed, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import (
    ACTIONS,
    ListedRecord,
    ListPage,
    NormalizedEvent,
    PullSource,
    WebhookRequest,
    action_from_type,
    hmac_keys,
    parse_iso_time,
    parse_json_body,
)
from pullbridge.providers.generic_settings import (
    DEFAULT_FEED_PATH,
    DEFAULT_FEED_TYPE_PATH,
    DEFAULT_ID_PATH,
    DEFAULT_TYPE,
    FEED_CURSOR_PARAM,
    PLACEHOLDER_PATTERN,
    GenericSettings,
    parse_settings,
    validate_settings,
)

if TYPE_CHECKING:  # httpx stays off the webhook path's imports
    from pullbridge.pulls.http import PullHttp


class Generic:
    name: ClassVar[str] = "generic"
    # The collection is per connection (`settings.collection`); there is no fixed list to declare.
    collections: ClassVar[frozenset[str]] = frozenset()
    webhook_matches_list_representation: ClassVar[bool] = False
    # The configured `page_size` governs each connection; this is the default the engine plans with.
    max_page_size: ClassVar[int] = 100
    default_base_url: ClassVar[str | None] = None

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
        for key in hmac_keys(secrets):
            if hmac.compare_digest(hmac.new(key, message, config.algorithm).digest(), candidate):
                return
        raise SignatureInvalid(f"{config.signature_header} matches no active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        config = _usable_settings(settings)
        payload = parse_json_body(request.body)
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

    def list_pages(self, http: PullHttp, source: PullSource, checkpoint: str | None) -> Iterator[ListPage]:
        """`settings.mode` `rest` (the default): `GET {list_path}`, items at `items_path`, each record's id
        at `id_path`; the next page from `next_cursor_path` sent back as `cursor_param` (the checkpoint is
        that cursor), or else from the `Link` header (the checkpoint is the next URL).

        `feed`: `GET {feed_path}?cursor=<checkpoint>` answering `{data, next_cursor, has_more}`, read as
        incremental pages. Its last page's checkpoint is the feed's `next_cursor` too (or the cursor that
        was sent, when it returns none), so the next pull continues where this one stopped."""
        config = _pull_settings(source.settings)
        if not source.base_url:
            raise PullFailed(
                "bad_request",
                "a generic connection needs api_base_url to pull",
                key="missing_base_url",
                data={"field": "api_base_url"},
            )
        base = source.base_url.rstrip("/")
        headers = _auth_headers(source.credentials)
        if config.mode == "feed":
            yield from _feed_pages(http, config, base, headers, checkpoint)
        else:
            yield from _rest_pages(http, config, base, headers, checkpoint)


def _pull_settings(settings: Mapping[str, Any]) -> GenericSettings:
    try:
        return parse_settings(settings)
    except ValidationFailed as exc:
        raise PullFailed("bad_request", exc.message, key="invalid_settings", data=exc.data) from exc


def _auth_headers(credentials: Mapping[str, Any]) -> dict[str, str]:
    """`{"bearer_token"}` or `{"header_name", "header_value"}`; none at all for a public API."""
    token = credentials.get("bearer_token")
    if token is not None:
        if not _header_safe(token):
            raise _invalid_credentials("credentials.bearer_token")
        return {"Authorization": f"Bearer {token}"}
    name, value = credentials.get("header_name"), credentials.get("header_value")
    if name is None and value is None:
        return {}
    if not isinstance(name, str) or not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}", name):
        raise _invalid_credentials("credentials.header_name")
    if not _header_safe(value):
        raise _invalid_credentials("credentials.header_value")
    return {name: value}


def _header_safe(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value) and value.isascii() and value.isprintable()


def _invalid_credentials(field: str) -> PullFailed:
    return PullFailed(
        "bad_request",
        "generic credentials are {bearer_token} or {header_name, header_value}, printable ASCII",
        key="missing_credentials",
        data={"field": field},
    )


def _rest_pages(
    http: PullHttp, config: GenericSettings, base: str, headers: Mapping[str, str], checkpoint: str | None
) -> Iterator[ListPage]:
    if config.list_path is None:
        raise PullFailed(
            "bad_request",
            "set settings.list_path (or settings.mode 'feed') to pull this connection",
            key="invalid_settings",
            data={"field": "settings.list_path"},
        )
    first_url = base + config.list_path
    by_cursor = config.next_cursor_path is not None
    if not by_cursor and checkpoint is not None:
        http.require_same_origin(checkpoint, base)
    url: str | None = first_url if by_cursor or checkpoint is None else checkpoint
    cursor = checkpoint if by_cursor else None
    while url is not None:
        params: dict[str, str] = {}
        if config.page_size is not None and config.page_size_param is not None:
            params[config.page_size_param] = str(config.page_size)
        if by_cursor and cursor is not None and config.cursor_param is not None:
            params[config.cursor_param] = cursor
        body, response = http.get_json(url, params=params or None, headers=headers)
        items = body if config.items_path is None else _resolve(body, config.items_path)
        if not isinstance(items, list):
            raise PullFailed(
                "bad_response", f"the list response has no array at items_path {config.items_path}"
            )
        records = [
            ListedRecord(
                record_id=_listed_id(item, index, config),
                data=item,
                created_at=_epoch_seconds(_resolve(item, config.created_at_path)),
            )
            for index, item in enumerate(items)
        ]
        if by_cursor:
            next_cursor = _id_string(_resolve(body, config.next_cursor_path))
            # An API that always answers with a cursor ends on an empty page or a repeated cursor.
            cursor = None if not items or next_cursor == cursor else next_cursor
            url = None if cursor is None else first_url
            yield ListPage(records=records, next_checkpoint=cursor)
        else:
            url = http.next_link(response, same_origin_as=base)
            yield ListPage(records=records, next_checkpoint=url)


def _feed_pages(
    http: PullHttp, config: GenericSettings, base: str, headers: Mapping[str, str], checkpoint: str | None
) -> Iterator[ListPage]:
    url = base + (config.feed_path or DEFAULT_FEED_PATH)
    cursor = checkpoint
    while True:
        params: dict[str, str] = {}
        if config.page_size is not None and config.page_size_param is not None:
            params[config.page_size_param] = str(config.page_size)
        if cursor:
            params[FEED_CURSOR_PARAM] = cursor
        body, _ = http.get_json(url, params=params or None, headers=headers)
        items = body.get("data") if isinstance(body, dict) else None
        has_more = body.get("has_more") if isinstance(body, dict) else None
        next_cursor = body.get("next_cursor") if isinstance(body, dict) else None
        if not isinstance(items, list) or not isinstance(has_more, bool):
            raise PullFailed("bad_response", "the feed did not answer {data: [...], has_more: bool}")
        if next_cursor is not None and (not isinstance(next_cursor, str) or not next_cursor):
            raise PullFailed("bad_response", "the feed's next_cursor is not a non-empty string")
        if has_more and (next_cursor is None or next_cursor == cursor):
            raise PullFailed(
                "bad_response", "the feed has more but its cursor does not advance", key="stuck_paging"
            )
        records = [_feed_record(item, index, config) for index, item in enumerate(items)]
        # With nothing new the feed may return no cursor: the one sent still marks the position.
        cursor = next_cursor or cursor
        yield ListPage(records=records, next_checkpoint=cursor, incremental=True)
        if not has_more:
            return


def _feed_record(item: Any, index: int, config: GenericSettings) -> ListedRecord:
    found_type = _resolve(item, config.feed_type_path or DEFAULT_FEED_TYPE_PATH)
    event_type = found_type if isinstance(found_type, str) and found_type else None
    found_action = _resolve(item, config.feed_action_path)
    if isinstance(found_action, str) and found_action in ACTIONS:
        action: str | None = found_action
    else:
        action = action_from_type(event_type) if event_type and config.feed_action_path is None else None
    return ListedRecord(
        record_id=_listed_id(item, index, config),
        data=item,
        type=event_type,
        action=action,
        occurred_at=_epoch_seconds(_resolve(item, config.feed_occurred_at_path)),
    )


def _listed_id(item: Any, index: int, config: GenericSettings) -> str:
    path = config.id_path or DEFAULT_ID_PATH
    found = _id_string(_resolve(item, path))
    if found is None:
        raise PullFailed("bad_response", f"item [{index}] has no string or integer id at id_path {path}")
    return found


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
        return parse_iso_time(value)
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
