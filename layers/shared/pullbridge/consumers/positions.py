"""Where a consumer starts or seeks to, and its exact pending count and lag.

A consumer's position is a position in the log its filters read (`EventFilters.connection_id` alone: that
connection's log; anything else: the tenant log), the same position a `GET /events` cursor of the same
filters holds. So a cursor can start a consumer, and the consumer reads the log exactly as that cursor
would, through `EventReader.collect`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from pullbridge.consumers.models import StartAt
from pullbridge.cursors import CursorCodec
from pullbridge.errors import InvalidCursor, ValidationFailed
from pullbridge.events import EventFilters, EventReader
from pullbridge.storage import ConsumerHead, ConsumerState, Store

COUNT_PAGE = 1000


def start_position(
    store: Store,
    codec: CursorCodec,
    tenant_id: str,
    filters: EventFilters,
    start: Literal["all", "new"] | StartAt,
    *,
    field: str,
) -> int:
    """The position after which the consumer delivers: 0 for "all", the log's head for "new"."""
    if isinstance(start, str):
        return 0 if start == "all" else store.log_head(tenant_id, filters.connection_id, consistent=True)
    if start.time is not None:
        return _position_before(store, tenant_id, filters.connection_id, start.time)
    try:
        position = codec.decode(start.cursor or "", tenant_id=tenant_id, scope=filters.scope()).position
    except InvalidCursor as exc:
        raise ValidationFailed(
            f"{field}.cursor: {exc.message}", key=exc.key, data={"field": f"{field}.cursor"}
        ) from exc
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise ValidationFailed(
            f"{field}.cursor: the cursor is not valid",
            key="invalid_cursor",
            data={"field": f"{field}.cursor"},
        )
    return position


def _position_before(store: Store, tenant_id: str, connection_id: str | None, moment: datetime) -> int:
    """The last position of events received before `moment`: a binary search over the log's positions,
    about log2(head) reads, at create and seek only. Arrival order is log order, to within the write
    deadline of concurrent writers."""
    wanted = moment.timestamp()
    low, high = 1, store.log_head(tenant_id, connection_id, consistent=True) + 1
    while low < high:  # the first position whose next event was received at or after `moment`
        middle = (low + high) // 2
        found = store.received_at_or_after(tenant_id, connection_id, middle)
        if found is None or _epoch(found[1]) >= wanted:
            high = middle
        else:
            low = found[0] + 1
    return low - 1


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Backlog:
    num_pending: int
    lag_seconds: float
    head: ConsumerHead


def backlog(
    store: Store,
    reader: EventReader,
    tenant_id: str,
    consumer_id: str,
    filters: EventFilters,
    state: ConsumerState,
    now: float,
) -> Backlog:
    """The exact number of matching events not yet delivered, and the age of the oldest.

    The head keeps `pending`, the count of matching events in (`position`, `counted_to`]; a receive that
    takes counted events subtracts them in the same write that moves the position. Here the log past
    `counted_to` is counted, once: the count is saved with the version that was read, so each event is
    read for counting once, however often the consumer is looked at."""
    head = state.head
    counted_to, pending = (
        max(head.counted_to, head.position),
        head.pending if head.counted_to > head.position else 0,
    )
    while True:
        logged, counted_to_now, _, more = reader.collect(tenant_id, filters, counted_to, 0.0, COUNT_PAGE)
        pending += len(logged)
        counted_to = counted_to_now
        if not more:
            break
    if (counted_to, pending) != (head.counted_to, head.pending):
        counted = replace(head, counted_to=counted_to, pending=pending)
        if store.move_head(tenant_id, consumer_id, head, counted):
            head = replace(counted, version=head.version + 1)
    queued = [item for item in state.in_flight if item.delivery_count == 0]
    oldest = [item.received_at for item in queued]
    first, _, _, _ = reader.collect(tenant_id, filters, head.position, 0.0, 1)
    if first:
        oldest.append(_epoch(first[0].document["received_at"]))
    lag = max(0.0, now - min(oldest)) if oldest else 0.0
    return Backlog(num_pending=pending + len(queued), lag_seconds=round(lag, 3), head=head)
