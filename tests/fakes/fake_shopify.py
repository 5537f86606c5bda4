"""Fake Shopify: `GET /admin/api/{version}/{orders,products,customers}.json`, by id; `limit` (<= 250),
`status` for orders (open by default), `updated_at_min` (ISO 8601, updated at or after), then `Link` with
`page_info`, which carries the filters itself: any other parameter beside it is a 400, as in Shopify."""

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
        if (
            method != "GET"
            or len(parts) != 4
            or parts[:2] != ["admin", "api"]
            or not parts[3].endswith(".json")
        ):
            return None
        collection = parts[3].removesuffix(".json")
        if collection not in SHOPIFY_FIXTURES:
            return None
        return "shopify", lambda request: self._list(parts[2], collection, request)

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
