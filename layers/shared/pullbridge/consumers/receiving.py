"""One receive (`_Receiving`): a stretch of the log handed out on the head, the log read in it
(`log_reads`), the consumer's state read whole or filtered (`_view`), `planning`'s decision, then the
take and the redeliveries (`leasing`)."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

from pullbridge.consumers import planning
from pullbridge.consumers.context import Consumers
from pullbridge.consumers.instance_memory import log_ends, pace_of, remember_in_flight, seen_in_flight
from pullbridge.consumers.leasing import CLAIMS_PER_TRANSACTION, bury_events, lease_again, take_new_events
from pullbridge.consumers.log_reads import LogRead, candidates, read_log_after
from pullbridge.consumers.models import Delivery
from pullbridge.consumers.records import StoredConsumer, not_found
from pullbridge.errors import StorageUnavailable
from pullbridge.events import FILTERED_SCAN_BUDGET
from pullbridge.storage import ConsumerHead
from pullbridge.storage.consumer_heads import Stretch
from pullbridge.storage.consumer_reads import ConsumerView, view_keys_fit

MAX_RECEIVE_ATTEMPTS = 20
"""Receives racing for one consumer's head retry; each loss means another receive took events."""
STRETCH_WAIT_SECONDS = 2.0
"""How long the head and `fin` may stand still while a receive waits for those handed the stretches of the
log before its own (one of them may have died holding its stretch) before it takes from the head itself."""
STRETCH_POLL_SECONDS = 0.02
"""The shortest pause between two looks at the head while a receive waits for the stretches before its own."""
STRETCH_FIRST_LOOK = 0.9
"""A receive waiting for the stretches before its own first looks at the head when this share of the time
their pace gives them has passed. Before it, not after: `fin` moves only when the receives that waited
take, so a pace measured by receives that sleep past it measures their sleep, and slows down with each
take (with 1.1 here, 4 workers of the bench went a third slower than one worker alone)."""
WHOLE_STATE_IN_FLIGHT = 50
"""A receive reads the whole state of a consumer that had at most this many events in flight when this
instance last read it (or that it has not read yet), and a filtered view of a busier one (`_view`)."""


