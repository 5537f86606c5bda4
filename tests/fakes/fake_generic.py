"""Fake generic source: a REST collection `GET /api/items` (`limit`, `cursor`, `updated_since` as ISO 8601 or
unix seconds; `paging.next_cursor` and `Link`) and an events feed `GET /events` (`limit`, `cursor`;
`{data, next_cursor, has_more}`).

Items are also written, as a plain JSON API: `POST /api/items` (201), `PATCH /api/items/{id}` (200), both
answering `{"data": item}`, `DELETE /api/items/{id}` (204), and `GET /api/items/{id}` (`{"data": item}`).
An item needs a string `name` (422); an unknown id is a 404; errors are `{"error": {"message", "code"}}`.
`id`, `created_at` and `updated_at` are the API's own, and ignored in a request."""

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
    Endpoint,
    FakeRequest,
    Route,
    Write,
    decode_cursor,
    encode_cursor,
    int_param,
    iso,
    param,
    parse_time,
)

UPDATED_SINCE_PARAM = "updated_since"
OWN_FIELDS = ("id", "created_at", "updated_at")


def generic_item(seq: int) -> dict[str, Any]:
    created = iso(BASE_TIME + 60 * seq)
    return {"id": f"item_{seq:06d}", "name": f"Item {seq}", "created_at": created, "updated_at": created}


def generic_event(seq: int) -> dict[str, Any]:
    return {
        "id": f"evt_{seq:06d}",
        "type": "ticket.created",
        "created_at": iso(BASE_TIME + 60 * seq),
        "data": {"id": f"tkt_{seq:06d}", "subject": f"Ticket {seq}", "status": "open"},
    }


def _stamp(record: dict[str, Any], at: float) -> None:
    record["updated_at"] = iso(at)


def _position(cursor: str | None) -> int:
    if cursor is None:
        return 0
    state = decode_cursor(cursor)
    if state is None or not isinstance(state.get("after"), int):
        raise BadRequest("invalid cursor")
    return int(state["after"])


def _updated_since(query: dict[str, list[str]]) -> float | None:
    raw = param(query, UPDATED_SINCE_PARAM)
    if raw is None:
        return None
    moment = float(raw) if raw.isdigit() else parse_time(raw)
    if moment is None:
        raise BadRequest(f"{UPDATED_SINCE_PARAM} is neither ISO 8601 nor unix seconds: {raw}")
    return moment


