"""Fake Shopify: `GET /admin/api/{version}/{orders,products,customers}.json`, by id; `limit` (<= 250),
`status` for orders (open by default), `updated_at_min` (ISO 8601, updated at or after), then `Link` with
`page_info`, which carries the filters itself: any other parameter beside it is a 400, as in Shopify.

Products and customers are also written, as the REST Admin API does: `POST .../{collection}.json` with
`{"product": {...}}` (201), `PUT .../{collection}/{id}.json` (200), `DELETE .../{collection}/{id}.json`
(200, `{}`), and read one by one, `GET .../{collection}/{id}.json` (`{"product": {...}}`). A missing root
key is a 400 (`{"errors": {"product": "Required parameter missing or invalid"}}`); a product needs a
`title`, a customer an email, a phone or a name, and an email is unique (422, `{"errors": {field:
[messages]}}`); an unknown id is a 404 (`{"errors": "Not Found"}`). Fields Shopify does not take from a
request (`id`, times, counters) are ignored, as it ignores them."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tests.fakes.datasets import Dataset
from tests.fakes.fake_http import (
    BASE_TIME,
    Answer,
    BadRequest,
    FakeRequest,
    Route,
    Write,
    decode_cursor,
    encode_cursor,
    first_item,
    fixture_json,
    int_param,
    iso,
    number,
    param,
    parse_time,
    time_param,
)

SHOPIFY_FIXTURES = {
    "orders": ("orders.json", "orders"),
    "products": ("product.json", "product"),
    "customers": ("customer.json", "customer"),
}
STORE_OFFSET = "-05:00"
"""The store's time zone, in which Shopify writes its times."""
SINGULAR = {"products": "product", "customers": "customer"}
WRITABLE_FIELDS = {
    "products": {
        "title", "body_html", "vendor", "product_type", "handle", "tags", "status", "published_scope",
        "template_suffix", "variants", "options", "images", "published_at",
    },
    "customers": {
        "email", "first_name", "last_name", "phone", "note", "tags", "tax_exempt", "verified_email",
        "accepts_marketing", "addresses", "state", "multipass_identifier",
    },
}  # fmt: skip
NOT_FOUND = {"errors": "Not Found"}


def shopify_factory(template: dict[str, Any], collection: str) -> Callable[[int], dict[str, Any]]:
    def make(seq: int) -> dict[str, Any]:
        created = iso(BASE_TIME + 60 * seq, STORE_OFFSET)
        record = copy.deepcopy(template)
        record.update(id=5_000_000_000 + seq, created_at=created, updated_at=created)
        if collection == "orders":
            closed = seq % 4 == 0
            record.update(
                name=f"#{1000 + seq}", order_number=1000 + seq, closed_at=created if closed else None
            )
        elif collection == "products":
            record.update(title=f"Product {seq}", handle=f"product-{seq}")
        else:
            record.update(email=f"customer{seq}@example.com")
        return record

    return make


def _stamp(record: dict[str, Any], at: float) -> None:
    record["updated_at"] = iso(at, STORE_OFFSET)


def _order_status_matches(order: dict[str, Any], status: str) -> bool:
    if status == "any":
        return True
    if status == "cancelled":
        return order.get("cancelled_at") is not None
    closed = order.get("closed_at") is not None or order.get("cancelled_at") is not None
    return closed if status == "closed" else not closed


