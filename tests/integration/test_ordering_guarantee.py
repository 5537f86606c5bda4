"""The delivery guarantee under concurrency: every poller that follows `next_cursor` sees every event of
its filter exactly once, in one order, while writers stall between taking a position and committing.

Writers are separate Store instances (separate Lambdas). A botocore hook stalls their commits at random,
some past the write deadline so that readers fence their positions and the writers must retry. One writer
dies outright after taking a position. Pollers read at random page sizes, unfiltered and per connection.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pullbridge.connections import create_connection
from pullbridge.cursors import CursorCodec
from pullbridge.events import EventFilters, EventReader
from pullbridge.models import ConnectionCreate
from pullbridge.settings import Settings
from pullbridge.storage import ConnectionGuard, EventDraft, Store, dynamodb_client
from tests.conftest import CURSOR_SECRET
from tests.support import TEST_SECRET

WRITERS_PER_CONNECTION = 3
EVENTS_PER_WRITER = 15
DEADLINE_SECONDS = 0.4


@dataclass
class StallingCommits:
    """Delays TransactWriteItems, i.e. the step between taking a position and committing it."""

    rng: random.Random
    long_stalls: int = 0
    commits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, **_: Any) -> None:
        with self.lock:
            self.commits += 1
            roll = self.rng.random()
        if roll < 0.08:
            with self.lock:
                self.long_stalls += 1
            time.sleep(DEADLINE_SECONDS * 2.5)  # past the deadline: a reader will fence this position
        elif roll < 0.5:
            time.sleep(self.rng.uniform(0, DEADLINE_SECONDS / 2))


def _document(connection_id: str, label: str) -> dict[str, Any]:
    return {
        "connection_id": connection_id,
        "provider": "standard",
        "collection": None,
        "type": "test.written",
        "action": None,
        "record_id": label,
        "source": "webhook",
        "pull_id": None,
        "occurred_at": None,
        "received_at": "2026-11-24T00:00:00.000Z",
        "data": {"label": label},
    }


def test_pollers_see_every_event_exactly_once_in_one_order_despite_stalled_writers(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"write_deadline_seconds": DEADLINE_SECONDS})
    setup = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    connections = [
        create_connection(
            setup,
            settings,
            "t_alpha",
            ConnectionCreate(provider="standard", name=n, webhook_secrets=[TEST_SECRET]),
        )
        for n in ("a", "b")
    ]
    stalls = StallingCommits(random.Random(7))
    committed: dict[str, list[str]] = {c.id: [] for c in connections}
    committed_lock = threading.Lock()
    writers_done = threading.Event()
    errors: list[BaseException] = []

    def writer(connection_index: int, writer_index: int) -> None:
        connection = connections[connection_index]
        client = dynamodb_client(settings.dynamodb_endpoint)
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", stalls)
        store = Store(client, settings)
        try:
            for n in range(EVENTS_PER_WRITER):
                label = f"{connection.id}/{writer_index}/{n}"
                result = store.append(
                    "t_alpha",
                    connection.id,
                    [EventDraft(connection.id, _document(connection.id, label), delivery_id=label)],
                    guard=ConnectionGuard(connection.id, connection.version),
                )
                with committed_lock:
                    committed[connection.id].extend(result.event_ids)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    def poller(filters: EventFilters, seen: list[str], seed: int) -> None:
        rng = random.Random(seed)
        reader = EventReader(
            Store(dynamodb_client(settings.dynamodb_endpoint), settings),
            CursorCodec(CURSOR_SECRET),
            write_deadline_seconds=DEADLINE_SECONDS,
        )
        cursor = None
        quiet_after_writers = 0
        try:
            while quiet_after_writers < 2:
                page = reader.list_events("t_alpha", filters, cursor=cursor, limit=rng.randint(1, 12))
                seen.extend(event["id"] for event in page.data)
                cursor = page.next_cursor
                if writers_done.is_set() and not page.data and not page.has_more:
                    quiet_after_writers += 1
                    time.sleep(DEADLINE_SECONDS * 1.5)  # let any fenced gap resolve before the final look
                else:
                    time.sleep(rng.uniform(0, 0.03))
        except BaseException as exc:
            errors.append(exc)

    # A writer that dies after taking a position: its position must be fenced, not waited on forever.
    setup._allocate("t_alpha", connections[0].id, 1)

    seen_by: dict[str, list[str]] = {}
    pollers = []
    for index, filters in enumerate(
        [
            EventFilters(),
            EventFilters(),
            EventFilters(connection_id=connections[0].id),
            EventFilters(connection_id=connections[1].id),
        ]
    ):
        seen_by[f"poller{index}"] = seen = []
        pollers.append(threading.Thread(target=poller, args=(filters, seen, index)))
    writers = [
        threading.Thread(target=writer, args=(c, w))
        for c in range(len(connections))
        for w in range(WRITERS_PER_CONNECTION)
    ]
    for thread in pollers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in pollers:
        thread.join(timeout=60)
    assert not errors, errors

    all_committed = committed[connections[0].id] + committed[connections[1].id]
    assert len(all_committed) == len(connections) * WRITERS_PER_CONNECTION * EVENTS_PER_WRITER
    assert stalls.long_stalls > 0, "the test must stall some writers past the deadline"

    # Every unfiltered poller saw every event exactly once, and all in one order
    assert len(seen_by["poller0"]) == len(set(seen_by["poller0"]))
    assert set(seen_by["poller0"]) == set(all_committed)
    assert seen_by["poller0"] == seen_by["poller1"]
    # Each connection's poller saw exactly that connection's events, in the same relative order
    for name, connection in (("poller2", connections[0]), ("poller3", connections[1])):
        assert sorted(seen_by[name]) == sorted(committed[connection.id])
        assert seen_by[name] == [
            event_id for event_id in seen_by["poller0"] if event_id in set(committed[connection.id])
        ]
