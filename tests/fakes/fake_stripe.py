"""Fake Stripe: `GET /v1/{collection}` (a list object; `limit` <= 100, `starting_after`) and `GET /v1/events`
(`types[]` or `type`, `created[gte|gt|lte|lt]`, `limit`, `starting_after`), newest first. Every change a
test makes through a dataset is an event, as Stripe emits one: `<object>.created|updated|deleted` (for
subscriptions `customer.subscription.*`), with the object as it was then in `data.object` and, for an
update, the changed fields' old values in `data.previous_attributes`. Charges and payment intents cannot
be deleted in Stripe, so no event reports their delete. Customers and products are also written through
the API (`fake_stripe_writes`), and any object is read by id."""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.datasets import Dataset
from tests.fakes.fake_http import (
    BASE_TIME,
    Answer,
    BadRequest,
    FakeRequest,
    Route,
    fixture_json,
    int_param,
    number,
)
from tests.fakes.fake_stripe_writes import StripeWrites, stamp_updated

STRIPE_COLLECTIONS = {
    "customers": "customer",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "charges": "charge",
    "products": "product",
    "prices": "price",
    "payment_intents": "payment_intent",
}
EVENT_PREFIX = {**{c: o for c, o in STRIPE_COLLECTIONS.items()}, "subscriptions": "customer.subscription"}
DELETES_REPORTED = frozenset({"customers", "invoices", "subscriptions", "products", "prices"})
EVENTS_PARAMETERS = frozenset(
    {
        "types[]",
        "type",
        "created[gte]",
        "created[gt]",
        "created[lte]",
        "created[lt]",
        "limit",
        "starting_after",
    }
)
MAX_TYPES = 20


def stripe_factory(template: dict[str, Any]) -> Callable[[int], dict[str, Any]]:
    prefix = str(template["id"]).split("_", 1)[0]

    def make(seq: int) -> dict[str, Any]:
        record = copy.deepcopy(template)
        record.update(id=f"{prefix}_fake{seq:010d}", created=BASE_TIME + 60 * seq, livemode=False)
        if template.get("object") == "customer":
            record["email"] = f"customer{seq}@example.com"
        if "updated" in template:
            record["updated"] = record["created"]
        return record

    return make


def _type_matches(event_type: str, wanted: list[str]) -> bool:
    return any(
        event_type.startswith(pattern[:-1]) if pattern.endswith("*") else event_type == pattern
        for pattern in wanted
    )


