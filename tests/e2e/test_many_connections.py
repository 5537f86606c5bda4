"""Many connections in one tenant, end to end over real HTTP on the local stack: connections created
through the API, signed webhooks sent across all of them, and the whole log read back through
`GET /events` following `next_cursor`: every event exactly once, in one order, and each connection's own
log (`?connection_id=`) the same events in the same order.

`PULLBRIDGE_SCALE_CONNECTIONS` sets the number of connections (default 300, well under a minute);
`make bench` runs the same exercise with 10,000 (`python -m bench scale`, bench/bench_scale.py).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pullbridge.auth import issue_api_key
from pullbridge.settings import StorageSettings
from pullbridge.storage import Store, dynamodb_client
from pullbridge_local.quickstart import new_webhook_secret
from pullbridge_local.server import LocalStack
from tests.support import standard_webhook_headers

pytestmark = pytest.mark.e2e

CONNECTIONS = int(os.environ.get("PULLBRIDGE_SCALE_CONNECTIONS", "300"))
THREADS = 4
"""Clients at once. The local stack serves each with an execution environment of its own, as Lambda
would: several ingest instances write the tenant's log concurrently."""
MORE_EVERY = 10
"""Every 10th connection gets two more webhooks after its first, sent one after another."""
REDELIVER_EVERY = 25
"""Every 25th connection also gets its first delivery again (same webhook-id): a duplicate."""
SAMPLE = 20
"""Connections read back one by one through `?connection_id=`, spread across the tenant."""
PAGE = 500
CATCH_UP_SECONDS = 30.0
"""How long the read-back keeps polling for events not yet readable (a position held by a commit in
flight is readable once it lands, or once a reader fences it after the 5 s write deadline)."""


@dataclass(frozen=True)
class Connection:
    index: int
    id: str
    secret: str


@dataclass
class ScaleRun:
    """What was sent, what was read back, and everything that is not exactly once in one order."""

    connections: int = 0
    sent: dict[str, tuple[int, int]] = field(default_factory=dict)
    """event id -> (connection index, webhook number on that connection)"""
    by_connection: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """connection id -> its accepted event ids, in the order they were sent"""
    refused: list[str] = field(default_factory=list)
    duplicates_answered: int = 0
    log: list[str] = field(default_factory=list)
    """The tenant log as `GET /events` served it, in order."""
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return len(self.sent)

    def summary(self) -> str:
        return (
            f"connections={self.connections} events={self.accepted} read={len(self.log)} "
            f"redeliveries_answered_as_duplicates={self.duplicates_answered} refused={len(self.refused)} "
            f"problems={len(self.problems)}"
        )


def tenant_key(local_stack: LocalStack, tenant: str) -> str:
    """A new tenant of the local stack and its API key, written straight to the stack's tables."""
    endpoint = local_stack.dynamodb_endpoint
    settings = StorageSettings(
        events_table="EventsTable", control_table="ControlTable", dynamodb_endpoint=endpoint
    )
    return issue_api_key(Store(dynamodb_client(endpoint), settings), tenant, name="scale")


