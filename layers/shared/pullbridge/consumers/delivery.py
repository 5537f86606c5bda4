"""Receive, ack, nack, extend and term: the consumer's leases (docs/architecture.md, "Consumers").

A receive reads the consumer's state (head and in-flight events, one query), asks `planning` what to
deliver, then commits it under conditions: new events are taken from the log by moving the head from
the version that was read (so two receives never take the same event), and each redelivery is leased
only at the `lease_seq` that was read (so no two workers hold one lease).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from pullbridge.clock import Clock, system_clock, to_iso
from pullbridge.consumers import planning
from pullbridge.consumers.ack_ids import AckId, decode_ack_ids, encode_ack_id
from pullbridge.consumers.models import (
    AckResult,
    Delivery,
    ExtendResult,
    NackResult,
    ReceiveResult,
    TermResult,
)
from pullbridge.consumers.records import StoredConsumer, not_found
from pullbridge.cursors import CursorCodec
from pullbridge.errors import StorageUnavailable
from pullbridge.events import FILTERED_SCAN_BUDGET, POLL_INTERVAL_SECONDS, EventReader
from pullbridge.ids import event_position
from pullbridge.models import Event
from pullbridge.storage import ConsumerHead, ConsumerState, DeadLetterRow, InFlight, LoggedEvent, Store
from pullbridge.storage.consumer_items import LEASE_EPOCH_BITS
from pullbridge.storage.consumers import ConsumerView, Stretch, view_keys_fit

MAX_RECEIVE_ATTEMPTS = 20
"""Receives racing for one consumer's head retry; each loss means another receive took events."""
CLAIMS_PER_TRANSACTION = 99
STRETCH_WAIT_SECONDS = 2.0
"""How long the head and `fin` may stand still while a receive waits for those handed the stretches of the
log before its own (one of them may have died holding its stretch) before it takes from the head itself."""
STRETCH_POLL_SECONDS = 0.04
"""The first pause between two looks at the head while a receive waits for the stretches before its own."""
STRETCH_PACE_MARGIN = 1.1
"""A receive waiting for the stretches before its own first sleeps this much longer than their pace says:
a look too early costs a request, a little more sleep only this receive's time."""
PACE_SECONDS = 0.25
"""The pace of a consumer's stretches is measured over at least this long (`_Pace`)."""
WHOLE_STATE_IN_FLIGHT = 50
"""A receive reads the whole state of a consumer that had at most this many events in flight when this
instance last read it (or that it has not read yet), and a filtered view of a busier one (`_view`)."""
_seen_in_flight: dict[str, int] = {}
_paces: dict[str, _Pace] = {}
_log_ends: dict[str, int] = {}
"""Where this instance last found the end of each consumer's log (a read that held all the log had)."""


class ConsumerObserver(Protocol):
    """What the consumers report, for metrics (`pullbridge.observability.ConsumerMetrics`)."""

    def delivered(self, consumer: StoredConsumer, *, first: int, again: int, dead: int) -> None: ...

    def described(self, consumer: StoredConsumer, *, pending: int, lag_seconds: float) -> None: ...


class _Unobserved:
    def delivered(self, consumer: StoredConsumer, *, first: int, again: int, dead: int) -> None:
        pass

    def described(self, consumer: StoredConsumer, *, pending: int, lag_seconds: float) -> None:
        pass


@dataclass
class Consumers:
    """What the consumer operations share: the store, the cursor codec (ack ids), the log's reader."""

    store: Store
    codec: CursorCodec
    reader: EventReader
    clock: Clock = system_clock
    sleep: Callable[[float], None] = time.sleep
    observer: ConsumerObserver = field(default_factory=_Unobserved)


def receive(ctx: Consumers, consumer: StoredConsumer, max_batch_size: int, wait: float) -> ReceiveResult:
    """Up to `max_batch_size` deliveries; with `wait`, held until one can be made or the wait ends."""
    deadline = ctx.clock() + wait
    while True:
        deliveries, next_due = _receive_once(ctx, consumer, max_batch_size, deadline)
        if deliveries or ctx.clock() >= deadline:
            return ReceiveResult(data=deliveries)
        if not _await_deliverable(ctx, consumer, next_due, deadline):
            # Nothing came by the end of the wait, as far as the probes saw: the next receive reads anew
            return ReceiveResult(data=[])


