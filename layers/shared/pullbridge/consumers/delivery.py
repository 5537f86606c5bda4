"""Receive, ack, nack, extend and term: the consumer's leases (docs/architecture.md, "Consumers"). This
module is what the API calls: `Consumers` (what they share, from `context`), `receive` and its wait, and
the settling of leases (from `settling`).

A receive reads the consumer's state (head and in-flight events, one query), asks `planning` what to
deliver, then commits it under conditions: new events are taken from the log by moving the head from
the version that was read (so two receives never take the same event), and each redelivery is leased
only at the `lease_seq` that was read (so no two workers hold one lease). One receive is in `receiving`,
what it reads of the log in `log_reads`, its commits in `leasing`, and what this instance remembers of
each consumer between receives in `instance_memory`.
"""

from __future__ import annotations

from pullbridge.consumers import planning
from pullbridge.consumers.context import ConsumerObserver, Consumers
from pullbridge.consumers.models import ReceiveResult
from pullbridge.consumers.receiving import receive_once
from pullbridge.consumers.records import StoredConsumer, not_found
from pullbridge.consumers.settling import ack, extend, nack, term
from pullbridge.events import POLL_INTERVAL_SECONDS
from pullbridge.storage import ConsumerState

__all__ = ["ConsumerObserver", "Consumers", "ack", "extend", "nack", "receive", "term"]


def receive(ctx: Consumers, consumer: StoredConsumer, max_batch_size: int, wait: float) -> ReceiveResult:
    """Up to `max_batch_size` deliveries; with `wait`, held until one can be made or the wait ends."""
    deadline = ctx.clock() + wait
    while True:
        deliveries, next_due = receive_once(ctx, consumer, max_batch_size, deadline)
        if deliveries or ctx.clock() >= deadline:
            return ReceiveResult(data=deliveries)
        if not _await_deliverable(ctx, consumer, next_due, deadline):
            # Nothing came by the end of the wait, as far as the probes saw: the next receive reads anew
            return ReceiveResult(data=[])


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


def _state(ctx: Consumers, consumer: StoredConsumer, *, consistent: bool = True) -> ConsumerState:
    state = ctx.store.read_consumer_state(consumer.tenant_id, consumer.id, consistent=consistent)
    if state is None:
        raise not_found(consumer.id)
    return state
