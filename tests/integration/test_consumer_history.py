"""Property: whatever workers do to a consumer (receives in random batches, acks, nacks with and without a
delay, extensions, terms, workers that die holding leases, seeks, redrives) while events are written
between their steps, the consumer keeps PRODUCT.md's guarantees, as `tests/consumer_history.py` checks
them on the recorded history once the surviving workers have drained it.

The bugs this test and the checker found are each pinned by a test at the end, with a reproduction of
the history that showed it.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pullbridge.clock import to_iso
from pullbridge.connections import create_connection
from pullbridge.consumers import delivery, receiving, service
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import ConsumerCreate, Delivery, RedriveRequest, SeekRequest
from pullbridge.consumers.records import find_consumer
from pullbridge.cursors import CursorCodec
from pullbridge.events import EventFilters, EventReader
from pullbridge.ids import event_position
from pullbridge.models import ConnectionCreate
from pullbridge.settings import ApiSettings
from pullbridge.storage import EventDraft, Store
from tests.conftest import CURSOR_SECRET
from tests.consumer_history import (
    RECORD_ORDER,
    HistoryRecorder,
    Operation,
    Receive,
    Redrive,
    Violation,
    describe,
)
from tests.support import TEST_SECRET, labelled_event

WORKERS = ("w0", "w1", "w2")
MATCHING_TYPE = "test.written"
OTHER_TYPE = "test.other"
TENANTS = itertools.count()
LONGEST_WAIT = 121
"""Longer than any lease, extension or nack delay below: the drain moves the clock this far."""


class Clock:
    """A test clock on whole seconds (so lease times compare exactly with the server's milliseconds);
    sleeping moves it."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# --- the workers -----------------------------------------------------------------------------------------

consumers = st.fixed_dictionaries(
    {
        "ordering": st.sampled_from(["record", "none"]),
        "max_deliveries": st.sampled_from([1, 2, 3, None]),
        "ack_wait_seconds": st.sampled_from([10, 30]),
        "max_ack_pending": st.sampled_from([3, 1000]),
        "filtered": st.booleans(),
        "start": st.sampled_from(["all", "new"]),
    }
)


@dataclass
class Run:
    """One example: a tenant of its own, its connections, the consumer, its workers and what they hold."""

    store: Store
    ctx: Consumers
    clock: Clock
    tenant_id: str
    connections: list[str]
    filters: dict[str, Any]
    labels: itertools.count[int] = field(default_factory=itertools.count)
    written: list[tuple[int, bool]] = field(default_factory=list)
    """(position, matches) of every event, in log order."""
    held: dict[str, list[Delivery]] = field(default_factory=lambda: {worker: [] for worker in WORKERS})
    dead: set[str] = field(default_factory=set)
    taken: set[str] = field(default_factory=set)
    """Events delivered since the last seek: the consumer's position lies at or past them."""
    seeks: int = 0
    recorder: HistoryRecorder | None = None
    unrecorded: list[tuple[list[str], list[dict[str, Any]], str]] = field(default_factory=list)

    def write(self, connection: int, records: list[tuple[str | None, bool]]) -> None:
        connection_id = self.connections[connection]
        documents = []
        for record_id, matches in records:
            document = labelled_event(connection_id, f"e{next(self.labels)}")
            # Received now: in-flight items last as long as their event's retention, counted from here.
            document["received_at"] = to_iso(time.time())
            document["record_id"] = record_id
            document["type"] = MATCHING_TYPE if matches or not self.filters else OTHER_TYPE
            documents.append(document)
        drafts = [EventDraft(connection_id, document) for document in documents]
        event_ids = self.store.append(self.tenant_id, connection_id, drafts).event_ids
        self.written += [
            (event_position(event_id) or 0, document["type"] == MATCHING_TYPE)
            for event_id, document in zip(event_ids, documents, strict=True)
        ]
        self.unrecorded.append((event_ids, documents, f"c{connection}"))
        if self.recorder is not None:
            self.attach(self.recorder)

    def attach(self, recorder: HistoryRecorder) -> None:
        """Records through `recorder` from now on, and first what was written before it existed."""
        self.recorder = recorder
        for event_ids, documents, writer in self.unrecorded:
            recorder.written(event_ids, documents, writer=writer)
        self.unrecorded = []

    def holders(self) -> list[str]:
        return [worker for worker, held in self.held.items() if held and worker not in self.dead]

    def alive(self) -> list[str]:
        return [worker for worker in WORKERS if worker not in self.dead]


class Workers:
    """Three workers share one consumer while events are written between their steps; `step` does one
    thing, chosen by weight. At the end the surviving workers drain the consumer."""

    def __init__(self, store: Store, settings: ApiSettings, config: dict[str, Any], before: int) -> None:
        clock = Clock()
        codec = CursorCodec(CURSOR_SECRET)
        ctx = Consumers(store, codec, EventReader(store, codec), clock=clock, sleep=clock.sleep)
        tenant_id = f"t_history{next(TENANTS)}"
        connections = [
            create_connection(
                store,
                settings,
                tenant_id,
                ConnectionCreate(provider="standard", name=f"c{n}", webhook_secrets=[TEST_SECRET]),
            ).id
            for n in range(2)
        ]
        filters = {"type": MATCHING_TYPE} if config["filtered"] else {}
        self.run = run = Run(store, ctx, clock, tenant_id, connections, filters)
        for n in range(before):
            run.write(n % 2, [(f"r{n % 3}", True), ("r0", n % 3 != 0)])
        self.start_after = 0
        if config["start"] == "new":
            self.start_after = max((position for position, _ in run.written), default=0)
        service.create_consumer(
            ctx,
            tenant_id,
            ConsumerCreate(
                name="history",
                filters=filters,
                start=config["start"],
                ack_wait_seconds=config["ack_wait_seconds"],
                max_deliveries=config["max_deliveries"],
                max_ack_pending=config["max_ack_pending"],
                ordering=config["ordering"],
            ),
        )
        self.recorder = HistoryRecorder(ctx, tenant_id, "history", advance=clock.sleep)
        run.attach(self.recorder)

    def step(self, rnd: random.Random) -> None:
        actions = [
            (self.write, 5),
            (self.receive, 10),
            (self.ack, 6),
            (self.nack, 3),
            (self.extend, 2),
            (self.term, 1),
            (self.advance, 5),
            (self.die, 1 if len(self.run.dead) < 2 else 0),
            (self.seek, 1 if self.run.seeks < 2 else 0),
            (self.redrive, 2),
            (self.race, 2 if len(self.run.alive()) >= 2 else 0),
        ]
        holding = bool(self.run.holders())
        actions = [
            (action, weight)
            for action, weight in actions
            if holding or action not in (self.ack, self.nack, self.extend, self.term, self.die)
        ]
        action = rnd.choices([action for action, _ in actions], [weight for _, weight in actions])[0]
        action(rnd)

    def write(self, rnd: random.Random) -> None:
        events = [
            (rnd.choice(["r0", "r1", "r2", None]), rnd.random() < 0.7) for _ in range(rnd.randint(1, 3))
        ]
        self.run.write(rnd.randint(0, 1), events)

    def receive(self, rnd: random.Random) -> None:
        worker = rnd.choice(WORKERS)
        if worker in self.run.dead:
            return
        self._received(worker, self.recorder.receive(worker, rnd.choice([1, 2, 3, 4, 10])))

    def _received(self, worker: str, deliveries: list[Delivery]) -> None:
        self.run.held[worker] += deliveries
        self.run.taken.update(item.event.id for item in deliveries)

    def race(self, rnd: random.Random) -> None:
        """Two workers' receives race for the consumer's head: the second runs whole while the first is
        about to take (handed the stretch after the first's, it waits for it until it takes from the head
        itself), so the first's take is refused, and it takes again from where the second left the head,
        with what it had read."""
        first, second = rnd.sample(self.run.alive(), 2)
        store = self.run.store
        take = store.take_from_log
        raced = False

        def racing(*args: Any, **kwargs: Any) -> Any:
            nonlocal raced
            if not raced:
                raced = True
                self._received(second, self.recorder.receive(second, rnd.choice([1, 2, 3])))
            return take(*args, **kwargs)

        with mock.patch.object(store, "take_from_log", racing):
            self._received(first, self.recorder.receive(first, rnd.choice([1, 2, 3, 10])))

    def _chosen(self, rnd: random.Random) -> tuple[str, list[Delivery]]:
        """A worker that holds something, and some of what it holds."""
        worker = rnd.choice(self.run.holders())
        held = self.run.held[worker]
        return worker, [item for item in held if rnd.random() < 0.5] or [rnd.choice(held)]

    def _done_with(self, worker: str, chosen: list[Delivery]) -> None:
        self.run.held[worker] = [item for item in self.run.held[worker] if item not in chosen]

    def ack(self, rnd: random.Random) -> None:
        worker, chosen = self._chosen(rnd)
        _ack(self.recorder, worker, chosen)
        self._done_with(worker, chosen)

    def nack(self, rnd: random.Random) -> None:
        worker, chosen = self._chosen(rnd)
        self.recorder.nack(worker, [item.ack_id for item in chosen], rnd.choice([0, 0, 7, 45]))
        self._done_with(worker, chosen)

    def extend(self, rnd: random.Random) -> None:
        worker, chosen = self._chosen(rnd)
        self.recorder.extend(worker, [item.ack_id for item in chosen], rnd.choice([1, 15, 60]))  # still held

    def term(self, rnd: random.Random) -> None:
        worker, chosen = self._chosen(rnd)
        self.recorder.term(worker, [item.ack_id for item in chosen], reason="poison")
        self._done_with(worker, chosen)

    def advance(self, rnd: random.Random) -> None:
        self.recorder.advance(rnd.choice([1, 5, 11, 31, 61]))

    def die(self, rnd: random.Random) -> None:
        """A worker that received stops acting: its leases must come back to the others."""
        worker = rnd.choice(self.run.holders())
        self.recorder.die(worker)
        self.run.dead.add(worker)

    def seek(self, rnd: random.Random) -> None:
        run = self.run
        to = rnd.choice(["all", "new", "1", "3"])
        if to == "all":
            request, after = SeekRequest(position="all"), 0
        elif to == "new":
            request, after = SeekRequest(position="new"), max((p for p, _ in run.written), default=0)
        else:
            # A cursor after the first `to` matching events: the consumer delivers what follows them
            count = int(to)
            page = run.ctx.reader.list_events(
                run.tenant_id, EventFilters(**run.filters), cursor=None, limit=count
            )
            matching = [position for position, matches in run.written if matches]
            after = matching[count - 1] if len(matching) >= count else max(matching, default=0)
            request = SeekRequest(cursor=page.next_cursor)
        self.recorder.seek(request, after)
        run.seeks += 1
        run.taken = set()

    def redrive(self, rnd: random.Random) -> None:
        rows = self.recorder.dead_letter_rows()
        if rows:
            self.recorder.redrive([rnd.choice(rows).event_id])


def _ack(recorder: HistoryRecorder, worker: str, items: list[Delivery]) -> None:
    """Everything held, in one request, stale leases of an event beside its current one included."""
    if items:
        recorder.ack(worker, [item.ack_id for item in items])


def _drain(run: Run, recorder: HistoryRecorder) -> None:
    """Every surviving worker (or a fresh one, if none survived) acks what it holds, then receives and
    acks until nothing is left, the clock moved past every lease and nack delay in between."""
    survivors = [worker for worker in WORKERS if worker not in run.dead] or ["drainer"]
    for worker in survivors:
        if run.held.get(worker):
            _ack(recorder, worker, run.held[worker])
    quiet = 0
    for _ in range(300):
        received = False
        for worker in survivors:
            deliveries = recorder.receive(worker, 10)
            if deliveries:
                received = True
                recorder.ack(worker, [item.ack_id for item in deliveries])
        if received:
            quiet = 0
            continue
        quiet += 1
        if quiet == 3:  # nothing, twice after moving the clock (a receive may bury and deliver nothing)
            break
        recorder.advance(LONGEST_WAIT)
    else:
        pytest.fail("the consumer did not drain")
    recorder.dead_letters()
    recorder.drained()


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    # Shrinking takes minutes on moto: a failure names its seed, and the checker's report the operations.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(config=consumers, before=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("state", ["whole", "filtered"])
def test_any_history_of_workers_keeps_the_consumer_guarantees(
    store: Store,
    settings: ApiSettings,
    monkeypatch: pytest.MonkeyPatch,
    state: str,
    config: dict[str, Any],
    before: int,
    seed: int,
) -> None:
    """Receives read the consumer's state whole, or filtered (`receiving._view`) as they do when many
    events are in flight."""
    monkeypatch.setattr(receiving, "WHOLE_STATE_IN_FLIGHT", 50 if state == "whole" else -1)
    monkeypatch.setattr(receiving, "random", random.Random(seed))  # a lost race's pause, on the test clock
    rnd = random.Random(seed)
    workers = Workers(store, settings, config, before)
    for _ in range(rnd.randint(30, 60)):
        workers.step(rnd)
    recorder = workers.recorder
    _drain(workers.run, recorder)
    violations = [
        violation
        for violation in recorder.check(workers.start_after)
        if not _a_redriven_event_behind_one_that_was_out(violation, recorder.history)
    ]
    assert not violations, describe(recorder.history, violations)


def _a_redriven_event_behind_one_that_was_out(violation: Violation, history: Sequence[Operation]) -> bool:
    """The one ordering the checker reports that the design chose (`planning.held_back`): a dead letter
    redriven while a later event of its record was out (leased) waits for that event, which goes out
    again when its lease runs out, before the redriven one. The checker notes it "after a redrive"."""
    if violation.kind != RECORD_ORDER or violation.note != "after a redrive":
        return False
    redriven_at = max(op for op in violation.operations if isinstance(history[op], Redrive))
    return any(
        isinstance(operation, Receive)
        and any(delivered.event_id == violation.event_id for delivered in operation.deliveries)
        for operation in history[:redriven_at]
    )


# --- the bugs the checker found, each pinned by its reproduction ---------------------------------------


@pytest.fixture
def one_event(store: Store, settings: ApiSettings) -> tuple[Consumers, Clock, str]:
    clock = Clock()
    codec = CursorCodec(CURSOR_SECRET)
    ctx = Consumers(store, codec, EventReader(store, codec), clock=clock, sleep=clock.sleep)
    tenant_id = "t_history_bugs"
    connection = create_connection(
        store,
        settings,
        tenant_id,
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )
    document = labelled_event(connection.id, "x1") | {"received_at": to_iso(time.time()), "record_id": "x"}
    store.append(tenant_id, connection.id, [EventDraft(connection.id, document)])
    return ctx, clock, tenant_id


def _append_to_record_x(ctx: Consumers, tenant_id: str, label: str = "x2") -> None:
    """Another event of the first one's record."""
    (first,) = ctx.reader.list_events(tenant_id, EventFilters(), cursor=None, limit=1).data
    document = labelled_event(first["connection_id"], label) | {
        "received_at": to_iso(time.time()),
        "record_id": "x",
    }
    ctx.store.append(tenant_id, first["connection_id"], [EventDraft(first["connection_id"], document)])


def test_a_late_ack_after_another_workers_ack_is_reported_expired(
    one_event: tuple[Consumers, Clock, str],
) -> None:
    ctx, clock, tenant_id = one_event
    service.create_consumer(ctx, tenant_id, ConsumerCreate(name="c", ack_wait_seconds=10))
    consumer = find_consumer(ctx.store, tenant_id, "c")
    (first,) = delivery.receive(ctx, consumer, 10, 0).data
    clock.now += 11  # the first lease runs out
    (second,) = delivery.receive(ctx, consumer, 10, 0).data
    assert delivery.ack(ctx, consumer, [second.ack_id]).acked == 1
    assert delivery.ack(ctx, consumer, [first.ack_id]).expired == [first.ack_id]


def test_a_late_ack_after_the_event_became_a_dead_letter_is_reported_expired(
    one_event: tuple[Consumers, Clock, str],
) -> None:
    ctx, clock, tenant_id = one_event
    service.create_consumer(ctx, tenant_id, ConsumerCreate(name="c", ack_wait_seconds=10, max_deliveries=1))
    consumer = find_consumer(ctx.store, tenant_id, "c")
    (only,) = delivery.receive(ctx, consumer, 10, 0).data
    clock.now += 11
    assert delivery.receive(ctx, consumer, 10, 0).data == []  # buried: delivered max_deliveries times
    assert service.get_consumer(ctx, tenant_id, "c").num_dead == 1
    assert delivery.ack(ctx, consumer, [only.ack_id]).expired == [only.ack_id]


def test_an_ack_id_from_before_a_seek_does_not_touch_the_new_lease(
    one_event: tuple[Consumers, Clock, str],
) -> None:
    ctx, _, tenant_id = one_event
    service.create_consumer(ctx, tenant_id, ConsumerCreate(name="c"))
    consumer = find_consumer(ctx.store, tenant_id, "c")
    (dropped,) = delivery.receive(ctx, consumer, 10, 0).data
    service.seek(ctx, tenant_id, "c", SeekRequest(position="all"))
    (current,) = delivery.receive(ctx, consumer, 10, 0).data  # another worker's lease of the same event
    assert delivery.nack(ctx, consumer, [dropped.ack_id], 0).expired == [dropped.ack_id]
    assert delivery.ack(ctx, consumer, [current.ack_id]).model_dump() == {"acked": 1, "expired": []}


def test_one_ack_request_may_hold_a_stale_and_a_current_lease_of_one_event(
    one_event: tuple[Consumers, Clock, str],
) -> None:
    ctx, clock, tenant_id = one_event
    service.create_consumer(ctx, tenant_id, ConsumerCreate(name="c", ack_wait_seconds=10))
    consumer = find_consumer(ctx.store, tenant_id, "c")
    (stale,) = delivery.receive(ctx, consumer, 10, 0).data
    clock.now += 11
    (current,) = delivery.receive(ctx, consumer, 10, 0).data  # the same worker gets it again
    result = delivery.ack(ctx, consumer, [stale.ack_id, current.ack_id])
    assert result.model_dump() == {"acked": 1, "expired": [stale.ack_id]}


def test_a_dead_letter_redriven_after_a_seek_back_is_delivered_again(
    one_event: tuple[Consumers, Clock, str],
) -> None:
    ctx, _, tenant_id = one_event
    service.create_consumer(ctx, tenant_id, ConsumerCreate(name="c"))
    consumer = find_consumer(ctx.store, tenant_id, "c")
    (leased,) = delivery.receive(ctx, consumer, 10, 0).data
    assert delivery.term(ctx, consumer, [leased.ack_id], "poison").termed == 1
    service.seek(ctx, tenant_id, "c", SeekRequest(position="all"))
    assert service.redrive(ctx, tenant_id, "c", RedriveRequest(all=True)).redriven == 1
    (again,) = delivery.receive(ctx, consumer, 10, 0).data  # StorageUnavailable: consumer_contended
    assert again.event.id == leased.event.id


def test_a_redriven_dead_letter_waits_for_the_leased_later_event_of_its_record(
    one_event: tuple[Consumers, Clock, str],
) -> None:
    ctx, _, tenant_id = one_event
    _append_to_record_x(ctx, tenant_id)
    service.create_consumer(ctx, tenant_id, ConsumerCreate(name="c", ordering="record"))
    consumer = find_consumer(ctx.store, tenant_id, "c")
    (x1,) = delivery.receive(ctx, consumer, 10, 0).data
    assert delivery.term(ctx, consumer, [x1.ack_id], "poison").termed == 1
    (x2,) = delivery.receive(ctx, consumer, 10, 0).data  # x1 is dead: x2 may go
    assert x2.event.data == {"label": "x2"}
    assert service.redrive(ctx, tenant_id, "c", RedriveRequest(all=True)).redriven == 1
    assert delivery.receive(ctx, consumer, 10, 0).data == []  # x1 again, while x2 is leased


def test_burying_an_event_does_not_let_a_newer_event_of_its_record_overtake_a_waiting_one(
    one_event: tuple[Consumers, Clock, str],
) -> None:
    ctx, clock, tenant_id = one_event
    _append_to_record_x(ctx, tenant_id)
    service.create_consumer(ctx, tenant_id, ConsumerCreate(name="c", ack_wait_seconds=10, max_deliveries=1))
    consumer = find_consumer(ctx.store, tenant_id, "c")
    (x1,) = delivery.receive(ctx, consumer, 10, 0).data  # x2 is taken too, and waits behind x1
    assert x1.event.data == {"label": "x1"}
    clock.now += 11  # x1's only delivery runs out: the next receive buries it
    _append_to_record_x(ctx, tenant_id, "x3")
    (first,) = delivery.receive(ctx, consumer, 10, 0).data
    assert first.event.data == {"label": "x2"}  # x3 goes out here, before x2