class FakeGeneric:
    def __init__(
        self, lock: threading.RLock, clock: Callable[[], float], base_url: Callable[[], str]
    ) -> None:
        self._base_url = base_url
        self._lock = lock
        self._clock = clock
        self._ids = itertools.count(1)
        self.datasets = {
            "items": Dataset(
                "generic",
                "items",
                id_field="id",
                factory=generic_item,
                sort_key=lambda record, seq: seq,
                sequence=itertools.count(1),
                lock=lock,
                clock=clock,
                stamp=_stamp,
            ),
            "events": Dataset(
                "generic",
                "events",
                id_field="id",
                factory=generic_event,
                sort_key=lambda record, seq: seq,
                sequence=itertools.count(1),
                lock=lock,
                clock=clock,
            ),
        }

    def route(self, method: str, parts: list[str]) -> Route | None:
        if parts == ["api", "items"] and method == "POST":
            return "generic", Write(self._create)
        if len(parts) == 3 and parts[:2] == ["api", "items"]:
            return self._item_route(method, parts[2])
        endpoints: dict[tuple[str, ...], Endpoint] = {("api", "items"): self._items, ("events",): self._feed}
        endpoint = endpoints.get(tuple(parts)) if method == "GET" else None
        return None if endpoint is None else ("generic", endpoint)

    def _item_route(self, method: str, item_id: str) -> Route | None:
        if method == "GET":
            return "generic", lambda request: self._read(item_id)
        if method == "PATCH":
            return "generic", Write(lambda request: self._update(item_id, request))
        if method == "DELETE":
            return "generic", Write(lambda request: self._delete(item_id))
        return None

    # one item: create, update, delete, read

    def _create(self, request: FakeRequest) -> Answer:
        fields = request.body if isinstance(request.body, dict) else None
        problem = _item_problem(fields, create=True)
        if problem is not None or fields is None:
            return _error(422, problem or "the body is a JSON object", "validation_failed")
        now = iso(self._clock())
        with self._lock:
            item = {
                **{key: value for key, value in fields.items() if key not in OWN_FIELDS},
                "id": f"item_w{next(self._ids):06d}",
                "created_at": now,
                "updated_at": now,
            }
            return Answer(201, {"data": self.datasets["items"].add(item)})

    def _update(self, item_id: str, request: FakeRequest) -> Answer:
        fields = request.body if isinstance(request.body, dict) else None
        with self._lock:
            dataset = self.datasets["items"]
            if item_id not in dataset.ids():
                return _error(404, f"no such item: {item_id}", "not_found")
            problem = _item_problem(fields, create=False)
            if problem is not None or fields is None:
                return _error(422, problem or "the body is a JSON object", "validation_failed")
            changes = {key: value for key, value in fields.items() if key not in OWN_FIELDS}
            return Answer(200, {"data": dataset.update(item_id, **changes)})

    def _delete(self, item_id: str) -> Answer:
        with self._lock:
            dataset = self.datasets["items"]
            if item_id not in dataset.ids():
                return _error(404, f"no such item: {item_id}", "not_found")
            dataset.delete(item_id)
        return Answer(204, None)

    def _read(self, item_id: str) -> Answer:
        try:
            return Answer(200, {"data": self.datasets["items"].get(item_id)})
        except KeyError:
            return _error(404, f"no such item: {item_id}", "not_found")

    def _items(self, request: FakeRequest) -> Answer:
        query = request.query
        limit = int_param(query, "limit", default=100, maximum=1000)
        after = _position(param(query, "cursor"))
        since = _updated_since(query)
        rows = [
            (seq, record)
            for seq, record in self.datasets["items"].ordered()
            if since is None or (parse_time(record.get("updated_at")) or 0) >= since
        ]
        before = sum(1 for seq, _ in rows if seq <= after)
        remaining = [(seq, record) for seq, record in rows if seq > after]
        page = remaining[:limit]
        next_cursor = encode_cursor({"after": page[-1][0]}) if len(remaining) > limit else None
        headers = {}
        if next_cursor is not None:
            carried = {UPDATED_SINCE_PARAM: param(query, UPDATED_SINCE_PARAM)} if since is not None else {}
            next_url = f"{self._base_url()}/api/items?" + urlencode(
                {**carried, "limit": limit, "cursor": next_cursor}
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        body = {"data": [copy.deepcopy(record) for _, record in page], "paging": {"next_cursor": next_cursor}}
        return Answer(200, body, page=before // limit + 1, headers=headers)

    def _feed(self, request: FakeRequest) -> Answer:
        query = request.query
        limit = int_param(query, "limit", default=100, maximum=1000)
        after = _position(param(query, "cursor"))
        rows = self.datasets["events"].ordered()
        before = sum(1 for seq, _ in rows if seq <= after)
        remaining = [(seq, record) for seq, record in rows if seq > after]
        page = remaining[:limit]
        # The cursor after the last event returned; with nothing new, the position that was asked for.
        next_cursor = encode_cursor({"after": page[-1][0] if page else after})
        body = {
            "data": [copy.deepcopy(record) for _, record in page],
            "next_cursor": next_cursor,
            "has_more": len(remaining) > limit,
        }
        return Answer(200, body, page=before // limit + 1)


def _item_problem(fields: dict[str, Any] | None, *, create: bool) -> str | None:
    if fields is None:
        return "the body is a JSON object"
    name = fields.get("name")
    if (create or "name" in fields) and (not isinstance(name, str) or not name.strip()):
        return "name is required: a non-empty string"
    return None


def _error(status: int, message: str, code: str) -> Answer:
    return Answer(status, {"error": {"message": message, "code": code}})
