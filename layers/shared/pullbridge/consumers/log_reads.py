"""What a receive read of the consumer's log (`LogRead`, through the log's reader, so never past an
unresolved position), and which of it the receive may take (`candidates`)."""

from __future__ import annotations

from dataclasses import dataclass

from pullbridge.consumers import planning
from pullbridge.consumers.context import Consumers
from pullbridge.consumers.records import StoredConsumer
from pullbridge.ids import event_position
from pullbridge.storage import LoggedEvent


@dataclass(frozen=True)
class LogRead:
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

    def then(self, later: LogRead) -> LogRead:
        """This read followed by `later`, which starts where this one ends."""
        return LogRead(self.start, self.events + later.events, later.scanned_to, later.more)


def read_log_after(
    ctx: Consumers, consumer: StoredConsumer, position: int, limit: int, bound: int | None
) -> LogRead:
    """Up to `limit` matching events after `position`, none past `bound`."""
    logged, scanned_to, _, more = ctx.reader.collect(
        consumer.tenant_id, consumer.event_filters, position, 0.0, limit
    )
    if bound is not None and scanned_to > bound:
        logged = [entry for entry in logged if entry.position <= bound]
        scanned_to, more = bound, True
    return LogRead(position, logged, scanned_to, more)


def candidates(
    read: LogRead, position: int, held: set[int], wanted: int
) -> tuple[list[planning.NewEvent], list[int], int]:
    """What a receive whose head is at `position` may take from `read`: at most `wanted` new events, the
    log positions of the in-flight ones it passes over on the way, and how far they reach (the end of
    the read when it holds no more, else the last event given)."""
    if wanted <= 0:
        return [], [], position
    new_events: list[planning.NewEvent] = []
    passed_over: list[int] = []
    for entry in read.after(position):
        if tenant_position(entry) in held:
            passed_over.append(entry.position)
            continue
        if len(new_events) == wanted:
            reach = new_events[-1].scope_position
            return new_events, [at for at in passed_over if at <= reach], reach
        new_events.append(_new_event(entry))
    return new_events, passed_over, read.scanned_to


def _new_event(entry: LoggedEvent) -> planning.NewEvent:
    return planning.NewEvent(
        position=tenant_position(entry),
        scope_position=entry.position,
        event_id=entry.document["id"],
        record_key=planning.record_key(entry.document),
    )


def tenant_position(entry: LoggedEvent) -> int:
    position = event_position(entry.document["id"])
    return position if position is not None else entry.position