@dataclass(frozen=True)
class _LogRead:
    """Every matching event of the consumer's log in (`start`, `scanned_to`], as the log's reader found
    them. What it read is final (the reader never passes an unresolved position), so a receive that lost
    the race for the head takes what lies past the winner's position from here, without reading again."""

    start: int
    events: list[LoggedEvent]
    scanned_to: int
    more: bool
    """Whether the log may hold more past `scanned_to` (the read stopped at its limit or its bound)."""

    def after(self, position: int) -> list[LoggedEvent]:
        return [entry for entry in self.events if entry.position > position]

    def then(self, later: _LogRead) -> _LogRead:
        """This read followed by `later`, which starts where this one ends."""
        return _LogRead(self.start, self.events + later.events, later.scanned_to, later.more)


def _receive_once(
    ctx: Consumers, consumer: StoredConsumer, max_batch_size: int, horizon: float
) -> tuple[list[Delivery], float | None]:
    receiving = _Receiving(ctx, consumer, consumer.limits(max_batch_size), horizon)
    try:
        return receiving.run()
    finally:
        receiving.let_go()


@dataclass
class _Receiving:
    """One receive (docs/architecture.md, "Consumers"): a stretch of the log handed out on the head, the
    log read in it, the state (`_view`), then the take.

    Receives racing for one consumer are handed consecutive stretches (`Store.reserve_stretch`), so they
    read different parts of the log rather than the same events. Each takes from the head as it stands:
    a receive whose stretch lies past the head waits, reading ahead meanwhile, until the receives handed
    the stretches before it are done with them (`fin`), then reads whatever they left (the gap) and
    takes from the head. The take stays conditional on the head's version, whatever the stretches: a
    stretch only says where to read. A receive that loses the race anyway learns the winner's head from
    the refusal and takes again from there with the events it read past it, after reading the state
    again (the winner put events in flight), not the log."""

    ctx: Consumers
    consumer: StoredConsumer
    limits: planning.Limits
    horizon: float
    stretch: Stretch | None = None
    read: _LogRead | None = None
    position: int = 0
    """Where the head was last seen."""
    decided: int = 0
    """How far the stretches handed out were done with, when last seen (`fin`)."""
    seen_at: float = 0.0
    """When the head and `fin` were last read."""
    moved_at: float = 0.0
    """When the head or `fin` was last seen to move (or the stretch handed out): how long those before it
    have been still."""
    settled: bool = True
    """Whether this receive is done with its stretch: a take moved `fin` past it (else `let_go` does)."""
    early: tuple[ConsumerView, float] | None = None
    """The state, read before the log (and when), for a consumer caught up with few in flight."""

    @property
    def most(self) -> int:
        return planning.claims_worth_taking(self.limits.max_batch_size, CLAIMS_PER_TRANSACTION)

    def run(self) -> tuple[list[Delivery], float | None]:
        ctx, consumer = self.ctx, self.consumer
        tries = 0
        waited = False
        while tries < MAX_RECEIVE_ATTEMPTS:
            stretch = self.stretch or self.hand_out()
            read = self.read_log(stretch)
            if self.position < read.start:
                if not self.ready(stretch, read):
                    # Those handed the stretches before are at work on what lies before this one
                    self.await_the_stretches_before(stretch, read.start, looked=waited)
                    waited = True
                read = self.read_log(stretch)  # and what they left before it, once they are done
            early, self.early = self.early, None
            if early is not None and read.start == early[0].head.position:
                view, now = early  # read whole before the log (a caught-up consumer): nothing to name
            else:
                view, now = _view(ctx, consumer, read, self.position, self.horizon)
            self.saw(view.head, view.decided, now)
            if self.position < stretch.head.position:  # a seek moved the head back: start again from it
                self.stretch, self.settled, tries = None, True, tries + 1
                continue
            if self.position < read.start:
                continue  # still behind it: wait on, or read what they left
            if self.position >= read.scanned_to and read.more:
                # Others took all this receive had read (receives that waited for it no more)
                self.read, tries = None, tries + 1
                if self.position >= stretch.end:
                    self.let_go()
                    self.stretch = None  # and its stretch whole: another one
                continue
            plan = planning.plan_redeliveries(view.in_flight, now, self.limits)
            wanted = self.wanted(plan, view)
            held = {item.position for item in view.in_flight}
            new_events, passed_over, reach = _candidates(read, self.position, held, wanted)
            plan = planning.plan_new(
                plan,
                view.in_flight,
                new_events,
                self.limits,
                count=view.count,
                position=self.position,
                scanned_to=reach,
            )
            by_scope_position = {entry.position: entry for entry in read.events}
            taken, refused, moved = _take(
                ctx,
                consumer,
                view.head,
                plan,
                by_scope_position,
                now,
                passed_over,
                decided=max(view.decided, stretch.end) if stretch.end > stretch.start else None,
            )
            if refused is not None:
                # Another receive moved the head first: take again from where it left it
                self.position = refused.position
                tries += 1
                ctx.sleep(random.uniform(0.001, 0.004) * min(tries, 8))  # noqa: S311 - jitter
                continue
            self.settled = moved
            if moved:  # what this instance knows is in flight now, for its next receive's read (`_view`)
                _remember_in_flight(consumer.id, view.count + len(plan.deliver_new) + len(plan.queue_new))
            again = _redeliver(ctx, consumer, plan, now)
            buried = len(_bury(ctx, consumer, plan.dead, now, reason="max_deliveries", leased_only=False))
            deliveries = taken + again
            if deliveries or buried:
                ctx.observer.delivered(consumer, first=len(taken), again=len(again), dead=buried)
            next_due = planning.next_due(view.in_flight, now, consumer.ordering)
            return sorted(deliveries, key=lambda delivery: delivery.event.id), next_due
        # Every attempt lost the race to other receives, each of which took events: this one answers with
        # nothing now (a waiting receive tries again), as a consumer with nothing to deliver would.
        return [], None

    def await_the_stretches_before(self, stretch: Stretch, until: int, *, looked: bool) -> None:
        """Hold until the head reaches `until` or this receive is `ready`. First, without a request, for as
        long as the stretches before this one should still take at the pace this instance saw them go
        (`_Pace`); the state's read that follows tells whether they are done. Once that was not enough
        (`looked`): looking at the head alone (a `GetItem`), less and less often."""
        if not looked:
            expected = STRETCH_PACE_MARGIN * _pace(self.consumer.id).wait_for(stretch.start, self.decided)
            remaining = expected - (self.ctx.clock() - self.seen_at)
            self.ctx.sleep(max(min(remaining, STRETCH_WAIT_SECONDS), STRETCH_POLL_SECONDS))
            return
        # A quarter of a stretch's time at the pace seen, so that a slow pace costs no more looks
        pause = max(STRETCH_POLL_SECONDS, _pace(self.consumer.id).wait_for(stretch.end, stretch.start) / 4)
        while not self.ready(stretch) and self.position < until:
            self.ctx.sleep(pause)
            pause = min(pause * 1.5, 5 * STRETCH_POLL_SECONDS)
            progress = self.ctx.store.consumer_progress(self.consumer.tenant_id, self.consumer.id)
            if progress is None:
                raise not_found(self.consumer.id)
            self.saw(*progress, self.ctx.clock())

    def saw(self, head: ConsumerHead, decided: int, now: float) -> None:
        """The head and `fin` as a read found them at `now`."""
        if head.position > self.position or decided > self.decided:
            self.moved_at = now
        self.position, self.decided, self.seen_at = head.position, decided, now
        _pace(self.consumer.id).saw(now, decided)

    def hand_out(self) -> Stretch:
        """A stretch of the log to read; an empty one for a consumer this instance last found caught up
        with its log: what comes lies before any stretch, so it reads from the head, and has nothing to
        let go of."""
        tenant_id, consumer_id = self.consumer.tenant_id, self.consumer.id
        size = FILTERED_SCAN_BUDGET if self.consumer.event_filters.needs_scan else self.most
        stretch = None
        if consumer_id in _log_ends and _seen_in_flight.get(consumer_id, 0) <= WHOLE_STATE_IN_FLIGHT:
            # Caught up, few in flight: the state is read whole, so first (it holds the head), and once
            view = self.ctx.store.read_consumer_view(
                tenant_id, consumer_id, horizon=self.horizon, after=0, record_keys=None
            )
            if view is not None:
                self.early = (view, self.ctx.clock())
                _remember_in_flight(consumer_id, view.count)
                stretch = Stretch(view.head, view.head.position, view.head.position, view.decided)
        elif consumer_id in _log_ends:
            stretch = self.ctx.store.peek_stretch(tenant_id, consumer_id)
        else:
            for _ in range(2):  # a head from before stretches starts them first (once)
                stretch = self.ctx.store.reserve_stretch(tenant_id, consumer_id, size)
                if stretch is not None:
                    break
        if stretch is None:
            raise not_found(consumer_id)
        self.stretch, self.read, self.settled = stretch, None, stretch.end == stretch.start
        self.position, self.decided = stretch.head.position, stretch.decided
        self.moved_at = self.seen_at = self.ctx.clock()
        _pace(self.consumer.id).saw(self.seen_at, stretch.decided)
        return stretch

    def ready(self, stretch: Stretch, read: _LogRead | None = None) -> bool:
        """Whether this receive takes from the head now: the head reached its stretch, or those handed the
        stretches before it are done with them, or the last read found the head and `fin` as they were
        `STRETCH_WAIT_SECONDS` before (one of them died), or its stretch lies past the end of the log
        (`read`: nothing there to wait for; what came, lies before it)."""
        start = stretch.start
        return (
            self.position >= start
            or self.decided >= start
            or self.seen_at - self.moved_at >= STRETCH_WAIT_SECONDS
            or (read is not None and not read.events and not read.more)
        )

    def read_log(self, stretch: Stretch) -> _LogRead:
        """What this receive read of the log: its stretch, from the head when it is ready; and, once it is
        ready and the head lies before what it read, the gap between (as far as one read goes)."""
        read = self.read
        if read is None:
            # A consumer caught up with its log (as this instance last read it): the stretch lies past its
            # end, and what comes lies before it, so read from the head
            end = _log_ends.get(self.consumer.id)
            caught_up = stretch.end == stretch.start or (end is not None and end < stretch.start)
            start = self.position if caught_up or self.ready(stretch) else stretch.start
            bound = stretch.end if stretch.end > stretch.start else None
            read = _read_log(self.ctx, self.consumer, start, self.most, bound)
        elif self.position < read.start and self.ready(stretch, read):
            # The gap's positions and one more: a read of `most` would read again what lies past it
            gap_limit = min(self.most, read.start - self.position)
            gap = _read_log(self.ctx, self.consumer, self.position, gap_limit, read.start)
            read = gap.then(read) if gap.scanned_to >= read.start else gap
        if read.more:
            _log_ends.pop(self.consumer.id, None)
        else:
            if len(_log_ends) >= 10_000:
                _log_ends.clear()
            _log_ends[self.consumer.id] = read.scanned_to
        self.read = read
        return read

    def wanted(self, plan: planning.ReceivePlan, view: ConsumerView) -> int:
        """How many new events this receive takes: room under `max_ack_pending` and in the batch, in
        whole transactions past the first."""
        return planning.claims_worth_taking(
            min(
                planning.room_for_new(view.count, self.limits) + len(plan.dead),
                self.limits.max_batch_size - len(plan.redeliver),
            ),
            CLAIMS_PER_TRANSACTION,
        )

    def let_go(self) -> None:
        """Done with the stretch without a take that moved `fin` past it: move it, so that the receives
        handed the next stretches need not wait. Best effort: they wait no longer than
        `STRETCH_WAIT_SECONDS` for a receive that never did."""
        if self.stretch is None or self.settled:
            return
        self.settled = True
        if self.decided >= self.stretch.end:
            return  # a later take moved `fin` past it already
        with contextlib.suppress(StorageUnavailable):
            self.ctx.store.release_stretch(self.consumer.tenant_id, self.consumer.id, self.stretch.end)


