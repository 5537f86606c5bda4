"""The pure decisions of a consumer: what a `receive` delivers, what becomes a dead letter, what waits.

No I/O here: the service reads the consumer's state and the log, asks `plan_receive`, and the storage
commits the plan with conditions that make it exclusive (docs/architecture.md, "Consumers").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pullbridge.storage.model import InFlight

Ordering = Literal["record", "none"]


@dataclass(frozen=True)
class NewEvent:
    """An event read from the log after the consumer's position, matching its filters."""

    position: int
    scope_position: int
    event_id: str
    record_key: str | None


@dataclass(frozen=True)
class Limits:
    max_batch_size: int
    max_ack_pending: int
    max_deliveries: int | None
    ack_wait_seconds: float
    ordering: Ordering


@dataclass
class ReceivePlan:
    redeliver: list[InFlight] = field(default_factory=list)
    """Due again (lease ran out, or nacked): leased anew, `delivery_count` + 1."""
    dead: list[InFlight] = field(default_factory=list)
    """Due again but delivered `max_deliveries` times: they leave the rotation."""
    deliver_new: list[NewEvent] = field(default_factory=list)
    """Taken from the log and leased now (first delivery)."""
    queue_new: list[NewEvent] = field(default_factory=list)
    """Taken from the log but held back behind an earlier event of the same record."""
    new_position: int | None = None
    """The consumer's scope position after what it took; None when it takes nothing new."""

    @property
    def delivers(self) -> int:
        return len(self.redeliver) + len(self.deliver_new)


def record_key(event: dict[str, Any]) -> str | None:
    """Events of one upstream record share this key; events without a record id have none."""
    record_id = event.get("record_id")
    if not record_id:
        return None
    return f"{event.get('connection_id')}\x1f{event.get('collection')}\x1f{record_id}"


def held_back(in_flight: Iterable[InFlight], ordering: Ordering) -> set[int]:
    """Positions that may not go out now. With `ordering: "record"`, one event of a record at a time:
    while one is leased (its lease running or run out), every other event of its record waits; with
    none leased, only the earliest may go. So a redriven dead letter waits for a later event of its
    record that is out, and events queued behind an event go out in log order after it."""
    if ordering == "none":
        return set()
    by_record: dict[str, list[InFlight]] = {}
    for item in in_flight:
        if item.record_key is not None:
            by_record.setdefault(item.record_key, []).append(item)
    blocked: set[int] = set()
    for items in by_record.values():
        leased = [item for item in items if item.state == "leased"]
        allowed = min(leased or items, key=lambda item: item.position)
        blocked.update(item.position for item in items if item is not allowed)
    return blocked


def due(in_flight: Sequence[InFlight], now: float, ordering: Ordering) -> list[InFlight]:
    """In-flight events that may go out now, oldest first."""
    blocked = held_back(in_flight, ordering)
    return sorted(
        (item for item in in_flight if item.due_at <= now and item.position not in blocked),
        key=lambda item: item.position,
    )


def next_due(in_flight: Sequence[InFlight], now: float, ordering: Ordering) -> float | None:
    """When the next in-flight event that is not held back falls due; None when none will by itself (an
    event held behind its record waits for an ack, not for a time)."""
    blocked = held_back(in_flight, ordering)
    return min(
        (item.due_at for item in in_flight if item.due_at > now and item.position not in blocked),
        default=None,
    )


def room_for_new(in_flight: int, limits: Limits) -> int:
    """How many more events the consumer may take from the log, with `in_flight` events in flight:
    `max_ack_pending` bounds its in-flight state (leased or waiting), so that state, and each receive's
    read of it, stays bounded."""
    return max(0, limits.max_ack_pending - in_flight)


def plan_redeliveries(in_flight: Sequence[InFlight], now: float, limits: Limits) -> ReceivePlan:
    """Buries first what is due again but was delivered `max_deliveries` times, so that a buried event
    no longer holds its record back; then leases again what may go out, oldest first."""
    plan = ReceivePlan()
    if limits.max_deliveries is not None:
        plan.dead = [
            item for item in in_flight if item.due_at <= now and item.delivery_count >= limits.max_deliveries
        ]
    buried = {item.position for item in plan.dead}
    remaining = [item for item in in_flight if item.position not in buried]
    plan.redeliver = due(remaining, now, limits.ordering)[: limits.max_batch_size]
    return plan


def plan_new(
    plan: ReceivePlan,
    in_flight: Sequence[InFlight],
    new_events: Sequence[NewEvent],
    limits: Limits,
    *,
    count: int,
    position: int,
    scanned_to: int,
) -> ReceivePlan:
    """Takes new events in log order while there is room: each goes out now, or waits behind an earlier
    in-flight event of its record (`ordering: "record"`).

    `count` events are in flight, of which `in_flight` holds at least every one of the new events'
    records. `new_events` are every matching event the read found in (`position`, `scanned_to`]. The
    consumer's position moves past the last event taken; when all were taken, to `scanned_to`, past the
    events that did not match, so they are not read again."""
    buried = {item.position for item in plan.dead}
    busy = {
        item.record_key
        for item in in_flight
        if item.record_key is not None and item.position not in buried and limits.ordering == "record"
    }
    room = room_for_new(count, limits) + len(plan.dead)
    for event in new_events:
        if room == 0 or plan.delivers == limits.max_batch_size:
            break
        if event.record_key is not None and event.record_key in busy:
            plan.queue_new.append(event)
        else:
            plan.deliver_new.append(event)
            if limits.ordering == "record" and event.record_key is not None:
                busy.add(event.record_key)
        room -= 1
        plan.new_position = event.scope_position
    taken = len(plan.deliver_new) + len(plan.queue_new)
    if taken == len(new_events) and scanned_to > position:
        plan.new_position = scanned_to
    return plan


def claims_worth_taking(wanted: int, per_transaction: int) -> int:
    """How many new events a receive takes: past one transaction's worth, whole transactions only, so a
    batch of 100 is one commit of 99 rather than two (99, then 1)."""
    if wanted <= per_transaction:
        return wanted
    return wanted - wanted % per_transaction


def lease_until(now: float, limits: Limits) -> float:
    return now + limits.ack_wait_seconds


def pending_after_take(counted_to: int, pending: int, taken_scope_positions: Iterable[int]) -> int:
    """The exact count of matching events not yet taken, after a receive took some: those it took that
    were counted leave the count; the count never includes positions past `counted_to`."""
    return max(0, pending - sum(1 for position in taken_scope_positions if position <= counted_to))