def receive_once(
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
    read: LogRead | None = None
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
        while tries < MAX_RECEIVE_ATTEMPTS:
            stretch = self.stretch or self.hand_out()
            read = self.read_log(stretch)
            if self.position < read.start:
                if not self.ready(stretch, read):
                    # Those handed the stretches before are at work on what lies before this one
                    self.await_the_stretches_before(stretch, read.start)
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
            new_events, passed_over, reach = candidates(read, self.position, held, wanted)
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
            taken, refused, moved = take_new_events(
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
                remember_in_flight(consumer.id, view.count + len(plan.deliver_new) + len(plan.queue_new))
            again = lease_again(ctx, consumer, plan, now)
            buried = len(
                bury_events(ctx, consumer, plan.dead, now, reason="max_deliveries", leased_only=False)
            )
            deliveries = taken + again
            if deliveries or buried:
                ctx.observer.delivered(consumer, first=len(taken), again=len(again), dead=buried)
            next_due = planning.next_due(view.in_flight, now, consumer.ordering)
            return sorted(deliveries, key=lambda delivery: delivery.event.id), next_due
        # Every attempt lost the race to other receives, each of which took events: this one answers with
        # nothing now (a waiting receive tries again), as a consumer with nothing to deliver would.
        return [], None

    def await_the_stretches_before(self, stretch: Stretch, until: int) -> None:
        """Hold until the head reaches `until` or this receive is `ready`, looking at the head alone (a
        `GetItem`; the state is read once, after). The first look comes at `STRETCH_FIRST_LOOK` of the
        time the stretches before this one should still take at the pace this instance saw them go
        (`Pace`), the next ones after an eighth of a stretch's time at that pace, then less and less
        often."""
        pace = pace_of(self.consumer.id)
        first = STRETCH_FIRST_LOOK * pace.wait_for(stretch.start, self.decided) - (
            self.ctx.clock() - self.seen_at
        )
        if first > 0:
            self.ctx.sleep(min(first, STRETCH_WAIT_SECONDS))
        pause = max(STRETCH_POLL_SECONDS, pace.wait_for(stretch.end, stretch.start) / 4)
        while True:
            progress = self.ctx.store.consumer_progress(self.consumer.tenant_id, self.consumer.id)
            if progress is None:
                raise not_found(self.consumer.id)
            self.saw(*progress, self.ctx.clock())
            if self.ready(stretch) or self.position >= until:
                return
            self.ctx.sleep(pause)
            pause = min(pause * 1.5, 10 * STRETCH_POLL_SECONDS)

    def saw(self, head: ConsumerHead, decided: int, now: float) -> None:
        """The head and `fin` as a read found them at `now`."""
        if head.position > self.position or decided > self.decided:
            self.moved_at = now
        self.position, self.decided, self.seen_at = head.position, decided, now
        pace_of(self.consumer.id).saw(now, decided)

    def hand_out(self) -> Stretch:
        """A stretch of the log to read; an empty one for a consumer this instance last found caught up
        with its log: what comes lies before any stretch, so it reads from the head, and has nothing to
        let go of."""
        tenant_id, consumer_id = self.consumer.tenant_id, self.consumer.id
        size = FILTERED_SCAN_BUDGET if self.consumer.event_filters.needs_scan else self.most
        stretch = None
        if consumer_id in log_ends and seen_in_flight.get(consumer_id, 0) <= WHOLE_STATE_IN_FLIGHT:
            # Caught up, few in flight: the state is read whole, so first (it holds the head), and once
            view = self.ctx.store.read_consumer_view(
                tenant_id, consumer_id, horizon=self.horizon, after=0, record_keys=None
            )
            if view is not None:
                self.early = (view, self.ctx.clock())
                remember_in_flight(consumer_id, view.count)
                stretch = Stretch(view.head, view.head.position, view.head.position, view.decided)
        elif consumer_id in log_ends:
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
        pace_of(self.consumer.id).saw(self.seen_at, stretch.decided)
        return stretch

    def ready(self, stretch: Stretch, read: LogRead | None = None) -> bool:
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

    def read_log(self, stretch: Stretch) -> LogRead:
        """What this receive read of the log: its stretch, from the head when it is ready; and, once it is
        ready and the head lies before what it read, the gap between (as far as one read goes)."""
        read = self.read
        if read is None:
            # A consumer caught up with its log (as this instance last read it): the stretch lies past its
            # end, and what comes lies before it, so read from the head
            end = log_ends.get(self.consumer.id)
            caught_up = stretch.end == stretch.start or (end is not None and end < stretch.start)
            start = self.position if caught_up or self.ready(stretch) else stretch.start
            bound = stretch.end if stretch.end > stretch.start else None
            read = read_log_after(self.ctx, self.consumer, start, self.most, bound)
        elif self.position < read.start and self.ready(stretch, read):
            # The gap's positions and one more: a read of `most` would read again what lies past it
            gap_limit = min(self.most, read.start - self.position)
            gap = read_log_after(self.ctx, self.consumer, self.position, gap_limit, read.start)
            read = gap.then(read) if gap.scanned_to >= read.start else gap
        if read.more:
            log_ends.pop(self.consumer.id, None)
        else:
            if len(log_ends) >= 10_000:
                log_ends.clear()
            log_ends[self.consumer.id] = read.scanned_to
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


def _view(
    ctx: Consumers, consumer: StoredConsumer, read: LogRead, position: int, horizon: float
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
    whole = seen_in_flight.get(consumer.id, 0) <= WHOLE_STATE_IN_FLIGHT or not view_keys_fit(keys)
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
    remember_in_flight(consumer.id, view.count)
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
