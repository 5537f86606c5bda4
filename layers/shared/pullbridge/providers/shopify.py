"""Shopify (https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook):
`X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw body keyed with the app's client secret.
`X-Shopify-Webhook-Id` is what redeliveries share and `X-Shopify-Topic` (e.g. `orders/create`) names the
event. The body is the record in the REST Admin API's representation.

Writes: products and customers are created (`POST /admin/api/{version}/{collection}.json` with
`{"product": {...}}`), updated (`PUT .../{collection}/{id}.json` with `{"product": {"id": id, ...}}`) and
deleted (`DELETE .../{collection}/{id}.json`). A write answers the object as the list shows it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeGuard

from pullbridge.errors import MalformedPayload, PullFailed, SignatureInvalid
from pullbridge.providers.base import (
    ListedRecord,
    ListPage,
    NormalizedEvent,
    ProviderHttp,
    PullSource,
    ResponseT,
    SettingRule,
    WebhookRequest,
    WriteRequest,
    WrittenRecord,
    check_rate_limit,
    check_settings,
    credential,
    format_iso_time,
    invalid_setting,
    parse_iso_time,
    parse_json_body,
    payload_header,
)
from pullbridge.providers.signing import check_secret, hmac_keys, hmac_matches, read_digest
from pullbridge.providers.writes import (
    answered_object,
    check_write,
    first_string,
    numeric_id,
    record_or_none,
    unreadable_answer,
)

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

DEFAULT_API_VERSION = "2024-10"
SINGULAR: Mapping[str, str] = {"products": "product", "customers": "customer"}
"""The writable collections, and the key a single object is wrapped in."""
WRITABLE: Mapping[str, frozenset[str]] = {
    collection: frozenset({"create", "update", "delete"}) for collection in SINGULAR
}
_API_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}|unstable")


def is_api_version(value: object) -> TypeGuard[str]:
    """A Shopify Admin API version: `2024-10`, or `unstable`."""
    return isinstance(value, str) and _API_VERSION.fullmatch(value) is not None


def _check_api_version(field: str, value: object) -> str:
    if not is_api_version(value):
        raise invalid_setting(field, "must be a Shopify API version such as '2024-10', or 'unstable'")
    return value


SETTING_RULES: Mapping[str, SettingRule] = {"api_version": _check_api_version, "rate_limit": check_rate_limit}


class Shopify:
    name: ClassVar[str] = "shopify"
    collections: ClassVar[frozenset[str]] = frozenset(ACTION_BY_TOPIC)
    webhook_matches_list_representation: ClassVar[bool] = True
    webhook_carries_records: ClassVar[bool] = True
    max_page_size: ClassVar[int] = 250
    # Every store has its own host (`https://{shop}.myshopify.com`): the connection must set it.
    default_base_url: ClassVar[str | None] = None
    request_id_header: ClassVar[str | None] = "X-Request-Id"
    updates_lookback_seconds: ClassVar[float | None] = None
    write_idempotency_keys: ClassVar[bool] = False

    def record_version(self, data: Any) -> float | None:
        return parse_iso_time(data.get("updated_at")) if isinstance(data, dict) else None

    def validate_secret(self, secret: str) -> None:
        check_secret(secret, "a Shopify webhook secret (the app's client secret)", ascii_only=True)

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return check_settings(self.name, settings, SETTING_RULES)

    def pullable_collections(self, settings: Mapping[str, Any]) -> frozenset[str]:
        return self.collections

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        candidate = read_digest(request.require_header(SIGNATURE_HEADER), SIGNATURE_HEADER, encoding="base64")
        if not hmac_matches(hmac_keys(secrets), [request.body], [candidate]):
            raise SignatureInvalid("X-Shopify-Hmac-Sha256 matches no active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        topic = payload_header(request, TOPIC_HEADER, "Shopify")
        delivery_id = payload_header(request, DELIVERY_HEADER, "Shopify")
        payload = parse_json_body(request.body)
        if not isinstance(payload, dict):
            raise MalformedPayload("a Shopify webhook body is a JSON object", key="malformed_payload")
        resource, _, verb = topic.partition("/")
        action = ACTION_BY_TOPIC.get(resource, {}).get(verb)
        occurred_at = parse_iso_time(request.header(TRIGGERED_AT_HEADER))
        if occurred_at is None:
            occurred_at = parse_iso_time(payload.get("updated_at"))
        return [
            NormalizedEvent(
                delivery_id=delivery_id,
                type=topic,
                collection=resource if action else None,
                action=action,
                record_id=_record_id(payload.get("id")),
                occurred_at=occurred_at,
                version=parse_iso_time(payload.get("updated_at")),
                data=payload,
            )
        ]

    def list_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """`GET /admin/api/{version}/{collection}.json?limit=250`, then the `Link` header's `page_info`
        next URL, which is also the checkpoint. Orders are listed with `status=any`: the default lists
        only open ones."""
        yield from self._pages(http, source, checkpoint, {})

    def supports_updates(self, settings: Mapping[str, Any]) -> bool:
        return True

    def updated_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """The same list with `updated_at_min=<ISO 8601>` (updated at or after it). Its `page_info` cursor
        pages by a key an update does not change (the id or the creation time), so a record changed
        mid-pull is neither skipped nor repeated: it is read before its change, or after it."""
        yield from self._pages(http, source, checkpoint, {"updated_at_min": format_iso_time(since)})

    def _pages(
        self,
        http: ProviderHttp[ResponseT],
        source: PullSource,
        checkpoint: str | None,
        filters: dict[str, str],
    ) -> Iterator[ListPage]:
        base, headers = _request_basics(source)
        url: str | None
        params: dict[str, str] | None
        if checkpoint is None:
            url = f"{base}/admin/api/{_api_version(source.settings)}/{source.collection}.json"
            params = {"limit": str(self.max_page_size), **filters}
            if source.collection == "orders":
                params["status"] = "any"
        else:
            http.require_same_origin(checkpoint, base)
            # A page_info URL carries its filters itself: Shopify refuses any other parameter with it.
            url, params = checkpoint, None
        while url is not None:
            body, response = http.get_json(url, params=params, headers=headers)
            items = body.get(source.collection) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise PullFailed(
                    "bad_response", f"Shopify's {source.collection} list has no {source.collection!r} array"
                )
            records = [_listed(item, index, source.collection) for index, item in enumerate(items)]
            url, params = http.next_link(response, same_origin_as=base), None
            yield ListPage(records=records, next_checkpoint=url)

    def writable_collections(self, settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
        return WRITABLE

    def write(
        self, http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest
    ) -> WrittenRecord:
        """The data is the object's fields, sent wrapped in its singular key; an update also carries the
        id. A delete answers `{}`: its `data` is None (the record keeps what was last seen of it)."""
        check_write("Shopify", WRITABLE, request)
        url, headers = _collection_url(source)
        singular = SINGULAR[request.collection]
        fields = dict(request.data or {})
        if request.kind == "create":
            body, _ = http.send("POST", f"{url}.json", json_body={singular: fields}, headers=headers)
        else:
            record_id = numeric_id("Shopify", str(request.record_id))
            if request.kind == "delete":
                http.send("DELETE", f"{url}/{record_id}.json", headers=headers)
                return WrittenRecord(record_id=record_id, data=None, deleted=True)
            fields = {**fields, "id": int(record_id)}
            body, _ = http.send(
                "PUT", f"{url}/{record_id}.json", json_body={singular: fields}, headers=headers
            )
        answered = answered_object("Shopify", body, singular)
        written_id = _record_id(answered.get("id"))
        if written_id is None:
            raise unreadable_answer(f"Shopify answered a {singular} {request.kind} without its id")
        return WrittenRecord(record_id=written_id, data=answered, version=self.record_version(answered))

    def read_record(self, http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
        """`GET /admin/api/{version}/{collection}/{id}.json`, unwrapped; None on a 404."""
        url, headers = _collection_url(source)
        found_url = f"{url}/{numeric_id('Shopify', record_id)}.json"
        found = record_or_none(lambda: http.get_json(found_url, headers=headers)[0])
        singular = SINGULAR.get(source.collection, source.collection.removesuffix("s"))
        record = found.get(singular) if isinstance(found, dict) else None
        return record if isinstance(record, dict) else None

    def error_message(self, body: Any) -> str | None:
        """`{"errors": "Not Found"}`, `{"errors": {"title": ["can't be blank"]}}` (`title: can't be
        blank`), or `{"errors": ["..."]}`; some answers say `error` instead."""
        if not isinstance(body, dict):
            return None
        errors = body.get("errors", body.get("error"))
        if isinstance(errors, dict):
            parts = [
                f"{field}: {message}"
                for field, messages in errors.items()
                for message in (messages if isinstance(messages, list) else [messages])
                if first_string(message)
            ]
            return "; ".join(parts) or None
        if isinstance(errors, list):
            return "; ".join(text for error in errors if (text := first_string(error))) or None
        return first_string(errors)


def _request_basics(source: PullSource) -> tuple[str, dict[str, str]]:
    """The store's base URL and the headers of every request, once the source is checked."""
    if source.collection not in PROVIDER.collections:
        raise PullFailed(
            "bad_request", f"Shopify has no collection {source.collection!r}", key="unknown_collection"
        )
    if not source.base_url:
        raise PullFailed(
            "bad_request",
            "a Shopify connection needs api_base_url, the store's https://{shop}.myshopify.com",
            key="missing_base_url",
            data={"field": "api_base_url"},
        )
    return source.base_url.rstrip("/"), {"X-Shopify-Access-Token": credential(source, "access_token")}


def _collection_url(source: PullSource) -> tuple[str, dict[str, str]]:
    """`/admin/api/{version}/{collection}` (without `.json`), and the headers."""
    base, headers = _request_basics(source)
    return f"{base}/admin/api/{_api_version(source.settings)}/{source.collection}", headers


def _listed(item: object, index: int, collection: str) -> ListedRecord:
    record_id = _record_id(item.get("id")) if isinstance(item, dict) else None
    if not isinstance(item, dict) or record_id is None:
        raise PullFailed("bad_response", f"Shopify's {collection} item [{index}] has no id")
    return ListedRecord(record_id=record_id, data=item, created_at=parse_iso_time(item.get("created_at")))


def _api_version(settings: Mapping[str, Any]) -> str:
    version = settings.get("api_version")
    if version is None:  # unset: null is unset too, as when settings are written
        version = DEFAULT_API_VERSION
    if not is_api_version(version):
        raise PullFailed(
            "bad_request",
            "settings.api_version is a Shopify API version such as '2024-10'",
            key="invalid_settings",
            data={"field": "settings.api_version"},
        )
    return version


def _record_id(value: object) -> str | None:
    """REST ids are integers; stringified they match the list API's ids (`"450789469"`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


PROVIDER = Shopify()
