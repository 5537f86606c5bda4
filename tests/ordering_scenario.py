"""The delivery guarantee's concurrency scenario, shared by its test and its benchmark.

Writers are separate Store instances (separate Lambdas). A botocore hook stalls their commits at random,
some past the write deadline, so that readers fence their positions and the writers must retry. One
writer dies outright after taking a position. Pollers follow `next_cursor` at random page sizes,
unfiltered and per connection, until the writers are done and the log has settled.
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
from pullbridge.settings import ApiSettings
from pullbridge.storage import ConnectionGuard, EventDraft, Store, dynamodb_client
from tests.support import labelled_event

TENANT = "t_alpha"
TENANT_HEAD_KEY = b'"Key": {"pk": {"S": "T#t_alpha"}, "sk": {"N": "0"}}'
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class StallingCommits:
    """Delays TransactWriteItems, i.e. the step between taking a position and committing it."""

    rng: random.Random
    deadline_seconds: float
    long_stalls: int = 0
    head_moving_commits: int = 0
    """Commit attempts (landed or cancelled) that take their tenant positions with an `Update` of the
    tenant's head inside, as opposed to commits after an `ADD`."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        with self.lock:
            roll = self.rng.random()
            self.long_stalls += roll < 0.08
            # The serialized request: does it move the tenant's head itself (not only the connection's)?
            self.head_moving_commits += TENANT_HEAD_KEY in params["body"]
        if roll < 0.08:
            time.sleep(self.deadline_seconds * 2.5)  # past the deadline: a reader fences this position
        elif roll < 0.5:
            time.sleep(roll * self.deadline_seconds / 2)


@dataclass
class ScenarioResult:
    committed: dict[str, list[str]]
    """Event ids per connection, in the order each writer's appends returned them."""
    filters: list[EventFilters]
    seen: list[list[str]]
    """Per poller (same order as `filters`), the ids it received."""
    long_stalls: int
    head_moving_commits: int

    @property
    def every_event(self) -> list[str]:
        return [event_id for ids in self.committed.values() for event_id in ids]

    def expected_for(self, filters: EventFilters) -> set[str]:
        return set(self.committed[filters.connection_id] if filters.connection_id else self.every_event)


def run_scenario(
    settings: ApiSettings,
    cursor_secret: str,
    *,
    connections: int = 2,
    writers_per_connection: int = 3,
    events_per_writer: int = 15,
    seed: int = 7,
) -> ScenarioResult:
    deadline = settings.write_deadline_seconds
    setup = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    created = [
        create_connection(
            setup,
            settings,
            TENANT,
            ConnectionCreate(provider="standard", name=f"c{n}", webhook_secrets=[SECRET]),
        )
        for n in range(connections)
    ]
    stalls = StallingCommits(random.Random(seed), deadline)
    committed: dict[str, list[str]] = {c.id: [] for c in created}
    lock = threading.Lock()
    writers_done = threading.Event()
    errors: list[BaseException] = []

    def writer(connection_index: int, writer_index: int) -> None:
        connection = created[connection_index]
        client = dynamodb_client(settings.dynamodb_endpoint)
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", stalls)
        store = Store(client, settings)
        try:
            for n in range(events_per_writer):
                label = f"{connection.id}/{writer_index}/{n}"
                result = store.append(
                    TENANT,
                    connection.id,
                    [EventDraft(connection.id, labelled_event(connection.id, label), delivery_id=label)],
                    guard=ConnectionGuard(connection.id, connection.version),
                )
                with lock:
                    committed[connection.id].extend(result.event_ids)
        except BaseException as exc:  # surfaced to the caller
            errors.append(exc)

    def poller(filters: EventFilters, seen: list[str], poller_seed: int) -> None:
        rng = random.Random(poller_seed)
        reader = EventReader(
            Store(dynamodb_client(settings.dynamodb_endpoint), settings),
            CursorCodec(cursor_secret),
            write_deadline_seconds=deadline,
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
                    time.sleep(deadline * 1.5)  # let any fenced gap resolve before the final look
                else:
                    time.sleep(rng.uniform(0, 0.03))
        except BaseException as exc:
            errors.append(exc)

    # A writer that dies after taking a position: its position must be fenced, not waited on forever.
    setup._allocate(TENANT, created[0].id, 1)

    filters = [EventFilters(), EventFilters()] + [EventFilters(connection_id=c.id) for c in created]
    seen: list[list[str]] = [[] for _ in filters]
    pollers = [
        threading.Thread(target=poller, args=(f, s, n))
        for n, (f, s) in enumerate(zip(filters, seen, strict=True))
    ]
    writers = [
        threading.Thread(target=writer, args=(c, w))
        for c in range(connections)
        for w in range(writers_per_connection)
    ]
    for thread in pollers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in pollers:
        thread.join(timeout=60)
    if errors:
        raise RuntimeError(f"the scenario failed to run: {errors!r}")
    return ScenarioResult(committed, filters, seen, stalls.long_stalls, stalls.head_moving_commits)
