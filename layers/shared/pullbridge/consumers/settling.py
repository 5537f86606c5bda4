"""Ack, nack, extend and term: each settles the leases its ack ids name, and only those still running,
under conditions on their `lease_seq` (docs/architecture.md, "Consumers"). An ack id whose lease ran out,
or was given again since, is answered expired and changes nothing; a second ack of one id, acked."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from pullbridge.clock import to_iso
from pullbridge.consumers.ack_ids import AckId, decode_ack_ids
from pullbridge.consumers.context import Consumers
from pullbridge.consumers.leasing import bury_events
from pullbridge.consumers.models import AckResult, ExtendResult, NackResult, TermResult
from pullbridge.consumers.records import StoredConsumer
from pullbridge.storage import InFlight


def ack(ctx: Consumers, consumer: StoredConsumer, ack_ids: list[str]) -> AckResult:
    """A second ack of the same id is harmless and counts as acked (its receipt says so). An ack of an
    earlier lease is expired: the event's lease ran out, and it was delivered again (or buried)."""
    held = _held(ctx, consumer, ack_ids)
    latest = _latest_leases(held.values())
    groups = {
        ack_id.position: ack_id.group
        for ack_id in held.values()
        if ack_id.group is not None and latest[ack_id.position] == ack_id.lease_seq
    }
    outcome = ctx.store.settle(
        consumer.tenant_id,
        consumer.id,
        sorted(latest.items()),
        now=ctx.clock(),
        clock=ctx.clock,
        groups=groups,
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
    buried = bury_events(ctx, consumer, live, now, reason=reason or "termed", leased_only=True)
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
        groups={p: group for p in afters if (group := current[p].group) is not None},
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
    """The in-flight events these ack ids name, as they are now (one read of just those, and of the lease
    groups they were given in)."""
    ack_ids = list(ack_ids)
    positions = sorted({ack_id.position for ack_id in ack_ids})
    if not positions:
        return {}
    groups = {ack_id.group for ack_id in ack_ids if ack_id.group is not None}
    return {
        item.position: item
        for item in ctx.store.in_flight_at(consumer.tenant_id, consumer.id, positions, groups)
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