class FakeStripe:
    def __init__(self, lock: threading.RLock, clock: Callable[[], float]) -> None:
        self._lock = lock
        self._clock = clock
        self._events: list[dict[str, Any]] = []
        self._event_ids = itertools.count(1)
        self._request: dict[str, Any] | None = None
        self.datasets: dict[str, Dataset] = {}
        for collection, singular in STRIPE_COLLECTIONS.items():
            dataset = Dataset(
                "stripe",
                collection,
                id_field="id",
                factory=stripe_factory(fixture_json(f"stripe/objects/{singular}.json")),
                sort_key=lambda record, seq: (-number(record.get("created")), -seq),
                sequence=itertools.count(1),
                lock=lock,
                clock=clock,
                stamp=stamp_updated if collection == "products" else None,
            )
            dataset.change_log = self._logger(collection)
            dataset.on_clear = self._forgetter(collection)
            self.datasets[collection] = dataset
        self.writes = StripeWrites(self.datasets, lock, clock, self._set_request)

    def _set_request(self, request: dict[str, Any] | None) -> None:
        """The API request a change comes from, which its event names (`request.id`, `idempotency_key`)."""
        self._request = request

    def route(self, method: str, parts: list[str]) -> Route | None:
        if len(parts) in (2, 3) and parts[0] == "v1" and (method != "GET" or len(parts) == 3):
            return self.writes.route(method, parts)
        if method != "GET" or len(parts) != 2 or parts[0] != "v1":
            return None
        if parts[1] == "events":
            return "stripe", self._list_events
        if parts[1] in STRIPE_COLLECTIONS:
            return "stripe", lambda request: self._list(parts[1], request)
        return None

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first (copies)."""
        with self._lock:
            return [
                {key: value for key, value in event.items() if key != "_collection"}
                for event in copy.deepcopy(self._events)
            ]

    @staticmethod
    def webhook(event: dict[str, Any], secret: str, timestamp: int) -> tuple[dict[str, str], bytes]:
        """The delivery Stripe would send of `event` (one of `events`, e.g. the one a write logged) to an
        endpoint with signing secret `secret`: its headers and body."""
        body = json.dumps(event).encode()
        digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={timestamp},v1={digest}", "Content-Type": "application/json"}, body

    # changes become events

    def _logger(self, collection: str) -> Callable[[str, dict[str, Any], dict[str, Any], float], None]:
        def log(kind: str, record: dict[str, Any], previous: dict[str, Any], at: float) -> None:
            if kind == "deleted" and collection not in DELETES_REPORTED:
                return
            envelope: dict[str, Any] = {"object": record}
            if kind == "updated":
                envelope["previous_attributes"] = previous
            self._events.append(
                {
                    "id": f"evt_fake{next(self._event_ids):012d}",
                    "object": "event",
                    "api_version": "2024-06-20",
                    "created": int(at),
                    "data": envelope,
                    "livemode": False,
                    "pending_webhooks": 0,
                    "request": dict(self._request or {"id": None, "idempotency_key": None}),
                    "type": f"{EVENT_PREFIX[collection]}.{kind}",
                    "_collection": collection,
                }
            )

        return log

    def _forgetter(self, collection: str) -> Callable[[], None]:
        def forget() -> None:
            self._events[:] = [event for event in self._events if event["_collection"] != collection]
            self.writes.clear(collection)

        return forget

    # endpoints

    def _list(self, collection: str, request: FakeRequest) -> Answer:
        query = request.query
        limit = int_param(query, "limit", default=10, maximum=100)
        records = [record for _, record in self.datasets[collection].ordered()]
        return _page(f"/v1/{collection}", records, query, limit)

    def _list_events(self, request: FakeRequest) -> Answer:
        query = request.query
        unknown = sorted(set(query) - EVENTS_PARAMETERS)
        if unknown:
            return _invalid_request(f"Received unknown parameter: {unknown[0]}", unknown[0])
        wanted = query.get("types[]", []) + query.get("type", [])
        if "types[]" in query and "type" in query:
            return _invalid_request("You may pass either type or types, but not both", "types")
        if len(query.get("types[]", [])) > MAX_TYPES:
            return _invalid_request(f"types may hold at most {MAX_TYPES} event types", "types")
        bounds = {name: _integer(query, f"created[{name}]") for name in ("gte", "gt", "lte", "lt")}
        with self._lock:
            events = [
                event
                for event in reversed(self._events)  # newest first, as Stripe lists
                if (not wanted or _type_matches(event["type"], wanted)) and _within(event["created"], bounds)
            ]
        limit = int_param(query, "limit", default=10, maximum=100)
        public = [{key: value for key, value in event.items() if key != "_collection"} for event in events]
        return _page("/v1/events", public, query, limit)


def _page(url: str, items: list[dict[str, Any]], query: dict[str, list[str]], limit: int) -> Answer:
    start = 0
    after = query.get("starting_after", [None])[-1]
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            return _invalid_request(f"No such object: '{after}'", "starting_after", code="resource_missing")
        start = ids.index(after) + 1
    page = [copy.deepcopy(item) for item in items[start : start + limit]]
    body = {"object": "list", "url": url, "has_more": start + limit < len(items), "data": page}
    return Answer(200, body, page=start // limit + 1)


def _invalid_request(message: str, parameter: str, *, code: str = "parameter_unknown") -> Answer:
    error = {"type": "invalid_request_error", "code": code, "param": parameter, "message": message}
    return Answer(400, {"error": error})


def _integer(query: dict[str, list[str]], name: str) -> int | None:
    raw = query.get(name, [None])[-1]
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest(f"Invalid integer: {raw}")
    return int(raw)


def _within(created: int, bounds: dict[str, int | None]) -> bool:
    checks = {
        "gte": lambda bound: created >= bound,
        "gt": lambda bound: created > bound,
        "lte": lambda bound: created <= bound,
        "lt": lambda bound: created < bound,
    }
    return all(bound is None or checks[name](bound) for name, bound in bounds.items())
