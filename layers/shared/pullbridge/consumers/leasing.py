"""A receive's plan, committed under conditions: new events taken from the log by moving the head from
the version that was read, in the transactions that hold them in flight (so two receives never take the
same event); due events leased again only at the `lease_seq` that was read (so no two workers hold one
lease); events buried in the dead letters (for `max_deliveries`, or a term). Each delivery carries its
signed ack id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from pullbridge.clock import to_iso
from pullbridge.consumers import planning
from pullbridge.consumers.ack_ids import AckId, encode_ack_id
from pullbridge.consumers.context import Consumers
from pullbridge.consumers.log_reads import tenant_position
from pullbridge.consumers.models import Delivery
from pullbridge.consumers.records import StoredConsumer
from pullbridge.models import Event
from pullbridge.storage import ConsumerHead, DeadLetterRow, InFlight, LoggedEvent
from pullbridge.storage.consumer_items import GROUP_MIN_MEMBERS, LEASE_EPOCH_BITS

CLAIMS_PER_TRANSACTION = 99


def take_new_events(
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
        _grouped(claims[start : start + CLAIMS_PER_TRANSACTION])
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


def _grouped(claims: list[InFlight]) -> list[InFlight]:
    """The claims of one transaction, those it leases held in one lease group when there are enough of
    them (`GROUP_MIN_MEMBERS`): one item to write, and to delete when their ack comes whole."""
    leased = [claim for claim in claims if claim.state == "leased"]
    if len(leased) < GROUP_MIN_MEMBERS:
        return claims
    group = min(claim.position for claim in leased)
    return [replace(claim, group=group) if claim.state == "leased" else claim for claim in claims]


def _claim(
    entry: LoggedEvent, state: str, due_at: float, delivery_count: int, retention_seconds: int, epoch: int
) -> InFlight:
    """A new event held in flight: leased (delivered now, its first lease) or waiting (queued, no lease
    yet). Its item leaves with its event, at the end of retention."""
    document = entry.document
    received_at = _epoch(document["received_at"])
    return InFlight(
        position=tenant_position(entry),
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


def lease_again(
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
                group=None,  # leased again in an item of its own (`relet` splits its group first)
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


def bury_events(
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
            ctx.codec, consumer.tenant_id, consumer.id, AckId(item.position, item.lease_seq, item.group), now
        ),
        delivery_count=item.delivery_count,
        lease_expires_at=to_iso(item.due_at),
        event=Event.model_validate(document),
    )


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
