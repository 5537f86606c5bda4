"""An in-memory pullbridge API on httpx.MockTransport, and the fixtures the client's tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pullbridge_client import (
    Client,
    Event,
)

BASE_URL = "https://pullbridge.test"
API_KEY = "pb_test_key"


def _error(status: int, error_type: str, message: str, key: str = "k", **data: Any) -> httpx.Response:
    body = {"error": {"type": error_type, "message": message, "key": key, "data": data}}
    return httpx.Response(status, json=body)


def _event(position: int, event_type: str = "invoice.paid") -> dict[str, Any]:
    return {
        "id": f"evt_{position:04d}",
        "connection_id": "conn_1",
        "provider": "standard",
        "collection": None,
        "type": event_type,
        "action": None,
        "record_id": f"inv_{position}",
        "source": "webhook",
        "pull_id": None,
        "occurred_at": None,
        "received_at": f"2026-01-01T00:00:{position % 60:02d}Z",
        "stale": False,
        "data": {"n": position},
    }


class FakeApi:
    """`GET /events` over an in-memory log with cursors `c<position>`, plus whatever `routes` answer."""

    def __init__(self, events: int = 0) -> None:
        self.log: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []
        self.on_empty_page: Callable[[], None] | None = None
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        for _ in range(events):
            self.append()

    def append(self, event_type: str = "invoice.paid") -> None:
        self.log.append(_event(len(self.log) + 1, event_type))

    @property
    def event_requests(self) -> list[httpx.Request]:
        return [request for request in self.requests if request.url.path == "/events"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "unauthorized", "invalid API key", "invalid_api_key")
        route = self.routes.get((request.method, request.url.path))
        if route is not None:
            return route(request)
        if (request.method, request.url.path) == ("GET", "/events"):
            return self._events(request)
        return _error(404, "not_found", "no route", "no_route")

    def _events(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        cursor = params.get("cursor")
        if cursor is not None and not cursor.startswith("c"):
            return _error(400, "bad_request", "invalid cursor", "invalid_cursor", field="cursor")
        position = int(cursor[1:]) if cursor else 0
        limit = int(params.get("limit", "100"))
        wanted = params.get("type")
        after = [(index, e) for index, e in enumerate(self.log, 1) if index > position]
        if not after and self.on_empty_page is not None:
            self.on_empty_page()
            after = [(index, e) for index, e in enumerate(self.log, 1) if index > position]
        matching = [(index, e) for index, e in after if wanted is None or e["type"] == wanted]
        page = matching[:limit]
        next_position = page[-1][0] if page else (after[-1][0] if after else position)
        body = {
            "data": [event for _, event in page],
            "next_cursor": f"c{next_position}",
            "has_more": len(matching) > limit,
        }
        return httpx.Response(200, json=body)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(api: FakeApi, sleeps: list[float]) -> Iterator[Client]:
    http = httpx.Client(transport=httpx.MockTransport(api))
    with http, Client(BASE_URL, API_KEY, http=http, sleep=sleeps.append) as pullbridge:
        yield pullbridge


def _ids(events: Iterator[Event] | list[Event]) -> list[str]:
    return [event.id for event in events]


def _scripted(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A route answering with each response in turn (an exception is raised as a transport failure)."""
    remaining = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        response = remaining.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    return answer
