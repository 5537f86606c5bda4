"""What the fake providers share: a request as an endpoint sees it, its answer, reading parameters, opaque
cursors, times, and the published fixtures the records are made from."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.paths import FIXTURES_DIR as FIXTURES

BASE_TIME = 1_700_000_000
"""Seeded record n was created at BASE_TIME + 60 n."""


class BadRequest(Exception):
    """A request the fake provider refuses with 400, as the real one would."""


@dataclass(frozen=True)
class FakeRequest:
    """A request as an endpoint reads it: its query string, its JSON body (None when it has none or it
    is form-encoded), its form-encoded pairs (None when it is not form-encoded), its headers (names
    lower-case), and the request id the answer will carry."""

    query: dict[str, list[str]]
    body: Any = None
    form: list[tuple[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Answer:
    status: int
    body: Any
    page: int = 1
    headers: dict[str, str] = field(default_factory=dict)


Endpoint = Callable[[FakeRequest], Answer]
"""An endpoint of a fake provider: the request in, the answer out (`BadRequest` for a 400)."""
Route = tuple[str, Endpoint]
"""The provider serving a path, and its endpoint."""


@dataclass(frozen=True)
class Write:
    """An endpoint that changes upstream (a create, an update, a delete). The server injects a write's
    faults around it: a refusal before it runs (nothing is applied), or, for a fault that says so, after
    it ran (the change is made, then the answer fails or stalls)."""

    endpoint: Endpoint

    def __call__(self, request: FakeRequest) -> Answer:
        return self.endpoint(request)


def json_object(request: FakeRequest) -> dict[str, Any] | None:
    """The request's JSON body when it is an object."""
    return request.body if isinstance(request.body, dict) else None


def fixture_json(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def first_item(value: Any) -> Any:
    """The list fixture's first item (`orders.json` holds a list), or the single-record fixture."""
    return value[0] if isinstance(value, list) else value


def iso(epoch: float, offset: str = "Z") -> str:
    """`epoch` as ISO-8601 to the second, in UTC (`Z`) or at a fixed offset such as `-05:00`."""
    if offset == "Z":
        return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = (int(part) for part in offset[1:].split(":"))
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime.fromtimestamp(int(epoch), zone).strftime("%Y-%m-%dT%H:%M:%S") + offset


def iso_ms(epoch: float) -> str:
    """ISO-8601 in UTC with milliseconds, as HubSpot writes times: `2023-11-14T22:13:20.000Z`."""
    moment = datetime.fromtimestamp(round(epoch * 1000) / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: object) -> float | None:
    """Epoch seconds from an ISO-8601 time (a `Z` or an offset), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def encode_cursor(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(value: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def param(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def int_param(query: dict[str, list[str]], name: str, *, default: int, maximum: int | None) -> int:
    raw = param(query, name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (maximum is not None and int(raw) > maximum):
        raise BadRequest(f"{name} must be an integer between 1 and {maximum}")
    return int(raw)


def time_param(query: dict[str, list[str]], name: str) -> float | None:
    """An ISO-8601 time parameter; a 400 when it is there and is not one."""
    raw = param(query, name)
    if raw is None:
        return None
    moment = parse_time(raw)
    if moment is None:
        raise BadRequest(f"{name} is not an ISO 8601 time: {raw}")
    return moment


def number(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return 0
