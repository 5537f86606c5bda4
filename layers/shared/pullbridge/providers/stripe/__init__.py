"""Stripe (https://docs.stripe.com/webhooks#verify-manually): `Stripe-Signature: t=<unix>,v1=<hex>[,v1=..]`,
the hex HMAC-SHA256 of `"{t}.{body}"` keyed with the `whsec_...` secret used as is. Any `v1` entry may
match; `v0` and unknown schemes are ignored. The event body's `id` is what redeliveries share.

Writes (customers and products) are in `writes.py`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

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
    action_from_type,
    check_rate_limit,
    check_settings,
    credential,
    epoch_seconds,
    invalid_setting,
    parse_json_body,
)
from pullbridge.providers.signing import (
    check_secret,
    decode_digest,
    hmac_keys,
    hmac_matches,
    parse_unix_time,
    require_fresh,
)
from pullbridge.providers.stripe import writes
from pullbridge.providers.writes import check_write

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

EVENT_TYPES: Mapping[str, tuple[str, ...]] = {
    "customers": ("customer.created", "customer.updated", "customer.deleted"),
    "invoices": (
        "invoice.created",
        "invoice.deleted",
        "invoice.finalization_failed",
        "invoice.finalized",
        "invoice.marked_uncollectible",
        "invoice.overdue",
        "invoice.paid",
        "invoice.payment_action_required",
        "invoice.payment_failed",
        "invoice.payment_succeeded",
        "invoice.sent",
        "invoice.updated",
        "invoice.voided",
        "invoice.will_be_due",
    ),
    "subscriptions": (
        "customer.subscription.created",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "customer.subscription.updated",
    ),
    "charges": (
        "charge.captured",
        "charge.expired",
        "charge.failed",
        "charge.pending",
        "charge.refunded",
        "charge.succeeded",
        "charge.updated",
    ),
    "products": ("product.created", "product.updated", "product.deleted"),
    "prices": ("price.created", "price.updated", "price.deleted"),
    "payment_intents": (
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "payment_intent.created",
        "payment_intent.partially_funded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    ),
}
"""The event types an incremental pull asks `/v1/events` for: each one whose `data.object` is the
collection's object (Stripe takes at most 20 in `types[]`). `invoice.upcoming` is left out: its invoice has
no id yet."""

EVENTS_LOOKBACK_SECONDS = 30 * 86_400
"""`/v1/events` lists the last 30 days."""

OBJECT_TYPE_BY_COLLECTION: Mapping[str, str] = {
    collection: object_type for object_type, collection in COLLECTION_BY_OBJECT_TYPE.items()
}

_API_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z]+)?")
"""`2024-06-20`, or a named release such as `2024-09-30.acacia`."""


def _check_api_version(field: str, value: object) -> str:
    if not isinstance(value, str) or not _API_VERSION.fullmatch(value):
        raise invalid_setting(
            field, "must be a Stripe API version such as '2024-06-20' or '2024-09-30.acacia'"
        )
    return value


SETTING_RULES: Mapping[str, SettingRule] = {"api_version": _check_api_version, "rate_limit": check_rate_limit}


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
        elif scheme == "v1" and (digest := decode_digest(value, "hex")) is not None:
            candidates.append(digest)
    if len(timestamps) != 1:
        raise SignatureInvalid("Stripe-Signature needs exactly one t=", key="malformed_signature")
    timestamp = parse_unix_time(timestamps[0], "Stripe-Signature t=")
    if not candidates:
        raise SignatureInvalid("Stripe-Signature holds no v1 signature", key="malformed_signature")
    return timestamp, candidates


class Stripe:
    name: ClassVar[str] = "stripe"
    collections: ClassVar[frozenset[str]] = frozenset(COLLECTION_BY_OBJECT_TYPE.values())
    webhook_matches_list_representation: ClassVar[bool] = True
    webhook_carries_records: ClassVar[bool] = True
    max_page_size: ClassVar[int] = 100
    default_base_url: ClassVar[str | None] = "https://api.stripe.com"
    request_id_header: ClassVar[str | None] = "Request-Id"
    updates_lookback_seconds: ClassVar[float | None] = EVENTS_LOOKBACK_SECONDS
    write_idempotency_keys: ClassVar[bool] = True

    def record_version(self, data: Any) -> float | None:
        return None  # Stripe objects carry no update time; a webhook's version is its event's `created`

    def validate_secret(self, secret: str) -> None:
        check_secret(secret, "a Stripe webhook signing secret (whsec_...)", ascii_only=True)

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return check_settings(self.name, settings, SETTING_RULES)

    def pullable_collections(self, settings: Mapping[str, Any]) -> frozenset[str]:
        return self.collections

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        timestamp, candidates = _parse_signature_header(request.require_header(SIGNATURE_HEADER))
        require_fresh(timestamp, now, "Stripe-Signature t=")
        signed = f"{timestamp}.".encode() + request.body
        if not hmac_matches(hmac_keys(secrets), [signed], candidates):
            raise SignatureInvalid("no Stripe-Signature v1 matches an active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        event = parse_json_body(request.body)
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
                occurred_at=epoch_seconds(event.get("created")),
                # The event's creation orders the object's states (seconds: equal ones are not ordered).
                version=epoch_seconds(event.get("created")),
                data=record,
            )
        ]

    def list_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """`GET /v1/{collection}`, newest first, `limit=100`; the checkpoint is the last id of the page
        before (`starting_after`). Subscriptions are listed with Stripe's default status filter, which
        leaves out canceled ones, just as `customer.subscription.deleted` fires when one is canceled."""
        base, headers = _request_basics(source)
        url = f"{base}/v1/{source.collection}"
        starting_after = checkpoint
        while True:
            params = {"limit": str(self.max_page_size)}
            if starting_after:
                params["starting_after"] = starting_after
            body, _ = http.get_json(url, params=params, headers=headers)
            records, has_more = _list_page(body, url)
            if has_more and not records:
                raise PullFailed("bad_response", f"{url} has more but returned no items", key="empty_page")
            starting_after = records[-1].record_id if has_more else None
            yield ListPage(records=records, next_checkpoint=starting_after)
            if starting_after is None:
                return

    def supports_updates(self, settings: Mapping[str, Any]) -> bool:
        return True

    def updated_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """`GET /v1/events?types[]=<the collection's event types>&created[gte]=<since>&limit=100`, newest
        first, then `starting_after` the page's last event (also the checkpoint). Each event's
        `data.object` is the record as it was at that event, so the newest event of a record comes first;
        a `*.deleted` event is a delete Stripe reports. An event whose object is of another type is
        skipped."""
        base, headers = _request_basics(source)
        url = f"{base}/v1/events"
        object_type = OBJECT_TYPE_BY_COLLECTION[source.collection]
        filters = [("types[]", event_type) for event_type in EVENT_TYPES[source.collection]]
        filters += [("created[gte]", str(math.floor(since))), ("limit", str(self.max_page_size))]
        starting_after = checkpoint
        while True:
            params = filters + ([("starting_after", starting_after)] if starting_after else [])
            body, _ = http.get_json(url, params=params, headers=headers)
            records, last_event_id, has_more = _events_page(body, url, object_type)
            starting_after = last_event_id if has_more else None
            yield ListPage(records=records, next_checkpoint=starting_after)
            if starting_after is None:
                return

    def writable_collections(self, settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
        return writes.WRITABLE

    def write(
        self, http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest
    ) -> WrittenRecord:
        check_write("Stripe", writes.WRITABLE, request)
        base, headers = _request_basics(source)
        return writes.write(http, base, headers, request)

    def read_record(self, http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
        base, headers = _request_basics(source)
        return writes.read_record(http, base, headers, source.collection, record_id)

    def error_message(self, body: Any) -> str | None:
        return writes.error_message(body)


def _request_basics(source: PullSource) -> tuple[str, dict[str, str]]:
    """The API's base URL and the headers of every request of a pull, once the source is checked."""
    if source.collection not in PROVIDER.collections:
        raise PullFailed(
            "bad_request", f"Stripe has no collection {source.collection!r}", key="unknown_collection"
        )
    if not source.base_url:
        raise PullFailed("bad_request", "the connection has no api_base_url", key="missing_base_url")
    headers = {"Authorization": f"Bearer {credential(source, 'api_key')}"}
    api_version = source.settings.get("api_version")
    if isinstance(api_version, str) and api_version:
        headers["Stripe-Version"] = api_version
    return source.base_url.rstrip("/"), headers


