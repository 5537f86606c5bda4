"""The delivery guarantee under concurrency, summarised (the approach of
`tests/integration/test_ordering_guarantee.py`): writers in separate Stores stall between taking a position
and committing it, some past the write deadline so readers fence their positions and they retry; one
writer dies holding a position; pollers follow `next_cursor` at random page sizes, unfiltered and per
connection. Counted: events committed, and per poller the events it skipped and saw twice."""

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
from tests.bench.bench_common import CURSOR_SECRET, TENANT, Rig, figure, log
from tests.support import TEST_SECRET

CONNECTIONS = 2
WRITERS_PER_CONNECTION = 3
EVENTS_PER_WRITER = 15
DEADLINE_SECONDS = 0.4


@dataclass
class StallingCommits:
    """A botocore hook that delays TransactWriteItems: the step between taking a position and committing."""

    rng: random.Random
    long_stalls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, **_: Any) -> None:
        with self.lock:
            roll = self.rng.random()
            self.long_stalls += roll < 0.08
        if roll < 0.08:
            time.sleep(DEADLINE_SECONDS * 2.5)  # past the deadline: a reader fences this position
        elif roll < 0.5:
            time.sleep(roll * DEADLINE_SECONDS / 2)


def _document(connection_id: str, label: str) -> dict[str, Any]:
    return {
        "connection_id": connection_id,
        "provider": "standard",
        "collection": None,
        "type": "bench.written",
        "action": None,
        "record_id": label,
        "source": "webhook",
        "pull_id": None,
        "occurred_at": None,
        "received_at": "2026-11-24T00:00:00.000Z",
        "data": {"label": label},
    }


def run(rig: Rig) -> None:
    settings: Settings = rig.fresh_tables(write_deadline_seconds=DEADLINE_SECONDS)
    setup = rig.store(settings)
    connections = [
        create_connection(
            setup,
            settings,
            TENANT,
            ConnectionCreate(provider="standard", name=f"c{n}", webhook_secrets=[TEST_SECRET]),
        )
        for n in range(CONNECTIONS)
    ]
    stalls = StallingCommits(random.Random(7))
    committed: dict[str, list[str]] = {c.id: [] for c in connections}
    lock = threading.Lock()
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
                    TENANT,
                    connection.id,
                    [EventDraft(connection.id, _document(connection.id, label), delivery_id=label)],
                    guard=ConnectionGuard(connection.id, connection.version),
                )
                with lock:
                    committed[connection.id].extend(result.event_ids)
        except BaseException as exc:
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
                page = reader.list_events(TENANT, filters, cursor=cursor, limit=rng.randint(1, 12))
                seen.extend(event["id"] for event in page.data)
                cursor = page.next_cursor
                if writers_done.is_set() and not page.data and not page.has_more:
                    quiet_after_writers += 1
                    time.sleep(DEADLINE_SECONDS * 1.5)  # let a fenced gap resolve before the last look
                else:
                    time.sleep(rng.uniform(0, 0.03))
        except BaseException as exc:
            errors.append(exc)

    setup._allocate(TENANT, connections[0].id, 1)  # a writer that dies holding a position
    filters = [EventFilters(), EventFilters()] + [EventFilters(connection_id=c.id) for c in connections]
    seen_by: list[list[str]] = [[] for _ in filters]
    pollers = [
        threading.Thread(target=poller, args=(f, seen, n))
        for n, (f, seen) in enumerate(zip(filters, seen_by, strict=True))
    ]
    writers = [
        threading.Thread(target=writer, args=(c, w))
        for c in range(CONNECTIONS)
        for w in range(WRITERS_PER_CONNECTION)
    ]
    for thread in pollers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in pollers:
        thread.join(timeout=60)
    if errors:
        raise RuntimeError(f"the exactly-once check failed to run: {errors!r}")

    every = [event_id for ids in committed.values() for event_id in ids]
    skips = dups = out_of_order = 0
    reference = seen_by[0]
    for poller_filters, seen in zip(filters, seen_by, strict=True):
        expected = set(committed[poller_filters.connection_id] if poller_filters.connection_id else every)
        skips += len(expected - set(seen))
        dups += len(seen) - len(set(seen))
        # One order: each poller saw its events in the order of the unfiltered log
        out_of_order += seen != [event_id for event_id in reference if event_id in expected]
    log(
        f"exactly once: {len(every)} events, {stalls.long_stalls} commits stalled past the deadline, "
        f"pollers saw {[len(seen) for seen in seen_by]}"
    )
    figure(
        "exactly_once",
        f"events={len(every)} pollers={len(filters)} skips={skips} dups={dups} out_of_order={out_of_order}",
    )
