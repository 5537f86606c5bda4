"""Receive, ack, nack, extend and term: the consumer's leases (docs/architecture.md, "Consumers").

A receive reads the consumer's state (head and in-flight events, one query), asks `planning` what to
deliver, then commits it under conditions: new events are taken from the log by moving the head from
the version that was read (so two receives never take the same event), and each redelivery is leased
only at the `lease_seq` that was read (so no two workers hold one lease).
"""

from __future__ import annotations

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
from pullbridge.events import POLL_INTERVAL_SECONDS, EventReader
from pullbridge.ids import event_position
from pullbridge.models import Event
from pullbridge.storage import ConsumerHead, ConsumerState, DeadLetterRow, InFlight, LoggedEvent, Store

MAX_RECEIVE_ATTEMPTS = 20
"""Receives racing for one consumer's head retry; each loss means another receive took events."""
LEASE_EPOCH_BITS = 32
"""An event taken from the log again (after a seek back) starts its leases in a new epoch: the head's
version when it was taken, in the high bits of `lease_seq`. So no ack id of an earlier take can ever
match a later lease."""
CLAIMS_PER_TRANSACTION = 99


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
        deliveries, next_due = _receive_once(ctx, consumer, max_batch_size)
        if deliveries or ctx.clock() >= deadline:
            return ReceiveResult(data=deliveries)
        _await_deliverable(ctx, consumer, next_due, deadline)