def _events_page(body: Any, url: str, object_type: str) -> tuple[list[ListedRecord], str | None, bool]:
    """An events list's records (each event's object, in the list's order), its last event id and
    `has_more`; `PullFailed` for anything else."""
    events = body.get("data") if isinstance(body, dict) else None
    has_more = body.get("has_more") if isinstance(body, dict) else None
    if not isinstance(events, list) or not isinstance(has_more, bool):
        raise PullFailed(
            "bad_response", f"{url} did not return a list object with data and has_more", data={"url": url}
        )
    records, last_event_id = [], None
    for index, event in enumerate(events):
        event_id = event.get("id") if isinstance(event, dict) else None
        envelope = event.get("data") if isinstance(event, dict) else None
        event_type = event.get("type") if isinstance(event, dict) else None
        if not isinstance(event_id, str) or not event_id or not isinstance(envelope, dict):
            raise PullFailed(
                "bad_response", f"{url} event [{index}] has no string id and data object", data={"url": url}
            )
        last_event_id = event_id
        record = envelope.get("object")
        record_id = record.get("id") if isinstance(record, dict) else None
        if (
            not isinstance(record, dict)
            or record.get("object") != object_type
            or not isinstance(record_id, str)
        ):
            continue  # e.g. `charge.dispute.created`, whose object is a dispute
        deleted = isinstance(event_type, str) and event_type.endswith(".deleted")
        records.append(
            ListedRecord(
                record_id=record_id,
                data=record,
                created_at=epoch_seconds(record.get("created")),
                action="deleted" if deleted else None,
                occurred_at=epoch_seconds(event.get("created")),
            )
        )
    if has_more and last_event_id is None:
        raise PullFailed("bad_response", f"{url} has more but returned no events", key="empty_page")
    return records, last_event_id, has_more


def _list_page(body: Any, url: str) -> tuple[list[ListedRecord], bool]:
    """A list object's records and `has_more`; `PullFailed` for anything else."""
    items = body.get("data") if isinstance(body, dict) else None
    has_more = body.get("has_more") if isinstance(body, dict) else None
    if not isinstance(items, list) or not isinstance(has_more, bool):
        raise PullFailed(
            "bad_response", f"{url} did not return a list object with data and has_more", data={"url": url}
        )
    records = []
    for index, item in enumerate(items):
        record_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(record_id, str) or not record_id:
            raise PullFailed(
                "bad_response", f"{url} item [{index}] is not an object with a string id", data={"url": url}
            )
        records.append(
            ListedRecord(record_id=record_id, data=item, created_at=epoch_seconds(item.get("created")))
        )
    return records, has_more


PROVIDER = Stripe()
