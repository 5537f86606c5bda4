"""HubSpot (https://developers.hubspot.com/docs/api/webhooks/validating-requests), v3 signatures:
`X-HubSpot-Signature-v3`, the base64 HMAC-SHA256 of `method + uri + body + timestamp` keyed with the app's
client secret, where `X-HubSpot-Request-Timestamp` is in milliseconds.

`uri` is the URL HubSpot called. HubSpot signs it with a few reserved characters percent-decoded (the
table in its docs: `%3A` -> `:`, `%2F` -> `/`, `%3F` -> `?`, ...), so that form is tried first, then the
URL exactly as received; either still needs the secret. The older v1/v2 signatures are plain SHA-256
hashes without a timestamp, so they are not accepted.

A delivery is a JSON array of events. `eventId` alone is not unique, so an event's delivery id joins
`subscriptionId`, `eventId` and `occurredAt`.

Writes (contacts, companies and deals) are in `writes.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
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
    check_boolean,
    check_rate_limit,
    check_settings,
    credential,
    invalid_setting,
    parse_iso_time,
    parse_json_body,
)
from pullbridge.providers.hubspot import writes
from pullbridge.providers.signing import (
    MILLISECONDS_DIGITS,
    check_secret,
    hmac_keys,
    hmac_matches,
    parse_unix_time,
    read_digest,
    require_fresh,
)
from pullbridge.providers.writes import check_write

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
LEGACY_SIGNATURE_HEADER = "X-HubSpot-Signature"
LEGACY_VERSION_HEADER = "X-HubSpot-Signature-Version"
LEGACY_SETTING = "accept_legacy_signatures"
"""Opt-in: also verify HubSpot's v1/v2 signatures when a delivery carries no v3 one (older apps)."""
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"

COLLECTION_BY_OBJECT: Mapping[str, str] = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    # `object.*` subscriptions name the type by objectTypeId instead.
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
}

ACTION_BY_CHANGE: Mapping[str, str] = {
    "creation": "created",
    "propertyChange": "updated",
    "merge": "updated",
    "deletion": "deleted",
    "privacyDeletion": "deleted",
    # A restored record is back in the list API after its deletion.
    "restore": "created",
}

MODIFIED_PROPERTY: Mapping[str, str] = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
"""The property an incremental pull searches on. Contacts keep their last change in `lastmodifieddate`:
a search of contacts on `hs_lastmodifieddate` finds nothing."""

SEARCH_PAGE_SIZE = 200
SEARCH_RESULTS_CAP = 10_000
"""A search pages through at most 10,000 results (an `after` beyond is a 400): a longer one starts again
below the last update time it read."""

MAX_EPOCH_MILLISECONDS = 10**15
"""Year 33658: bounds `occurredAt` so it converts to a float and fits a delivery id."""

_ENCODED_RESERVED = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)


def signed_uri(url: str) -> str:
    """The URL as HubSpot signs it: the reserved characters of its docs' table percent-decoded."""
    return _ENCODED_RESERVED.sub(lambda match: chr(int(match.group(1), 16)), url)


