"""What a long poll costs while it waits, and that waiting cheaply still delivers at once and loses nothing.

The API handler runs with an `EventReader` on a fake clock whose `sleep` moves time forward, so a 20 s
wait takes no real time and a webhook can land at a chosen moment of the wait. Every DynamoDB call of the
API's client is recorded with its parameters (botocore's `before-parameter-build`) and counted with
`counting()`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from pullbridge.events import POLL_INTERVAL_SECONDS, EventReader
from pullbridge.settings import ApiSettings
from tests.integration.conftest import counting
from tests.support import api_event, json_body, lambda_context, standard_webhook_event

WAIT_SECONDS = 20
BUDGET_PER_MINUTE = 60  # read units one waiting client may spend (issue 12)


class FakeTime:
    """A clock that only `sleep` moves, with actions run once it passes their moment."""

    def __init__(self) -> None:
        self.now = time.time()
        self._due: list[tuple[float, Callable[[], object]]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        for entry in [entry for entry in self._due if entry[0] <= self.now]:
            self._due.remove(entry)
            entry[1]()

    def at(self, moment: float, action: Callable[[], object]) -> None:
        self._due.append((moment, action))


@pytest.fixture
def fake_time(api: ModuleType, monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """The API's reader, on a fake clock (the same store and cursor codec)."""
    fake = FakeTime()
    wiring = sys.modules["api_routes.wiring"]  # the API's services, which its routes read at each request
    reader = EventReader(
        api.store,
        wiring.codec,
        clock=fake.clock,
        sleep=fake.sleep,
        write_deadline_seconds=wiring.settings.write_deadline_seconds,
    )
    monkeypatch.setattr(wiring, "reader", reader)
    return fake


