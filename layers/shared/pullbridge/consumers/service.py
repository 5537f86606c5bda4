"""Consumers: create, list, look at, change, delete and seek; their dead letters. Receiving and settling
leases is `delivery`; the decisions are `planning`."""

from __future__ import annotations

from dataclasses import replace

from pullbridge.clock import to_iso
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import (
    Consumer,
    ConsumerCreate,
    ConsumerPage,
    ConsumerUpdate,
    DeadLetter,
    DeadLetterPage,
    RedriveRequest,
    RedriveResult,
    SeekRequest,
    stored_filters,
)
from pullbridge.consumers.positions import backlog, start_position
from pullbridge.consumers.records import StoredConsumer, find_consumer, forget, named, not_found
from pullbridge.cursors import Cursor, scope_of
from pullbridge.errors import Conflict, InvalidCursor, NotFound
from pullbridge.ids import event_position, new_id
from pullbridge.models import Event
from pullbridge.paging import page_index
from pullbridge.storage import ConsumerHead, DeadLetterRow, InFlight, keys
from pullbridge.storage.consumer_items import LEASE_EPOCH_BITS

_UPDATE_ATTEMPTS = 5
_SEEK_ATTEMPTS = 8


def create_consumer(ctx: Consumers, tenant_id: str, request: ConsumerCreate) -> Consumer:
    now = ctx.clock()
    consumer = StoredConsumer(
        id=new_id("cns"),
        tenant_id=tenant_id,
        name=request.name,
        filters=stored_filters(request.filters),
        ack_wait_seconds=request.ack_wait_seconds,
        max_deliveries=request.max_deliveries,
        max_ack_pending=request.max_ack_pending,
        ordering=request.ordering,
        created_at=to_iso(now),
        updated_at=to_iso(now),
    )
    position = start_position(
        ctx.store, ctx.codec, tenant_id, consumer.event_filters, request.start, field="start"
    )
    head = ConsumerHead(position=position, version=1, counted_to=position, pending=0)
    created = ctx.store.create_consumer(
        tenant_id, consumer.id, consumer.name, consumer.model_dump(), consumer.index_key(), head
    )
    if not created:
        raise Conflict(f"a consumer named {request.name} exists already", key="consumer_exists")
    named(consumer)
    return describe(ctx, consumer)


def get_consumer(ctx: Consumers, tenant_id: str, reference: str) -> Consumer:
    return describe(ctx, find_consumer(ctx.store, tenant_id, reference))


def describe(ctx: Consumers, consumer: StoredConsumer) -> Consumer:
    """The consumer with its exact counts (see `positions.backlog`)."""
    state = ctx.store.read_consumer_state(consumer.tenant_id, consumer.id)
    if state is None:
        raise not_found(consumer.id)
    now = ctx.clock()
    found = backlog(
        ctx.store, ctx.reader, consumer.tenant_id, consumer.id, consumer.event_filters, state, now
    )
    ctx.observer.described(consumer, pending=found.num_pending, lag_seconds=found.lag_seconds)
    leased = [item for item in state.in_flight if item.state == "leased"]
    waiting = [item for item in state.in_flight if item.state == "waiting" and item.delivery_count > 0]
    return Consumer(
        id=consumer.id,
        name=consumer.name,
        filters=consumer.public_filters(),
        ack_wait_seconds=consumer.ack_wait_seconds,
        max_deliveries=consumer.max_deliveries,
        max_ack_pending=consumer.max_ack_pending,
        ordering=consumer.ordering,
        num_pending=found.num_pending,
        num_ack_pending=len(leased),
        num_waiting=len(waiting),
        num_dead=ctx.store.dead_letter_count(consumer.tenant_id, consumer.id),
        lag_seconds=found.lag_seconds,
        created_at=consumer.created_at,
        updated_at=consumer.updated_at,
    )