class HubSpot:
    name: ClassVar[str] = "hubspot"
    collections: ClassVar[frozenset[str]] = frozenset(COLLECTION_BY_OBJECT.values())
    webhook_matches_list_representation: ClassVar[bool] = False
    webhook_carries_records: ClassVar[bool] = False
    max_page_size: ClassVar[int] = 100
    default_base_url: ClassVar[str | None] = "https://api.hubapi.com"
    request_id_header: ClassVar[str | None] = "X-HubSpot-Correlation-Id"
    updates_lookback_seconds: ClassVar[float | None] = None
    write_idempotency_keys: ClassVar[bool] = False

    def record_version(self, data: Any) -> float | None:
        return parse_iso_time(data.get("updatedAt")) if isinstance(data, dict) else None

    def validate_secret(self, secret: str) -> None:
        check_secret(secret, "a HubSpot webhook secret (the app's client secret)", ascii_only=True)

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return check_settings(self.name, settings, SETTING_RULES)

    def pullable_collections(self, settings: Mapping[str, Any]) -> frozenset[str]:
        return self.collections

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        if request.header(SIGNATURE_HEADER) is None and settings.get(LEGACY_SETTING) is True:
            _verify_legacy(request, secrets)
            return
        candidate = read_digest(request.require_header(SIGNATURE_HEADER), SIGNATURE_HEADER, encoding="base64")
        raw_timestamp = request.require_header(TIMESTAMP_HEADER).strip()
        milliseconds = parse_unix_time(raw_timestamp, TIMESTAMP_HEADER, max_digits=MILLISECONDS_DIGITS)
        require_fresh(milliseconds / 1000, now, TIMESTAMP_HEADER)
        messages = [prefix + request.body + raw_timestamp.encode() for prefix in _method_and_uris(request)]
        if not hmac_matches(hmac_keys(secrets), messages, [candidate]):
            raise SignatureInvalid("X-HubSpot-Signature-v3 matches no active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        batch = parse_json_body(request.body)
        if not isinstance(batch, list) or not batch:
            raise MalformedPayload("a HubSpot delivery is a non-empty JSON array", key="malformed_payload")
        return [_normalize_item(item, index) for index, item in enumerate(batch)]

    def list_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """`GET /crm/v3/objects/{collection}?limit=100`, then `after` from `paging.next.after`, which is
        also the checkpoint. `settings.properties` (a list of names) asks for more than the default
        properties."""
        base, headers = _request_basics(source)
        url = f"{base}/crm/v3/objects/{source.collection}"
        properties = _properties(source.settings)
        after = checkpoint
        while True:
            params = {"limit": str(self.max_page_size)}
            if properties:
                params["properties"] = ",".join(properties)
            if after:
                params["after"] = after
            body, _ = http.get_json(url, params=params, headers=headers)
            records = _results(body, source.collection)
            after = _next_after(body, source.collection, after)
            yield ListPage(records=records, next_checkpoint=after)
            if after is None:
                return

    def supports_updates(self, settings: Mapping[str, Any]) -> bool:
        return True

    def updated_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """`POST /crm/v3/objects/{collection}/search` with the filter `<modified> GTE <since in ms>`, sorted
        on it newest first, 200 a page, then `after` from `paging.next.after`. Newest first because `after`
        is an offset: a record changed mid-pull moves to the front, already read, instead of shifting an
        unread one back. Past 10,000 results the search starts again with `<modified> LTE` the last update
        time read. The checkpoint holds both, as JSON."""
        base, headers = _request_basics(source)
        url = f"{base}/crm/v3/objects/{source.collection}/search"
        modified = MODIFIED_PROPERTY[source.collection]
        properties = _properties(source.settings)
        after, before = _search_position(checkpoint)
        while True:
            filters = [{"propertyName": modified, "operator": "GTE", "value": str(math.floor(since * 1000))}]
            if before is not None:
                filters.append({"propertyName": modified, "operator": "LTE", "value": str(before)})
            query: dict[str, Any] = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": modified, "direction": "DESCENDING"}],
                "limit": SEARCH_PAGE_SIZE,
            }
            if properties:
                query["properties"] = properties
            if after:
                query["after"] = after
            body, _ = http.post_json(url, body=query, headers=headers)
            records = _results(body, source.collection)
            after, before = _next_search_position(body, source.collection, records, after, before)
            next_checkpoint = None if after is None and before is None else json.dumps([after, before])
            yield ListPage(records=records, next_checkpoint=next_checkpoint)
            if next_checkpoint is None:
                return

    def writable_collections(self, settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
        return writes.WRITABLE

    def write(
        self, http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest
    ) -> WrittenRecord:
        check_write("HubSpot", writes.WRITABLE, request)
        base, headers = _request_basics(source)
        return writes.write(http, base, headers, _properties(source.settings), request)

    def read_record(self, http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
        base, headers = _request_basics(source)
        return writes.read_record(
            http, base, headers, _properties(source.settings), source.collection, record_id
        )

    def error_message(self, body: Any) -> str | None:
        return writes.error_message(body)


def _request_basics(source: PullSource) -> tuple[str, dict[str, str]]:
    if source.collection not in PROVIDER.collections:
        raise PullFailed(
            "bad_request", f"HubSpot has no collection {source.collection!r}", key="unknown_collection"
        )
    if not source.base_url:
        raise PullFailed("bad_request", "the connection has no api_base_url", key="missing_base_url")
    return source.base_url.rstrip("/"), {"Authorization": f"Bearer {credential(source, 'access_token')}"}


def _results(body: Any, collection: str) -> list[ListedRecord]:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise PullFailed("bad_response", f"HubSpot's {collection} list has no results array")
    return [_listed(item, index, collection) for index, item in enumerate(results)]


def _search_position(checkpoint: str | None) -> tuple[str | None, int | None]:
    """(`after`, the `LTE` bound) from a search's checkpoint; (None, None) for the first page."""
    if checkpoint is None:
        return None, None
    try:
        after, before = json.loads(checkpoint)
    except (ValueError, TypeError) as exc:
        raise PullFailed("bad_request", "the pull's checkpoint is not a HubSpot search position") from exc
    if not (after is None or isinstance(after, str)) or not (before is None or _is_integer(before)):
        raise PullFailed("bad_request", "the pull's checkpoint is not a HubSpot search position")
    return after, before


def _next_search_position(
    body: dict[str, Any], collection: str, records: list[ListedRecord], after: str | None, before: int | None
) -> tuple[str | None, int | None]:
    """Where the search goes on: the next `after`; or, at the 10,000-result cap, the first page of the
    same search bounded by the last update time read (its records come again, unchanged); or the end."""
    next_after = _next_after(body, collection, after)
    if next_after is None:
        return None, None
    if not (next_after.isdigit() and int(next_after) + SEARCH_PAGE_SIZE > SEARCH_RESULTS_CAP):
        return next_after, before
    last = parse_iso_time(records[-1].data.get("updatedAt")) if records else None
    bound = None if last is None else round(last * 1000)
    if bound is None or bound == before:
        raise PullFailed(
            "bad_response",
            f"HubSpot's {collection} search holds more than 10,000 results it cannot page below",
            key="stuck_paging",
        )
    return None, bound


def _listed(item: object, index: int, collection: str) -> ListedRecord:
    record_id = _record_id(item.get("id")) if isinstance(item, dict) else None
    if not isinstance(item, dict) or record_id is None:
        raise PullFailed("bad_response", f"HubSpot's {collection} result [{index}] has no id")
    return ListedRecord(record_id=record_id, data=item, created_at=parse_iso_time(item.get("createdAt")))


def _next_after(body: dict[str, Any], collection: str, after: str | None) -> str | None:
    """`paging.next.after`, None on the last page (no `paging` or no `paging.next`); `PullFailed` when it
    is missing, or the `after` that was sent (paging that does not advance would never end)."""
    paging = body.get("paging")
    following = paging.get("next") if isinstance(paging, dict) else paging
    if following is None:
        return None
    next_after = following.get("after") if isinstance(following, dict) else None
    if not isinstance(next_after, str) or not next_after:
        raise PullFailed("bad_response", f"HubSpot's {collection} paging.next has no after")
    if next_after == after:
        raise PullFailed(
            "bad_response", f"HubSpot's {collection} paging does not advance", key="stuck_paging"
        )
    return next_after


def is_property_list(value: object) -> TypeGuard[list[str]]:
    """A list of HubSpot property names; they are sent joined by commas, so none may hold one."""
    return isinstance(value, list) and all(
        isinstance(name, str) and name and "," not in name for name in value
    )


def _check_properties(field: str, value: object) -> list[str]:
    if not is_property_list(value):
        raise invalid_setting(field, "must be a list of HubSpot property names (non-empty, without commas)")
    return value


SETTING_RULES: Mapping[str, SettingRule] = {
    LEGACY_SETTING: check_boolean,
    "properties": _check_properties,
    "rate_limit": check_rate_limit,
}


def _properties(settings: Mapping[str, Any]) -> list[str] | None:
    properties = settings.get("properties")
    if properties is None:
        return None
    if not is_property_list(properties):
        raise PullFailed(
            "bad_request",
            "settings.properties is a list of HubSpot property names",
            key="invalid_settings",
            data={"field": "settings.properties"},
        )
    return properties or None


def _verify_legacy(request: WebhookRequest, secrets: Sequence[str]) -> None:
    """HubSpot's v1 (`sha256(secret + body)`) and v2 (`sha256(secret + method + uri + body)`) signatures:
    plain hashes with no timestamp, so a captured delivery could be replayed (the dedupe on its event ids
    stores nothing new, but still). Only connections that set `accept_legacy_signatures` take them."""
    signature = request.require_header(LEGACY_SIGNATURE_HEADER).strip().lower()
    version = (request.header(LEGACY_VERSION_HEADER) or "v1").strip().lower()
    if (
        version not in ("v1", "v2")
        or len(signature) != 64
        or not all(c in "0123456789abcdef" for c in signature)
    ):
        raise SignatureInvalid(
            "X-HubSpot-Signature is not a v1 or v2 SHA-256 hex digest", key="malformed_signature"
        )
    contents = [request.body]
    if version == "v2":
        contents = [prefix + request.body for prefix in _method_and_uris(request)]
    for key in hmac_keys(secrets):
        for content in contents:
            if hmac.compare_digest(hashlib.sha256(key + content).hexdigest().encode(), signature.encode()):
                return
    raise SignatureInvalid(f"X-HubSpot-Signature ({version}) matches no active secret")


def _method_and_uris(request: WebhookRequest) -> list[bytes]:
    """`method + uri` as HubSpot may have signed them: the URI in its signed form, then as received."""
    prefixes = []
    for uri in dict.fromkeys((signed_uri(request.url), request.url)):
        try:
            prefixes.append((request.method.upper() + uri).encode())
        except UnicodeEncodeError:
            continue
    return prefixes


def _normalize_item(item: object, index: int) -> NormalizedEvent:
    if not isinstance(item, dict):
        raise MalformedPayload(f"HubSpot event [{index}] is not an object", key="malformed_payload")
    # The legacy Webhooks API docs name the type `eventType`; current deliveries say `subscriptionType`.
    event_type = item.get("subscriptionType", item.get("eventType"))
    subscription_id, event_id, occurred_at = (
        item.get(name) for name in ("subscriptionId", "eventId", "occurredAt")
    )
    if (
        not isinstance(event_type, str)
        or not event_type
        or not _is_integer(subscription_id)
        or not _is_integer(event_id)
        or not isinstance(occurred_at, int)
        or not 0 <= occurred_at < MAX_EPOCH_MILLISECONDS
    ):
        raise MalformedPayload(
            f"HubSpot event [{index}] lacks subscriptionType, subscriptionId, eventId or occurredAt",
            key="malformed_payload",
        )
    object_type, _, change = event_type.partition(".")
    if object_type == "object":
        object_type_id = item.get("objectTypeId")
        object_type = object_type_id if isinstance(object_type_id, str) else ""
    collection = COLLECTION_BY_OBJECT.get(object_type)
    return NormalizedEvent(
        delivery_id=f"{subscription_id}:{event_id}:{occurred_at}",
        type=event_type,
        collection=collection,
        action=ACTION_BY_CHANGE.get(change) if collection else None,
        record_id=_record_id(item.get("objectId")),
        occurred_at=occurred_at / 1000,
        # A change that occurred before the record's last modification (`updatedAt`) is stale.
        version=occurred_at / 1000 if collection else None,
        data=item,
    )


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _record_id(value: object) -> str | None:
    """CRM ids are integers in webhooks and strings in the list API (`"512"`): both become the string."""
    if _is_integer(value):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


PROVIDER = HubSpot()