def _read_log(
    ctx: Consumers, consumer: StoredConsumer, position: int, limit: int, bound: int | None
) -> _LogRead:
    """Up to `limit` matching events after `position`, none past `bound`."""
    logged, scanned_to, _, more = ctx.reader.collect(
        consumer.tenant_id, consumer.event_filters, position, 0.0, limit
    )
    if bound is not None and scanned_to > bound:
        logged = [entry for entry in logged if entry.position <= bound]
        scanned_to, more = bound, True
    return _LogRead(position, logged, scanned_to, more)


def _view(
    ctx: Consumers, consumer: StoredConsumer, read: _LogRead, position: int, horizon: float
) -> tuple[ConsumerView, float]:
    """The consumer's state as this receive needs it, and the time it was read at.

    A consumer with many events in flight (workers holding their batches) has its state read filtered:
    the answer holds the head, the count of events in flight, and only the in-flight events that this
    receive may act on: those due by `horizon` (the end of its wait), those past the start of its log
    read, and those of the records of the events it read (for `ordering: "record"`: a new event waits
    behind an in-flight one of its record). The records of the due events are then read whole when
    they were not already, since one of them may hold another back. With few in flight, the state is
    read whole: the answer is as small, and tells exactly when the next lease runs out."""
    keys: set[str] = set()
    if consumer.ordering == "record":
        keys = {key for entry in read.after(position) if (key := planning.record_key(entry.document))}
    whole = _seen_in_flight.get(consumer.id, 0) <= WHOLE_STATE_IN_FLIGHT or not view_keys_fit(keys)
    view = ctx.store.read_consumer_view(
        consumer.tenant_id,
        consumer.id,
        horizon=horizon,
        after=max(read.start, position),
        record_keys=None if whole else keys,
    )
    if view is None:
        raise not_found(consumer.id)
    now = ctx.clock()
    _remember_in_flight(consumer.id, view.count)
    if consumer.ordering == "record":
        partial = {
            item.record_key
            for item in view.in_flight
            if item.due_at <= now and item.record_key is not None and not view.complete_for(item.record_key)
        }
        if partial:
            items = ctx.store.in_flight_of_records(consumer.tenant_id, consumer.id, partial)
            view = view.with_records(partial, items)
    return view, now