def _http(url: str, api_key: str | None = None) -> httpx.Client:
    # A new TCP connection per request: the local server writes a response's head and body separately,
    # and on a kept-alive connection that costs about 40 ms a request (Nagle's algorithm meeting the
    # client's delayed ACK). A loopback connect costs far less.
    headers = {"connection": "close"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return httpx.Client(base_url=url, timeout=60, headers=headers)


def _body(index: int, number: int) -> bytes:
    return json.dumps(
        {
            "type": "scale.tested",
            "timestamp": "2026-11-24T00:00:00Z",
            "data": {"id": f"rec_{index}_{number}", "connection": index, "number": number},
        }
    ).encode()


def _in_parallel(task: Callable[[Any], None], items: list[Any], threads: int) -> None:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in concurrent.futures.as_completed([pool.submit(task, item) for item in items]):
            future.result()


def _pages(client: httpx.Client, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Pages of `GET /events` from the start, following `next_cursor` until `has_more` is false."""
    cursor = None
    while True:
        query = dict(params, limit=str(PAGE))
        if cursor:
            query["cursor"] = cursor
        response = client.get("/events", params=query)
        response.raise_for_status()
        page = response.json()
        yield page
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return


def exercise_many_connections(
    url: str,
    api_key: str,
    connections: int,
    *,
    threads: int = THREADS,
    progress: Callable[[str], None] = lambda _: None,
) -> ScaleRun:
    """Create `connections` connections of the key's (new, empty) tenant, send webhooks across them, read
    the log back and check it. Raises only when the stack cannot be reached; what it finds is in the run's
    `refused` (requests answered other than 201 or 200) and `problems` (anything not exactly once in one
    order)."""
    run = ScaleRun(connections=connections)
    lock = threading.Lock()
    api, webhooks = _http(url, api_key), _http(url)

    started = time.perf_counter()
    created: list[Connection] = []

    def create(index: int) -> None:
        secret = new_webhook_secret()
        response = api.post(
            "/connections",
            json={"provider": "standard", "name": f"customer {index}", "webhook_secrets": [secret]},
        )
        if response.status_code != 201:
            with lock:
                run.refused.append(
                    f"creating connection {index}: {response.status_code} {response.text[:200]}"
                )
            return
        with lock:
            created.append(Connection(index, response.json()["id"], secret))
            if len(created) % 1_000 == 0:
                progress(f"{len(created)} connections created")

    _in_parallel(create, list(range(connections)), threads)
    created.sort(key=lambda connection: connection.index)
    run.seconds["create"] = time.perf_counter() - started

    started = time.perf_counter()

    def deliver(connection: Connection, number: int, message_id: str) -> httpx.Response:
        body = _body(connection.index, number)
        headers = standard_webhook_headers(connection.secret, message_id, body)
        return webhooks.post(f"/webhooks/{connection.id}", content=body, headers=headers)

    def send_all(connection: Connection) -> None:
        """This connection's webhooks, one after another, so their order is the order sent."""
        count = 3 if connection.index % MORE_EVERY == 0 else 1
        for number in range(count):
            message_id = f"msg_{connection.id}_{number}"
            response = deliver(connection, number, message_id)
            if response.status_code != 200:
                with lock:
                    run.refused.append(f"{connection.index}: {response.status_code} {response.text[:200]}")
                return
            answer = response.json()
            if answer["duplicates"] != 0 or len(answer["event_ids"]) != 1:
                with lock:
                    run.problems.append(f"connection {connection.index}, webhook {number}: answered {answer}")
                return
            (event_id,) = answer["event_ids"]
            with lock:
                if event_id in run.sent:
                    run.problems.append(f"event id {event_id} answered twice")
                run.sent[event_id] = (connection.index, number)
                run.by_connection[connection.id].append(event_id)
                if len(run.sent) % 1_000 == 0:
                    progress(f"{len(run.sent)} webhooks accepted")
            if number == 0 and connection.index % REDELIVER_EVERY == 0:
                again = deliver(connection, 0, message_id)
                if again.status_code != 200 or again.json() != {"event_ids": [event_id], "duplicates": 1}:
                    with lock:
                        run.problems.append(
                            f"redelivery to connection {connection.index}: {again.status_code} {again.text[:200]}"
                        )
                else:
                    with lock:
                        run.duplicates_answered += 1

    _in_parallel(send_all, created, threads)
    run.seconds["webhooks"] = time.perf_counter() - started
    progress(f"{run.accepted} webhooks accepted, {len(run.refused)} refused; reading the log back")

    started = time.perf_counter()
    reader = _http(url, api_key)
    documents: dict[str, dict[str, Any]] = {}
    seen: Counter[str] = Counter()
    cursor_params: dict[str, str] = {}
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        last_cursor = None
        for page in _pages(reader, cursor_params):
            for event in page["data"]:
                run.log.append(event["id"])
                seen[event["id"]] += 1
                documents[event["id"]] = event
            last_cursor = page["next_cursor"]
        if last_cursor:
            cursor_params = {"cursor": last_cursor}
        if set(run.sent) <= set(seen) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # something accepted is not readable yet: a commit in flight, or a gap to fence
    # Resuming from the final cursor finds nothing more: the log holds nothing but what was sent.
    if last_cursor:
        tail = reader.get("/events", params={"cursor": last_cursor, "limit": str(PAGE)})
        tail.raise_for_status()
        if tail.json()["data"]:
            run.problems.append(f"the final cursor still had {len(tail.json()['data'])} events after it")
    run.seconds["read"] = time.perf_counter() - started

    _check_tenant_log(run, seen, documents, created)
    started = time.perf_counter()
    _check_connection_logs(run, reader, created)
    run.seconds["connection_reads"] = time.perf_counter() - started
    for client in (api, webhooks, reader):
        client.close()
    return run


def _check_tenant_log(
    run: ScaleRun, seen: Counter[str], documents: dict[str, dict[str, Any]], created: list[Connection]
) -> None:
    ids_by_index = {connection.index: connection.id for connection in created}
    for event_id, count in seen.items():
        if count > 1:
            run.problems.append(f"{event_id} read {count} times")
        if event_id not in run.sent:
            run.problems.append(f"{event_id} read but never sent")
    run.problems.extend(f"{event_id} sent but never read" for event_id in set(run.sent) - set(seen))
    for event_id, (index, number) in run.sent.items():
        event = documents.get(event_id)
        if event is None:
            continue
        if (
            event["connection_id"] != ids_by_index[index]
            or event["data"] != json.loads(_body(index, number))["data"]
        ):
            run.problems.append(f"{event_id} does not hold what was sent: {event}")
    # One order: each connection's events appear in the tenant log in the order they were sent.
    positions = {event_id: position for position, event_id in enumerate(run.log)}
    for connection_id, sent in run.by_connection.items():
        read_order = sorted(
            (event_id for event_id in sent if event_id in positions), key=positions.__getitem__
        )
        if read_order != [event_id for event_id in sent if event_id in positions]:
            run.problems.append(f"connection {connection_id}: sent {sent}, tenant log order {read_order}")


def _check_connection_logs(run: ScaleRun, reader: httpx.Client, created: list[Connection]) -> None:
    """A sample of connections, each read through `?connection_id=`: its events exactly once, in the order
    they were sent, which is also their order in the tenant log."""
    if not created:
        return
    step = max(1, len(created) // SAMPLE)
    sample = created[::step][:SAMPLE]
    sample += [connection for connection in created[: MORE_EVERY * 3] if connection.index % MORE_EVERY == 0]
    for connection in {connection.index: connection for connection in sample}.values():
        read = [
            event["id"] for page in _pages(reader, {"connection_id": connection.id}) for event in page["data"]
        ]
        if read != run.by_connection.get(connection.id, []):
            run.problems.append(
                f"connection {connection.index} read alone: {read}, sent {run.by_connection.get(connection.id)}"
            )


def test_many_connections_in_one_tenant_give_every_event_exactly_once_in_one_order(
    local_stack: LocalStack,
) -> None:
    key = tenant_key(local_stack, f"scale_{uuid.uuid4().hex[:12]}")

    run = exercise_many_connections(local_stack.url, key, CONNECTIONS)

    assert run.refused == []
    assert run.problems == []
    expected = CONNECTIONS + 2 * len(range(0, CONNECTIONS, MORE_EVERY))
    assert run.accepted == len(run.log) == expected
    assert run.duplicates_answered == len(range(0, CONNECTIONS, REDELIVER_EVERY))
