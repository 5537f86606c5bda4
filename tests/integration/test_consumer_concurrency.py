"""Consumer guarantees under real threads and real time: exclusive leases while 8 workers race on receive,
at least once while webhook and pull writers append concurrently (their commits stalled, some past the
write deadline), and the leases of a worker that died come back to the others after ack_wait.

Each worker and each writer has its own Store and client, as separate Lambdas would; the embedded DynamoDB
serves one request at a time, atomically, as DynamoDB's conditions and transactions do. Every call is
recorded and the history checked by tests/consumer_history.py besides the direct assertions."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from pullbridge.clock import to_iso
from pullbridge.connections import create_connection
from pullbridge.consumers import service
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import ConsumerCreate, Delivery
from pullbridge.cursors import CursorCodec
from pullbridge.errors import StorageUnavailable
from pullbridge.events import EventReader
from pullbridge.models import ConnectionCreate
from pullbridge.settings import ApiSettings
from pullbridge.storage import ConnectionGuard, EventDraft, Store, dynamodb_client
from tests.conftest import CURSOR_SECRET
from tests.consumer_history import HistoryRecorder, Receive, Write, describe, epoch
from tests.ordering_scenario import StallingCommits
from tests.support import TEST_SECRET, labelled_event

TENANT = "t_race"
TIME_LIMIT = 18.0
"""No test waits longer than this for its workers."""


def _consumers(settings: ApiSettings, *, client_hook: Callable[[Any], None] | None = None) -> Consumers:
    """A worker's own context: its own client and Store, the real clock."""
    client = dynamodb_client(settings.dynamodb_endpoint)
    if client_hook is not None:
        client_hook(client)
    store = Store(client, settings)
    codec = CursorCodec(CURSOR_SECRET)
    return Consumers(
        store, codec, EventReader(store, codec, write_deadline_seconds=settings.write_deadline_seconds)
    )


def _connection(store: Store, settings: ApiSettings, name: str) -> Any:
    return create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name=name, webhook_secrets=[TEST_SECRET]),
    )


def _document(connection_id: str, label: str, **fields: Any) -> dict[str, Any]:
    document = labelled_event(connection_id, label)
    document["received_at"] = to_iso(time.time())
    return document | fields


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIME_LIMIT + 5)
        assert not thread.is_alive(), f"{thread.name} did not finish"


def _receive(
    recorder: HistoryRecorder, worker: str, batch: int, wait: float = 0
) -> tuple[list[Delivery], int]:
    """A receive, retried when it lost the race for the consumer's head too often (503, which a client
    retries); also how many times it was refused."""
    for refused in range(50):
        try:
            return recorder.receive(worker, batch, wait), refused
        except StorageUnavailable as exc:
            if exc.key != "consumer_contended":
                raise
            time.sleep(random.uniform(0, 0.02))
    raise AssertionError("a receive was refused 50 times in a row")


def _drained(recorder: HistoryRecorder) -> None:
    """A last look, as the drain's end: nothing is left to deliver, then the dead letters."""
    deliveries, _ = _receive(recorder, "final", 1000)
    assert deliveries == [], "the workers left events behind"
    recorder.dead_letters()
    recorder.drained()


def _deliveries(recorder: HistoryRecorder) -> list[tuple[str, Any]]:
    """(worker, delivery) of every receive in the history."""
    return [
        (operation.worker, delivered)
        for operation in recorder.history
        if isinstance(operation, Receive)
        for delivered in operation.deliveries
    ]