def list_consumers(ctx: Consumers, tenant_id: str, *, cursor: str | None, limit: int) -> ConsumerPage:
    page = page_index(
        ctx.store,
        ctx.codec,
        tenant_id,
        partition=keys.consumers_index(tenant_id),
        scope=scope_of("consumers", {}),
        cursor=cursor,
        limit=limit,
    )
    consumers = [StoredConsumer.model_validate(document) for document in page.documents]
    return ConsumerPage(
        data=[describe(ctx, consumer) for consumer in consumers],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


def update_consumer(ctx: Consumers, tenant_id: str, reference: str, request: ConsumerUpdate) -> Consumer:
    for _ in range(_UPDATE_ATTEMPTS):
        consumer = find_consumer(ctx.store, tenant_id, reference)
        changes = request.model_dump(include=request.model_fields_set)
        if changes.get("ack_wait_seconds") is None:
            changes.pop("ack_wait_seconds", None)
        if changes.get("max_ack_pending") is None:
            changes.pop("max_ack_pending", None)
        updated = consumer.model_copy(
            update=changes | {"updated_at": to_iso(ctx.clock()), "version": consumer.version + 1}
        )
        if ctx.store.update_consumer_record(
            consumer.id, updated.model_dump(), updated.index_key(), consumer.version
        ):
            forget(consumer.id)
            return describe(ctx, updated)
    raise Conflict("the consumer changed concurrently; retry", key="concurrent_update")


def delete_consumer(ctx: Consumers, tenant_id: str, reference: str) -> None:
    consumer = find_consumer(ctx.store, tenant_id, reference)
    ctx.store.delete_consumer(tenant_id, consumer.id, consumer.name)
    forget(consumer.id)


def seek(ctx: Consumers, tenant_id: str, reference: str, request: SeekRequest) -> Consumer:
    """Moves the position. Everything in flight is dropped: what lies before the new position is no
    longer delivered, and what lies after it comes again from the log, in order."""
    consumer = find_consumer(ctx.store, tenant_id, reference)
    position = start_position(
        ctx.store, ctx.codec, tenant_id, consumer.event_filters, request.target(), field="seek"
    )
    for _ in range(_SEEK_ATTEMPTS):
        state = ctx.store.read_consumer_state(tenant_id, consumer.id)
        if state is None:
            raise not_found(reference)
        moved = ConsumerHead(position, state.head.version + 1, counted_to=position, pending=0)
        if ctx.store.move_head(tenant_id, consumer.id, state.head, moved, drop=state.in_flight, seek=True):
            return describe(ctx, consumer)
    raise Conflict("the consumer is busy; retry the seek", key="concurrent_update")


# --- dead letters ----------------------------------------------------------------------------------------


def list_dead_letters(
    ctx: Consumers, tenant_id: str, reference: str, *, cursor: str | None, limit: int
) -> DeadLetterPage:
    consumer = find_consumer(ctx.store, tenant_id, reference)
    scope = scope_of("dead-letters", {"consumer": consumer.id})
    after = 0
    if cursor:
        after = ctx.codec.decode(cursor, tenant_id=tenant_id, scope=scope).position
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise InvalidCursor("the cursor is not valid", data={"field": "cursor"})
    rows, more = ctx.store.dead_letters(tenant_id, consumer.id, after=after, limit=limit)
    if rows:
        after = rows[-1].item.position
    return DeadLetterPage(
        data=[_dead_letter(row) for row in rows],
        next_cursor=ctx.codec.encode(Cursor(tenant_id, scope, after, ctx.clock())),
        has_more=more,
    )


def _dead_letter(row: DeadLetterRow) -> DeadLetter:
    event = row.event if "received_at" in row.event else None
    return DeadLetter(
        event_id=row.item.event_id,
        delivery_count=row.item.delivery_count,
        reason=row.reason,
        dead_at=to_iso(row.dead_at),
        event=Event.model_validate(event) if event else None,
    )


def redrive(ctx: Consumers, tenant_id: str, reference: str, request: RedriveRequest) -> RedriveResult:
    """Dead letters back into rotation as new deliveries (`delivery_count` starts again), as many as the
    consumer has room for in flight (`max_ack_pending`); `remaining` says how many are still dead."""
    consumer = find_consumer(ctx.store, tenant_id, reference)
    state = ctx.store.read_consumer_state(tenant_id, consumer.id)
    if state is None:
        raise not_found(reference)
    room = max(0, consumer.max_ack_pending - len(state.in_flight))
    now = ctx.clock()
    if request.all:
        live = _redrivable(ctx, tenant_id, consumer.id, room, now)
    else:
        positions = [
            position for event_id in request.event_ids or [] if (position := event_position(event_id))
        ]
        wanted = set(request.event_ids or [])
        rows = ctx.store.dead_letters_at(tenant_id, consumer.id, positions)
        live = [row for row in rows if row.item.event_id in wanted and row.item.expires_at > now]
    # One whose event is in flight again (a seek back took it from the log again) stays: the put below
    # would find an event's own item there, but not a lease group's.
    held = {item.position for item in state.in_flight}
    live = [row for row in live if row.item.position not in held]
    # A dead letter after the consumer's position (after a seek back) comes again from the log: it leaves
    # the dead letters, and the log delivers it, once. Any other goes back in flight, to be delivered anew.
    moves: list[tuple[DeadLetterRow, InFlight | None]] = [
        (
            row,
            None
            if row.item.scope_position > state.head.position
            else replace(
                row.item,
                state="waiting",
                due_at=0.0,
                delivery_count=0,
                lease_seq=redriven_lease_seq(row.item.lease_seq, state.head),
            ),
        )
        for row in live[:room]
    ]
    moved = ctx.store.unbury(tenant_id, consumer.id, moves)
    return RedriveResult(redriven=moved, remaining=ctx.store.dead_letter_count(tenant_id, consumer.id))


def redriven_lease_seq(buried: int, head: ConsumerHead) -> int:
    """A redriven event's first `seq`: above every lease its event ever had, as `seq` must be (of two ack
    ids of one event, the higher is the later lease). Its buried lease's `seq` alone may not be: a seek
    back may have taken the event from the log again in a later epoch, and a seek forward dropped that
    lease since. So it starts in the epoch the head's next move would write, which no take of this event
    can write (the event lies behind the head, and a seek takes that version itself), or just past its
    buried lease when that is higher still (a second redrive before the head moved)."""
    return max(buried + 1, (head.version + 1) << LEASE_EPOCH_BITS)


def _redrivable(
    ctx: Consumers, tenant_id: str, consumer_id: str, room: int, now: float
) -> list[DeadLetterRow]:
    """The oldest `room` dead letters whose event is still in the log. One past retention has no event
    to deliver from the log: it stays a dead letter (with its copy) until discarded, and the search goes
    on past it instead of stopping there."""
    found: list[DeadLetterRow] = []
    after = 0
    while len(found) < room:
        rows, more = ctx.store.dead_letters(tenant_id, consumer_id, after=after, limit=max(room, 100))
        found += [row for row in rows if row.item.expires_at > now]
        if not more or not rows:
            break
        after = rows[-1].item.position
    return found[:room]


def discard_dead_letter(ctx: Consumers, tenant_id: str, reference: str, event_id: str) -> None:
    consumer = find_consumer(ctx.store, tenant_id, reference)
    position = event_position(event_id)
    rows = ctx.store.dead_letters_at(tenant_id, consumer.id, [position]) if position else []
    rows = [row for row in rows if row.item.event_id == event_id]
    if not rows or not ctx.store.unbury(tenant_id, consumer.id, [(rows[0], None)]):
        raise NotFound(f"no dead letter {event_id}", key="dead_letter_not_found")