@dataclass
class _Pace:
    """How fast the stretches of one consumer are done with, as this instance saw `fin` move: the
    positions a second, a moving average. It tells a receive how long those before it should take."""

    at: float | None = None
    decided: int = 0
    rate: float = 0.0

    def saw(self, at: float, decided: int) -> None:
        if self.at is None or decided < self.decided:  # the first look, or a seek: start again
            self.at, self.decided, self.rate = at, decided, 0.0
        elif decided > self.decided and at - self.at >= PACE_SECONDS:
            rate = (decided - self.decided) / (at - self.at)
            self.rate = rate if self.rate == 0.0 else 0.7 * self.rate + 0.3 * rate
            self.at, self.decided = at, decided

    def wait_for(self, start: int, decided: int) -> float:
        """The seconds until `fin` reaches `start` from `decided`, at this pace (0 when unknown)."""
        return max(0, start - decided) / self.rate if self.rate > 0 else 0.0


def _pace(consumer_id: str) -> _Pace:
    pace = _paces.get(consumer_id)
    if pace is None:
        if len(_paces) >= 10_000:
            _paces.clear()
        pace = _paces[consumer_id] = _Pace()
    return pace


def _remember_in_flight(consumer_id: str, count: int) -> None:
    if len(_seen_in_flight) >= 10_000:
        _seen_in_flight.clear()
    _seen_in_flight[consumer_id] = count