def test_eight_workers_racing_on_receive_never_share_an_event(store: Store, settings: ApiSettings) -> None:
    connection = _connection(store, settings, "race")
    documents = [_document(connection.id, f"e{n}") for n in range(300)]
    event_ids = store.append(
        TENANT, connection.id, [EventDraft(connection.id, d) for d in documents]
    ).event_ids
    setup = _consumers(settings)
    service.create_consumer(setup, TENANT, ConsumerCreate(name="race", ack_wait_seconds=600))
    recorder = HistoryRecorder(setup, TENANT, "race")
    recorder.written(event_ids, documents)
    acked: set[str] = set()
    refusals = Counter[str]()
    lock = threading.Lock()
    errors: list[BaseException] = []
    deadline = time.time() + TIME_LIMIT

    def worker(name: str, seed: int) -> None:
        rnd = random.Random(seed)
        mine = recorder.sharing(_consumers(settings))
        try:
            while time.time() < deadline:
                deliveries, refused = _receive(mine, name, rnd.randint(1, 16))
                refusals[name] += refused
                if deliveries:
                    expired = mine.ack(name, [item.ack_id for item in deliveries])
                    assert expired == (), f"{name}'s acks of leases it held came back expired"
                    with lock:
                        acked.update(item.event.id for item in deliveries)
                with lock:
                    if len(acked) == len(event_ids):
                        return
        except BaseException as exc:
            errors.append(exc)

    _run([threading.Thread(target=worker, args=(f"w{n}", n), name=f"w{n}") for n in range(8)])
    assert not errors, errors
    _drained(recorder)

    delivered = Counter(item.event_id for _, item in _deliveries(recorder))
    twice = {event_id: n for event_id, n in delivered.items() if n > 1}
    assert not twice, f"events delivered more than once: {twice}"
    assert set(delivered) == set(event_ids) == acked
    assert all(d.delivery_count == 1 for _, d in _deliveries(recorder))
    workers = {worker for worker, _ in _deliveries(recorder)}
    assert len(workers) >= 4, f"too little concurrency to mean anything: {workers} received, {refusals}"
    violations = recorder.check()
    assert not violations, describe(recorder.history, violations)


def test_every_event_of_concurrent_webhook_and_pull_writers_is_delivered(settings: ApiSettings) -> None:
    # Writers stall between taking a position and committing it, some past this deadline: readers then
    # fence the position and the writer retries at a new one (tests/ordering_scenario.py).
    settings = dataclasses.replace(settings, write_deadline_seconds=0.4)
    setup = _consumers(settings)
    connections = [_connection(setup.store, settings, f"hooks{n}") for n in range(2)]
    service.create_consumer(
        setup, TENANT, ConsumerCreate(name="all", ack_wait_seconds=600, ordering="record")
    )
    recorder = HistoryRecorder(setup, TENANT, "all")
    stalls = StallingCommits(random.Random(14), settings.write_deadline_seconds)
    writers_done = threading.Event()
    errors: list[BaseException] = []
    deadline = time.time() + TIME_LIMIT

    def stalled(client: Any) -> None:
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", stalls)

    def webhooks(connection_index: int, writer: int) -> None:
        """Webhook deliveries with delivery ids; one in four is delivered again (a provider's retry)."""
        connection = connections[connection_index]
        ctx = _consumers(settings, client_hook=stalled)
        rnd = random.Random(writer)
        sent: list[str] = []
        try:
            for n in range(12):
                resend = sent and rnd.random() < 0.25
                delivery_id = rnd.choice(sent) if resend else f"{connection.id}/{writer}/{n}"
                sent.append(delivery_id)
                document = _document(connection.id, delivery_id, record_id=f"order-{rnd.randint(0, 3)}")
                result = ctx.store.append(
                    TENANT,
                    connection.id,
                    [EventDraft(connection.id, document, delivery_id=delivery_id)],
                    guard=ConnectionGuard(connection.id, connection.version),
                )
                recorder.written(
                    result.event_ids, [document] * len(result.event_ids), writer=f"hooks{writer}"
                )
        except BaseException as exc:
            errors.append(exc)

    def pulls(writer: int) -> None:
        """A pull's pages: events without delivery ids, several per append, records shared across pages."""
        connection = connections[writer % 2]
        ctx = _consumers(settings, client_hook=stalled)
        rnd = random.Random(100 + writer)
        try:
            for page in range(5):
                documents = [
                    _document(
                        connection.id,
                        f"pull{writer}/{page}/{n}",
                        source="pull",
                        collection="customers",
                        record_id=f"cus_{rnd.randint(0, 4)}",
                    )
                    for n in range(rnd.randint(1, 4))
                ]
                drafts = [EventDraft(connection.id, document) for document in documents]
                result = ctx.store.append(TENANT, connection.id, drafts)
                recorder.written(result.event_ids, documents, writer=f"pull{writer}")
        except BaseException as exc:
            errors.append(exc)

    def worker(name: str, seed: int) -> None:
        rnd = random.Random(seed)
        mine = recorder.sharing(_consumers(settings))
        quiet = 0
        try:
            while time.time() < deadline and quiet < 3:
                deliveries, _ = _receive(mine, name, rnd.randint(1, 8), wait=rnd.choice([0, 0, 0.5]))
                if deliveries:
                    quiet = 0
                    assert mine.ack(name, [item.ack_id for item in deliveries]) == ()
                elif writers_done.is_set():
                    quiet += 1  # let any fenced position resolve (the write deadline) before the last look
                    time.sleep(settings.write_deadline_seconds * 1.5)
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=webhooks, args=(n % 2, n), name=f"hooks{n}") for n in range(3)]
    writers += [threading.Thread(target=pulls, args=(n,), name=f"pull{n}") for n in range(2)]
    workers = [threading.Thread(target=worker, args=(f"w{n}", n), name=f"w{n}") for n in range(4)]
    for thread in workers + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=TIME_LIMIT)
    writers_done.set()
    for thread in workers:
        thread.join(timeout=TIME_LIMIT + 5)
        assert not thread.is_alive(), f"{thread.name} did not finish"
    assert not errors, errors
    _drained(recorder)

    written = {
        event.event_id
        for operation in recorder.history
        if isinstance(operation, Write)
        for event in operation.events
    }
    delivered = {delivered.event_id for _, delivered in _deliveries(recorder)}
    assert len(written) >= 3 * 9 + 2 * 5, "the writers wrote too little"
    assert stalls.long_stalls > 0, "no writer stalled past the deadline"
    assert written - delivered == set(), "events were skipped"
    violations = recorder.check()  # acked (or dead), leases exclusive, record order kept
    assert not violations, describe(recorder.history, violations)