@contextmanager
def recording(client: Any) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(operation, parameters) of every call the client makes, in order."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, dict(params)))

    client.meta.events.register("before-parameter-build.dynamodb.*", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.*", record)


def read_units(calls: list[tuple[str, dict[str, Any]]]) -> float:
    """DynamoDB's read units for these calls. Every item read here is under 4 KB, so a GetItem or a Query
    costs one 4 KB unit: 1 read unit when strongly consistent, 0.5 when eventually consistent."""
    units = 0.0
    for operation, params in calls:
        assert operation in {"GetItem", "Query"}, f"{operation} on a read path"
        units += 1.0 if params.get("ConsistentRead") else 0.5
    return units


def list_events(api: ModuleType, key: str, **query: str) -> tuple[int, Any]:
    response = api.lambda_handler(api_event("list_events.json", key, query=query), lambda_context())
    return response["statusCode"], json_body(response)


def deliver(ingest: ModuleType, connection_id: str, message_id: str) -> str:
    body = json.dumps({"type": "invoice.paid", "timestamp": "2026-11-24T00:00:00Z", "data": {"n": 1}})
    response = ingest.lambda_handler(
        standard_webhook_event(connection_id, body, message_id=message_id), lambda_context()
    )
    assert response["statusCode"] == 200, response["body"]
    [event_id] = json_body(response)["event_ids"]
    return str(event_id)


def caught_up(api: ModuleType, ingest: ModuleType, key: str, writes_to: str, **filters: str) -> str:
    """A tenant with some history, and a cursor at its end: from here on the tenant is idle."""
    deliver(ingest, writes_to, "history")
    status, page = list_events(api, key, **filters)
    assert status == 200
    assert len(page["data"]) == 1
    return str(page["next_cursor"])


def probes(calls: list[tuple[str, dict[str, Any]]], settings: ApiSettings) -> list[dict[str, Any]]:
    """The GetItems of the events table: the head probes (the API key lives in the control table)."""
    table = settings.events_table
    return [params for name, params in calls if name == "GetItem" and params["TableName"] == table]


@pytest.mark.parametrize("by_connection", [False, True], ids=["tenant_log", "connection_log"])
def test_an_idle_long_poll_probes_with_eventually_consistent_get_items_within_the_read_budget(
    api: ModuleType,
    ingest: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    settings: ApiSettings,
    fake_time: FakeTime,
    by_connection: bool,
) -> None:
    filters = {"connection_id": connection["id"]} if by_connection else {}
    cursor = caught_up(api, ingest, api_key, connection["id"], **filters)
    started = fake_time.now
    with counting(api.store._client) as counted, recording(api.store._client) as calls:
        status, page = list_events(api, api_key, cursor=cursor, wait=str(WAIT_SECONDS), **filters)

    assert (status, page["data"], page["next_cursor"]) == (200, [], cursor)
    # It held for the whole wait and not past it (probes take no fake time)
    assert fake_time.now - started == pytest.approx(WAIT_SECONDS)
    # Only key lookups, the log's consistent Query and head probes: nothing scans
    assert set(counted.names) <= {"GetItem", "Query"}
    assert [name for name, _ in calls] == counted.names
    # The head probes are eventually consistent GetItems (half a read unit), not Queries, and each
    # consistent read of the log is a Query
    head_probes = probes(calls, settings)
    assert head_probes
    assert all(probe["ConsistentRead"] is False for probe in head_probes)
    assert all(params["ConsistentRead"] is True for name, params in calls if name == "Query")
    # Often enough to stay fresh (at least once a second), rarely enough to stay within the budget
    assert len(head_probes) >= WAIT_SECONDS
    per_minute = read_units(calls) * 60 / WAIT_SECONDS
    assert per_minute <= BUDGET_PER_MINUTE, f"{per_minute} read units a minute, {len(head_probes)} probes"


def test_an_event_written_during_the_wait_is_returned_at_the_next_probe(
    api: ModuleType,
    ingest: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    settings: ApiSettings,
    fake_time: FakeTime,
) -> None:
    cursor = caught_up(api, ingest, api_key, connection["id"])
    started = fake_time.now
    written: list[str] = []
    fake_time.at(started + 3.0, lambda: written.append(deliver(ingest, connection["id"], "during")))
    with recording(api.store._client) as calls:
        status, page = list_events(api, api_key, cursor=cursor, wait=str(WAIT_SECONDS))

    assert status == 200
    assert [event["id"] for event in page["data"]] == written
    # Well before the deadline: at the first probe after the write
    assert 3.0 < fake_time.now - started <= 3.0 + POLL_INTERVAL_SECONDS + 1e-6
    # That probe was an eventually consistent GetItem whose "yes" led to the consistent read that served it
    (*_, (probe_name, probe), (read_name, read)) = calls
    assert probe_name == "GetItem"
    assert (probe["TableName"], probe["ConsistentRead"]) == (settings.events_table, False)
    assert (read_name, read["ConsistentRead"]) == ("Query", True)
    assert all(probe["ConsistentRead"] is False for probe in probes(calls, settings))


@pytest.fixture
def lagging_probes(api: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """`lag(n)`: the next n eventually consistent head probes that would see the head move answer with
    the head as the previous probe saw it, as a replica that has not yet applied the write would."""
    real_log_head = api.store.log_head
    stale: dict[str, int] = {"left": 0}
    last_seen: dict[tuple[str, str | None], int] = {}

    def log_head(tenant_id: str, connection_id: str | None, *, consistent: bool = True) -> int:
        head: int = real_log_head(tenant_id, connection_id, consistent=consistent)
        key = (tenant_id, connection_id)
        if not consistent and stale["left"] > 0 and key in last_seen and head > last_seen[key]:
            stale["left"] -= 1
            return last_seen[key]
        last_seen[key] = head
        return head

    monkeypatch.setattr(api.store, "log_head", log_head)

    def lag(probes: int) -> None:
        stale["left"] = probes

    return lag


def test_a_probe_that_lags_a_write_delays_the_event_by_an_interval_and_loses_nothing(
    api: ModuleType,
    ingest: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    fake_time: FakeTime,
    lagging_probes: Callable[[int], None],
) -> None:
    cursor = caught_up(api, ingest, api_key, connection["id"])
    started = fake_time.now
    written: list[str] = []
    fake_time.at(started + 3.0, lambda: written.append(deliver(ingest, connection["id"], "during")))
    lagging_probes(2)
    status, page = list_events(api, api_key, cursor=cursor, wait=str(WAIT_SECONDS))

    assert status == 200
    assert [event["id"] for event in page["data"]] == written
    # Two stale "no"s, then the probe that sees it
    assert 3.0 + 2 * POLL_INTERVAL_SECONDS < fake_time.now - started <= 3.0 + 3 * POLL_INTERVAL_SECONDS + 1e-6


def test_an_event_a_lagging_probe_misses_at_the_deadline_is_served_by_the_next_request(
    api: ModuleType,
    ingest: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    fake_time: FakeTime,
    lagging_probes: Callable[[int], None],
) -> None:
    cursor = caught_up(api, ingest, api_key, connection["id"])
    started = fake_time.now
    written: list[str] = []
    fake_time.at(
        started + WAIT_SECONDS - 0.01, lambda: written.append(deliver(ingest, connection["id"], "late"))
    )
    lagging_probes(1)
    status, page = list_events(api, api_key, cursor=cursor, wait=str(WAIT_SECONDS))

    # The last probe, at the deadline, said "no": the request answers with what it had and the same cursor
    assert len(written) == 1
    assert (status, page["data"], page["next_cursor"]) == (200, [], cursor)
    assert fake_time.now - started == pytest.approx(WAIT_SECONDS)
    # The cursor lies behind the event, and the next request's consistent read serves it
    status, page = list_events(api, api_key, cursor=cursor)
    assert status == 200
    assert [event["id"] for event in page["data"]] == written