def _candidates(
    read: _LogRead, position: int, held: set[int], wanted: int
) -> tuple[list[planning.NewEvent], list[int], int]:
    """What a receive whose head is at `position` may take from `read`: at most `wanted` new events, the
    log positions of the in-flight ones it passes over on the way, and how far they reach (the end of
    the read when it holds no more, else the last event given)."""
    if wanted <= 0:
        return [], [], position
    new_events: list[planning.NewEvent] = []
    passed_over: list[int] = []
    for entry in read.after(position):
        if _tenant_position(entry) in held:
            passed_over.append(entry.position)
            continue
        if len(new_events) == wanted:
            reach = new_events[-1].scope_position
            return new_events, [at for at in passed_over if at <= reach], reach
        new_events.append(_new_event(entry))
    return new_events, passed_over, read.scanned_to


def _state(ctx: Consumers, consumer: StoredConsumer, *, consistent: bool = True) -> ConsumerState:
    state = ctx.store.read_consumer_state(consumer.tenant_id, consumer.id, consistent=consistent)
    if state is None:
        raise not_found(consumer.id)
    return state


def _new_event(entry: LoggedEvent) -> planning.NewEvent:
    return planning.NewEvent(
        position=_tenant_position(entry),
        scope_position=entry.position,
        event_id=entry.document["id"],
        record_key=planning.record_key(entry.document),
    )