class FakeShopify:
    def __init__(
        self, lock: threading.RLock, clock: Callable[[], float], base_url: Callable[[], str]
    ) -> None:
        self._base_url = base_url
        self._lock = lock
        self._clock = clock
        self._ids = itertools.count(7_000_000_001)
        self.datasets = {
            collection: Dataset(
                "shopify",
                collection,
                id_field="id",
                factory=shopify_factory(first_item(fixture_json(f"shopify/rest/{name}")[key]), collection),
                sort_key=lambda record, seq: number(record.get("id")),
                sequence=itertools.count(1),
                lock=lock,
                clock=clock,
                stamp=_stamp,
            )
            for collection, (name, key) in SHOPIFY_FIXTURES.items()
        }

    def route(self, method: str, parts: list[str]) -> Route | None:
        if len(parts) not in (4, 5) or parts[:2] != ["admin", "api"] or not parts[-1].endswith(".json"):
            return None
        collection = parts[3].removesuffix(".json")
        if collection not in SHOPIFY_FIXTURES:
            return None
        if len(parts) == 5:
            return self._one_route(method, collection, parts[4].removesuffix(".json"))
        if method == "POST" and collection in SINGULAR:
            return "shopify", Write(lambda request: self._create(collection, request))
        if method != "GET":
            return None
        return "shopify", lambda request: self._list(parts[2], collection, request)

    def _one_route(self, method: str, collection: str, record_id: str) -> Route | None:
        if method == "GET":
            return "shopify", lambda request: self._read(collection, record_id)
        if collection not in SINGULAR:
            return None
        if method == "PUT":
            return "shopify", Write(lambda request: self._update(collection, record_id, request))
        if method == "DELETE":
            return "shopify", Write(lambda request: self._delete(collection, record_id))
        return None

    # one record: create, update, delete, read

    def _create(self, collection: str, request: FakeRequest) -> Answer:
        fields = _root(collection, request)
        if isinstance(fields, Answer):
            return fields
        with self._lock:
            record = self._new(collection)
            record.update(_writable(collection, fields))
            problems = self._problems(collection, record, None)
            if problems:
                return Answer(422, {"errors": problems})
            if collection == "products" and "handle" not in fields:
                record["handle"] = _handle(str(record["title"]))
            return Answer(201, {SINGULAR[collection]: self.datasets[collection].add(record)})

    def _update(self, collection: str, record_id: str, request: FakeRequest) -> Answer:
        fields = _root(collection, request)
        if isinstance(fields, Answer):
            return fields
        with self._lock:
            dataset = self.datasets[collection]
            try:
                current = dataset.get(record_id)
            except KeyError:
                return Answer(404, NOT_FOUND)
            changes = _writable(collection, fields)
            problems = self._problems(collection, {**current, **changes}, record_id)
            if problems:
                return Answer(422, {"errors": problems})
            return Answer(200, {SINGULAR[collection]: dataset.update(record_id, **changes)})

    def _delete(self, collection: str, record_id: str) -> Answer:
        with self._lock:
            try:
                self.datasets[collection].delete(record_id)
            except KeyError:
                return Answer(404, NOT_FOUND)
        return Answer(200, {})

    def _read(self, collection: str, record_id: str) -> Answer:
        singular = SINGULAR.get(collection, collection.removesuffix("s"))
        try:
            return Answer(200, {singular: self.datasets[collection].get(record_id)})
        except KeyError:
            return Answer(404, NOT_FOUND)

    def _problems(
        self, collection: str, record: dict[str, Any], record_id: str | None
    ) -> dict[str, list[str]]:
        """What Shopify's validations say of the record, as `{field: [messages]}`."""
        if collection == "products":
            return {} if str(record.get("title") or "").strip() else {"title": ["can't be blank"]}
        if not any(record.get(name) for name in ("email", "phone", "first_name", "last_name")):
            return {"base": ["A name, phone number, or email address must be present"]}
        email = record.get("email")
        if email and "@" not in str(email):
            return {"email": ["is invalid"]}
        taken = any(
            other.get("email") == email and str(other.get("id")) != record_id
            for other in self.datasets["customers"].records()
        )
        return {"email": ["has already been taken"]} if email and taken else {}

    def _new(self, collection: str) -> dict[str, Any]:
        record_id = next(self._ids)
        now = iso(self._clock(), STORE_OFFSET)
        template = first_item(
            fixture_json(f"shopify/rest/{SHOPIFY_FIXTURES[collection][0]}")[SINGULAR[collection]]
        )
        record: dict[str, Any] = copy.deepcopy(template)
        record.update(id=record_id, created_at=now, updated_at=now)
        if collection == "products":
            record.update(body_html=None, vendor=None, product_type="", tags="", images=[], published_at=now)
            record["variants"] = [_default_variant(record_id, now)]
            record["options"] = [
                {
                    "id": record_id,
                    "product_id": record_id,
                    "name": "Title",
                    "position": 1,
                    "values": ["Default Title"],
                }
            ]
        else:
            record.update(
                email=None, first_name=None, last_name=None, note=None, tags="", orders_count=0,
                total_spent="0.00", last_order_id=None, last_order_name=None, addresses=[],
                default_address=None, state="disabled", verified_email=False,
            )  # fmt: skip
        return record

    def _list(self, version: str, collection: str, request: FakeRequest) -> Answer:
        query = request.query
        limit = int_param(query, "limit", default=50, maximum=250)
        page_info = param(query, "page_info")
        if page_info is not None:
            if set(query) - {"limit", "page_info"}:
                raise BadRequest("page_info cannot be combined with other filters")
            state = decode_cursor(page_info)
            if state is None:
                raise BadRequest("Invalid value.")
        else:
            state = {"status": param(query, "status"), "after": 0, "page": 1}
            updated_min = time_param(query, "updated_at_min")
            if updated_min is not None:
                state["updated_at_min"] = updated_min
        records = [record for _, record in self.datasets[collection].ordered()]
        if collection == "orders":
            state["status"] = state.get("status") or "open"
            records = [record for record in records if _order_status_matches(record, state["status"])]
        if state.get("updated_at_min") is not None:
            records = [
                r for r in records if (parse_time(r.get("updated_at")) or 0) >= state["updated_at_min"]
            ]
        remaining = [record for record in records if number(record.get("id")) > int(state.get("after", 0))]
        page = [copy.deepcopy(record) for record in remaining[:limit]]
        headers = {}
        page_number = int(state.get("page", 1))
        if len(remaining) > limit:
            cursor = encode_cursor({**state, "after": page[-1]["id"], "page": page_number + 1})
            next_url = f"{self._base_url()}/admin/api/{version}/{collection}.json?" + urlencode(
                {"limit": limit, "page_info": cursor}
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Answer(200, {collection: page}, page=page_number, headers=headers)


def _root(collection: str, request: FakeRequest) -> dict[str, Any] | Answer:
    """The object under the request's root key (`product`), or Shopify's 400 when it is missing."""
    singular = SINGULAR[collection]
    body = request.body
    fields = body.get(singular) if isinstance(body, dict) else None
    if not isinstance(fields, dict):
        return Answer(400, {"errors": {singular: "Required parameter missing or invalid"}})
    return fields


def _writable(collection: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a request may set (tags as Shopify keeps them, one comma-separated string)."""
    found = {
        name: copy.deepcopy(value) for name, value in fields.items() if name in WRITABLE_FIELDS[collection]
    }
    if isinstance(found.get("tags"), list):
        found["tags"] = ", ".join(str(tag) for tag in found["tags"])
    return found


def _handle(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _default_variant(product_id: int, now: str) -> dict[str, Any]:
    return {
        "id": product_id + 1,
        "product_id": product_id,
        "title": "Default Title",
        "price": "0.00",
        "sku": "",
        "position": 1,
        "inventory_policy": "deny",
        "compare_at_price": None,
        "fulfillment_service": "manual",
        "inventory_management": None,
        "option1": "Default Title",
        "option2": None,
        "option3": None,
        "created_at": now,
        "updated_at": now,
        "taxable": True,
        "grams": 0,
        "requires_shipping": True,
    }