def _receive_once(
    ctx: Consumers, consumer: StoredConsumer, max_batch_size: int
) -> tuple[list[Delivery], float | None]:
    limits = consumer.limits(max_batch_size)
    for attempt in range(MAX_RECEIVE_ATTEMPTS):
        state = _state(ctx, consumer)
        now = ctx.clock()
        plan = planning.plan_redeliveries(state.in_flight, now, limits)
        logged: list[LoggedEvent] = []
        scanned_to = state.head.position
        wanted = planning.claims_worth_taking(
            min(
                planning.room_for_new(state.in_flight, limits) + len(plan.dead),
                limits.max_batch_size - len(plan.redeliver),
            ),
            CLAIMS_PER_TRANSACTION,
        )
        if wanted > 0:
            logged, scanned_to, _, _ = ctx.reader.collect(
                consumer.tenant_id, consumer.event_filters, state.head.position, 0.0, wanted
            )
        # An event the log holds after the position may be in flight already: a dead letter redriven
        # after a seek back. The in-flight item delivers it; the log read passes over it.
        held = {item.position for item in state.in_flight}
        new_events = [event for entry in logged if (event := _new_event(entry)).position not in held]
        passed_over = [entry.position for entry in logged if _tenant_position(entry) in held]
        plan = planning.plan_new(
            plan, state.in_flight, new_events, limits, position=state.head.position, scanned_to=scanned_to
        )
        taken = _take(
            ctx, consumer, state, plan, {entry.position: entry for entry in logged}, now, passed_over
        )
        if taken is None:
            # Another receive moved the head first, and took what this one read: read again, after a
            # random pause, so that racing receives spread out instead of colliding in step.
            ctx.sleep(random.uniform(0.001, 0.004) * min(attempt + 1, 8))  # noqa: S311 - jitter
            continue
        again = _redeliver(ctx, consumer, plan, now)
        buried = len(_bury(ctx, consumer, plan.dead, now, reason="max_deliveries", leased_only=False))
        deliveries = taken + again
        if deliveries or buried:
            ctx.observer.delivered(consumer, first=len(taken), again=len(again), dead=buried)
        next_due = planning.next_due(state.in_flight, now, consumer.ordering)
        return sorted(deliveries, key=lambda delivery: delivery.event.id), next_due
    # Every attempt lost the race to other receives, each of which took events: this one answers with
    # nothing now (a waiting receive tries again), as a consumer with nothing to deliver would.
    return [], None


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
    state: ConsumerState,
    plan: planning.ReceivePlan,
    by_scope_position: dict[int, LoggedEvent],
    now: float,
    passed_over: list[int],
) -> list[Delivery] | None:
    """Takes the plan's new events from the log: the head moves over them in the same transactions that
    hold them in flight. None when another receive moved the head first (nothing was taken)."""
    if plan.new_position is None:
        return []
    lease_until = planning.lease_until(now, consumer.limits(1))
    retention = ctx.store.retention_seconds
    epoch = state.head.version + 1  # the version this receive's first move writes: no other take has it
    claims = [
        _claim(by_scope_position[event.scope_position], "leased", lease_until, 1, retention, epoch)
        for event in plan.deliver_new
    ]
    claims += [
        _claim(by_scope_position[event.scope_position], "waiting", 0.0, 0, retention, epoch)
        for event in plan.queue_new
    ]
    claims.sort(key=lambda claim: claim.scope_position)
    head = state.head
    delivered: list[Delivery] = []
    chunks = [
        claims[start : start + CLAIMS_PER_TRANSACTION]
        for start in range(0, len(claims), CLAIMS_PER_TRANSACTION)
    ] or [[]]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        position = plan.new_position if last else chunk[-1].scope_position
        left = [claim.scope_position for claim in chunk] + (passed_over if last else [])
        pending = planning.pending_after_take(head.counted_to, head.pending, left)
        moved = ConsumerHead(
            position=position,
            version=head.version + 1,
            counted_to=max(head.counted_to, position),
            pending=pending,
        )
        if not ctx.store.take_from_log(consumer.tenant_id, consumer.id, head, moved, chunk):
            return None if index == 0 else delivered
        head = moved
        delivered += [
            _delivery(ctx, consumer, claim, by_scope_position[claim.scope_position].document, now)
            for claim in chunk
            if claim.state == "leased"
        ]
    return delivered


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
    leased = ctx.store.relet(consumer.tenant_id, consumer.id, changes)
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
) -> None:
    """Hold until something may be deliverable: an in-flight event falls due (slept until exactly then,
    so a redelivery goes out within a probe's time of its lease running out), or the log's head moves.
    Probes are eventually consistent and cheap; only a consistent receive decides what is delivered."""
    while (now := ctx.clock()) < deadline:
        wake = min(deadline, now + POLL_INTERVAL_SECONDS, next_due if next_due is not None else deadline)
        ctx.sleep(max(0.0, wake - now))
        state = _state(ctx, consumer, consistent=False)
        now = ctx.clock()
        if planning.due(state.in_flight, now, consumer.ordering):
            return
        # A full consumer (max_ack_pending reached) takes nothing new, however far the log has moved.
        if planning.room_for_new(state.in_flight, consumer.limits(1)) > 0 and (
            ctx.store.log_head(consumer.tenant_id, consumer.event_filters.connection_id, consistent=False)
            > state.head.position
        ):
            return
        next_due = planning.next_due(state.in_flight, now, consumer.ordering)


# --- settling leases -------------------------------------------------------------------------------------


def ack(ctx: Consumers, consumer: StoredConsumer, ack_ids: list[str]) -> AckResult:
    """A second ack of the same id is harmless and counts as acked (its receipt says so). An ack of an
    earlier lease is expired: the event's lease ran out, and it was delivered again (or buried)."""
    held = _held(ctx, consumer, ack_ids)
    latest = _latest_leases(held.values())
    outcome = ctx.store.settle(consumer.tenant_id, consumer.id, sorted(latest.items()), now=ctx.clock())
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
    current = {item.position: item for item in _state(ctx, consumer).in_flight}
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
    current = {item.position: item for item in _state(ctx, consumer).in_flight}
    afters = {item.position: change(item) for item in _live_leases(held.values(), current, now)}
    outcome = ctx.store.settle(
        consumer.tenant_id, consumer.id, [(p, current[p].lease_seq) for p in afters], now=now, after=afters
    )
    expired = [
        token
        for token, ack_id in held.items()
        if ack_id.position not in afters
        or current[ack_id.position].lease_seq != ack_id.lease_seq
        or outcome.get(ack_id.position) != "done"
    ]
    return len(held) - len(expired), expired


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