def _tenant_position(entry: LoggedEvent) -> int:
    position = event_position(entry.document["id"])
    return position if position is not None else entry.position


def _take(
    ctx: Consumers,
    consumer: StoredConsumer,
    head: ConsumerHead,
    plan: planning.ReceivePlan,
    by_scope_position: dict[int, LoggedEvent],
    now: float,
    passed_over: list[int],
    *,
    decided: int | None,
) -> tuple[list[Delivery], ConsumerHead | None, bool]:
    """Takes the plan's new events from the log: the head moves over them in the same transactions that
    hold them in flight, the last one moving `fin` to `decided`. The deliveries; the head as another
    receive left it when that receive moved it first (then nothing was taken); and whether the head
    moved all the way (the last transaction landed)."""
    if plan.new_position is None:
        return [], None, False
    lease_until = planning.lease_until(now, consumer.limits(1))
    retention = ctx.store.retention_seconds
    epoch = head.version + 1  # the version this receive's first move writes: no other take has it
    claims = [
        _claim(by_scope_position[event.scope_position], "leased", lease_until, 1, retention, epoch)
        for event in plan.deliver_new
    ]
    claims += [
        _claim(by_scope_position[event.scope_position], "waiting", 0.0, 0, retention, epoch)
        for event in plan.queue_new
    ]
    claims.sort(key=lambda claim: claim.scope_position)
    delivered: list[Delivery] = []
    chunks = [
        claims[start : start + CLAIMS_PER_TRANSACTION]
        for start in range(0, len(claims), CLAIMS_PER_TRANSACTION)
    ] or [[]]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        position = plan.new_position if last else chunk[-1].scope_position
        left = [claim.scope_position for claim in chunk]
        if last:
            left += [at for at in passed_over if at <= position]
        pending = planning.pending_after_take(head.counted_to, head.pending, left)
        moved = ConsumerHead(
            position=position,
            version=head.version + 1,
            counted_to=max(head.counted_to, position),
            pending=pending,
        )
        refused = ctx.store.take_from_log(
            consumer.tenant_id, consumer.id, head, moved, chunk, decided=decided if last else None
        )
        if refused is not None:
            return (delivered, None, False) if index > 0 else ([], refused, False)
        head = moved
        delivered += [
            _delivery(ctx, consumer, claim, by_scope_position[claim.scope_position].document, now)
            for claim in chunk
            if claim.state == "leased"
        ]
    return delivered, None, True


def _claim(
    entry: LoggedEvent, state: str, due_at: float, delivery_count: int, retention_seconds: int, epoch: int
) -> InFlight:
    """A new event held in flight: leased (delivered now, its first lease) or waiting (queued, no lease
    yet). Its item leaves with its event, at the end of retention."""
    document = entry.document
    received_at = _epoch(document["received_at"])
    return InFlight(
        position=_tenant_position(entry),
        scope_position=entry.position,
        event_id=document["id"],
        record_key=planning.record_key(document),
        state=state,
        due_at=due_at,
        delivery_count=delivery_count,
        lease_seq=(epoch << LEASE_EPOCH_BITS) + delivery_count,
        expires_at=int(received_at) + retention_seconds,
        received_at=received_at,
    )