def test_the_leases_of_a_worker_that_died_come_back_to_the_others_after_ack_wait(
    store: Store, settings: ApiSettings
) -> None:
    connection = _connection(store, settings, "dying")
    documents = [_document(connection.id, f"e{n}") for n in range(20)]
    event_ids = store.append(
        TENANT, connection.id, [EventDraft(connection.id, d) for d in documents]
    ).event_ids
    setup = _consumers(settings)
    service.create_consumer(setup, TENANT, ConsumerCreate(name="dying", ack_wait_seconds=1, ordering="none"))
    recorder = HistoryRecorder(setup, TENANT, "dying")
    recorder.written(event_ids, documents)

    held, _ = _receive(recorder.sharing(_consumers(settings)), "doomed", 5)
    assert len(held) == 5
    recorder.die("doomed")  # it received, and never acts again
    lease_ends = {item.event.id: item.lease_expires_at for item in held}
    acked = _Acked(len(event_ids))
    errors: list[BaseException] = []
    deadline = time.time() + TIME_LIMIT
    _run(
        [
            threading.Thread(
                target=_ack_until_all_are, args=(recorder, settings, f"w{n}", acked, deadline, errors)
            )
            for n in range(2)
        ]
    )
    assert not errors, errors
    assert acked.ids == set(event_ids)
    _drained(recorder)

    again = [
        (worker, delivered)
        for worker, delivered in _deliveries(recorder)
        if delivered.event_id in lease_ends and worker != "doomed"
    ]
    assert sorted(delivered.event_id for _, delivered in again) == sorted(lease_ends)
    assert all(delivered.delivery_count == 2 for _, delivered in again)
    assert not _out_before_the_lease_ended(recorder, lease_ends)
    violations = recorder.check()
    assert not violations, describe(recorder.history, violations)


class _Acked:
    """The event ids the workers acked, shared between their threads."""

    def __init__(self, total: int) -> None:
        self.ids: set[str] = set()
        self.total = total
        self.lock = threading.Lock()

    def add(self, event_ids: list[str]) -> None:
        with self.lock:
            self.ids.update(event_ids)

    @property
    def complete(self) -> bool:
        with self.lock:
            return len(self.ids) == self.total


def _ack_until_all_are(
    recorder: HistoryRecorder,
    settings: ApiSettings,
    name: str,
    acked: _Acked,
    deadline: float,
    errors: list[BaseException],
) -> None:
    mine = recorder.sharing(_consumers(settings))
    try:
        while time.time() < deadline and not acked.complete:
            deliveries, _ = _receive(mine, name, 3, wait=2)  # long-polls until a lease runs out
            if deliveries:
                assert mine.ack(name, [item.ack_id for item in deliveries]) == ()
                acked.add([item.event.id for item in deliveries])
    except BaseException as exc:
        errors.append(exc)


def _out_before_the_lease_ended(recorder: HistoryRecorder, lease_ends: dict[str, str]) -> list[str]:
    """Events another worker received before the dead worker's lease on them ran out."""
    early = []
    for operation in recorder.history:
        if not isinstance(operation, Receive) or operation.worker == "doomed":
            continue
        for delivered in operation.deliveries:
            ended = lease_ends.get(delivered.event_id)
            if ended is not None and (operation.until is None or operation.until < epoch(ended)):
                early.append(delivered.event_id)
    return early