def _redeliver(
    ctx: Consumers, consumer: StoredConsumer, plan: planning.ReceivePlan, now: float
) -> list[Delivery]:
    if not plan.redeliver:
        return []
    lease_until = planning.lease_until(now, consumer.limits(1))
    changes = [
        (
            item,
            replace(
                item,
                state="leased",
                due_at=lease_until,
                delivery_count=item.delivery_count + 1,
                lease_seq=item.lease_seq + 1,
            ),
        )
        for item in plan.redeliver
    ]
    leased = ctx.store.relet(consumer.tenant_id, consumer.id, changes, now=now)
    documents = ctx.store.events_at(consumer.tenant_id, [item.position for item in leased])
    return [
        _delivery(ctx, consumer, item, documents[item.position], now)
        for item in leased
        if item.position in documents
    ]


def _bury(
    ctx: Consumers,
    consumer: StoredConsumer,
    items: Sequence[InFlight],
    now: float,
    *,
    reason: str,
    leased_only: bool,
) -> set[int]:
    """Moves in-flight events to the dead letters with a copy of each event; the positions that moved.
    `leased_only`: a term, which holds only while the lease runs (a burial for max_deliveries does not)."""
    if not items:
        return set()
    documents = ctx.store.events_at(consumer.tenant_id, [item.position for item in items])
    rows = [
        DeadLetterRow(item, reason, now, documents.get(item.position, {"id": item.event_id}))
        for item in items
    ]
    buried = ctx.store.bury(
        consumer.tenant_id, consumer.id, rows, leased_only_at=now if leased_only else None
    )
    return {row.item.position for row in buried}


def _delivery(
    ctx: Consumers, consumer: StoredConsumer, item: InFlight, document: dict[str, object], now: float
) -> Delivery:
    return Delivery(
        ack_id=encode_ack_id(
            ctx.codec, consumer.tenant_id, consumer.id, AckId(item.position, item.lease_seq), now
        ),
        delivery_count=item.delivery_count,
        lease_expires_at=to_iso(item.due_at),
        event=Event.model_validate(document),
    )


def _await_deliverable(
    ctx: Consumers, consumer: StoredConsumer, next_due: float | None, deadline: float
) -> bool:
    """Hold until something may be deliverable (True): an in-flight event falls due (slept until exactly
    then, so a redelivery goes out within a probe's time of its lease running out), or the log's head
    moves. False when the deadline came first. Probes are eventually consistent and cheap; only a
    consistent receive decides what is delivered. A probe may lag a write by a moment, and there is none
    at the deadline: what came after the last, the next receive delivers."""
    while (now := ctx.clock()) < deadline:
        wake = min(deadline, now + POLL_INTERVAL_SECONDS, next_due if next_due is not None else deadline)
        ctx.sleep(max(0.0, wake - now))
        if wake >= deadline:
            return False  # no last look at the end of the wait: what came since, the next receive takes
        state = _state(ctx, consumer, consistent=False)
        now = ctx.clock()
        if planning.due(state.in_flight, now, consumer.ordering):
            return True
        # A full consumer (max_ack_pending reached) takes nothing new, however far the log has moved.
        if planning.room_for_new(len(state.in_flight), consumer.limits(1)) > 0 and (
            ctx.store.log_head(consumer.tenant_id, consumer.event_filters.connection_id, consistent=False)
            > state.head.position
        ):
            return True
        next_due = planning.next_due(state.in_flight, now, consumer.ordering)
    return False


# --- settling leases -------------------------------------------------------------------------------------


def ack(ctx: Consumers, consumer: StoredConsumer, ack_ids: list[str]) -> AckResult:
    """A second ack of the same id is harmless and counts as acked (its receipt says so). An ack of an
    earlier lease is expired: the event's lease ran out, and it was delivered again (or buried)."""
    held = _held(ctx, consumer, ack_ids)
    latest = _latest_leases(held.values())
    outcome = ctx.store.settle(
        consumer.tenant_id, consumer.id, sorted(latest.items()), now=ctx.clock(), clock=ctx.clock
    )
    expired = [
        token
        for token, ack_id in held.items()
        if latest[ack_id.position] != ack_id.lease_seq or outcome[ack_id.position] != "done"
    ]
    return AckResult(acked=len(held) - len(expired), expired=expired)


def _latest_leases(ack_ids: Iterable[AckId]) -> dict[int, int]:
    """One lease per event: of two ack ids of one event in one request, the later lease is the one that
    can still hold it; the earlier one is expired."""
    latest: dict[int, int] = {}
    for ack_id in ack_ids:
        latest[ack_id.position] = max(latest.get(ack_id.position, 0), ack_id.lease_seq)
    return latest


def nack(ctx: Consumers, consumer: StoredConsumer, ack_ids: list[str], delay_seconds: int) -> NackResult:
    now = ctx.clock()
    changed, expired = _change(
        ctx,
        consumer,
        ack_ids,
        now,
        lambda item: replace(item, state="waiting", due_at=now + delay_seconds, lease_seq=item.lease_seq + 1),
    )
    return NackResult(nacked=changed, expired=expired)


def extend(ctx: Consumers, consumer: StoredConsumer, ack_ids: list[str], seconds: int) -> ExtendResult:
    now = ctx.clock()
    changed, expired = _change(ctx, consumer, ack_ids, now, lambda item: replace(item, due_at=now + seconds))
    return ExtendResult(extended=changed, lease_expires_at=to_iso(now + seconds), expired=expired)


def term(ctx: Consumers, consumer: StoredConsumer, ack_ids: list[str], reason: str) -> TermResult:
    now = ctx.clock()
    held = _held(ctx, consumer, ack_ids)
    current = _current(ctx, consumer, held.values())
    live = _live_leases(held.values(), current, now)
    buried = _bury(ctx, consumer, live, now, reason=reason or "termed", leased_only=True)
    if buried:
        ctx.observer.delivered(consumer, first=0, again=0, dead=len(buried))
    expired = [
        token
        for token, ack_id in held.items()
        if ack_id.position not in buried or current[ack_id.position].lease_seq != ack_id.lease_seq
    ]
    return TermResult(termed=len(held) - len(expired), expired=expired)


def _change(
    ctx: Consumers,
    consumer: StoredConsumer,
    ack_ids: list[str],
    now: float,
    change: Callable[[InFlight], InFlight],
) -> tuple[int, list[str]]:
    held = _held(ctx, consumer, ack_ids)
    current = _current(ctx, consumer, held.values())
    afters = {item.position: change(item) for item in _live_leases(held.values(), current, now)}
    outcome = ctx.store.settle(
        consumer.tenant_id,
        consumer.id,
        [(p, current[p].lease_seq) for p in afters],
        now=now,
        after=afters,
        clock=ctx.clock,
    )
    expired = [
        token
        for token, ack_id in held.items()
        if ack_id.position not in afters
        or current[ack_id.position].lease_seq != ack_id.lease_seq
        or outcome.get(ack_id.position) != "done"
    ]
    return len(held) - len(expired), expired


def _current(ctx: Consumers, consumer: StoredConsumer, ack_ids: Iterable[AckId]) -> dict[int, InFlight]:
    """The in-flight events these ack ids name, as they are now (one read of just those)."""
    positions = sorted({ack_id.position for ack_id in ack_ids})
    if not positions:
        return {}
    return {
        item.position: item for item in ctx.store.in_flight_at(consumer.tenant_id, consumer.id, positions)
    }


def _holds(item: InFlight | None, ack_id: AckId, now: float) -> bool:
    return (
        item is not None
        and item.lease_seq == ack_id.lease_seq
        and item.state == "leased"
        and item.due_at > now
    )


def _held(ctx: Consumers, consumer: StoredConsumer, tokens: list[str]) -> dict[str, AckId]:
    return dict(zip(tokens, decode_ack_ids(ctx.codec, consumer.tenant_id, consumer.id, tokens), strict=True))


def _live_leases(ack_ids: Iterable[AckId], current: dict[int, InFlight], now: float) -> list[InFlight]:
    """The in-flight events whose running lease these ack ids name, oldest first, each once."""
    live = {
        ack_id.position: current[ack_id.position]
        for ack_id in ack_ids
        if _holds(current.get(ack_id.position), ack_id, now)
    }
    return [live[position] for position in sorted(live)]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
