"""A consumer's history, recorded and checked against PRODUCT.md's "Consumers" guarantees.

A history is the list of what happened to one consumer, in the order it was recorded: events written to
the log, receives (which worker got which deliveries), acks, nacks, extensions and terms with what they
answered, clock advances, workers that died (received, then stopped acting), seeks, redrives, snapshots
of the dead letters, and the end of a drained run. `HistoryRecorder` drives the consumer through the
domain and records each call with its outcome; `check(history, config)` replays the history against a
model of the contract and returns the violations, each naming the operations (their indexes in the
history) that break a guarantee.

The checker is pure and knows nothing of the implementation: it is tested on its own, on hand-built
histories (tests/unit/test_consumer_history_checker.py). Every operation carries `at` (when it was sent)
and `until` (when its answer came back; the same as `at` under a test clock that only moves between
calls). A check that depends on time only reports what is certain whenever in [`at`, `until`] the
server acted, so real-time histories with threads give no false alarms.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from pullbridge.consumers import delivery, service
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import Delivery, RedriveRequest, SeekRequest
from pullbridge.consumers.records import StoredConsumer, find_consumer
from pullbridge.ids import event_position

# --- the history -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """One event appended to the log."""

    event_id: str
    position: int
    """Its position in the log the consumer reads: log order, and what a start or a seek compares with."""
    record_key: str | None = None
    """Events of one record share it (connection, collection, record id); None without a record id."""
    matches: bool = True
    """Whether the consumer's filters select it."""


@dataclass(frozen=True)
class Write:
    events: tuple[Written, ...]
    at: float
    writer: str = "writer"
    until: float | None = None


@dataclass(frozen=True)
class Delivered:
    event_id: str
    ack_id: str
    delivery_count: int
    lease_expires_at: float


@dataclass(frozen=True)
class Receive:
    worker: str
    deliveries: tuple[Delivered, ...]
    at: float
    until: float | None = None


@dataclass(frozen=True)
class Ack:
    worker: str
    ack_ids: tuple[str, ...]
    expired: tuple[str, ...]
    """The answer's `expired`; every other ack id was answered as acked."""
    at: float
    until: float | None = None


@dataclass(frozen=True)
class Nack:
    worker: str
    ack_ids: tuple[str, ...]
    delay_seconds: float
    expired: tuple[str, ...]
    at: float
    until: float | None = None


@dataclass(frozen=True)
class Extend:
    worker: str
    ack_ids: tuple[str, ...]
    seconds: float
    expired: tuple[str, ...]
    at: float
    until: float | None = None
    lease_expires_at: float | None = None
    """What the answer says the extended leases now run until (else `at + seconds`)."""


@dataclass(frozen=True)
class Term:
    worker: str
    ack_ids: tuple[str, ...]
    expired: tuple[str, ...]
    at: float
    until: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Advance:
    """The clock moved to `at` (for the reader; every operation carries its own time)."""

    at: float
    seconds: float = 0.0
    until: float | None = None


@dataclass(frozen=True)
class Death:
    """`worker` stops acting: what it holds is never acked, and must come back to another worker."""

    worker: str
    at: float
    until: float | None = None


@dataclass(frozen=True)
class Seek:
    """The consumer now delivers what lies after `after_position`; everything in flight was dropped."""

    after_position: int
    at: float
    until: float | None = None


@dataclass(frozen=True)
class Redrive:
    """These dead letters went back into rotation (only those that moved)."""

    event_ids: tuple[str, ...]
    at: float
    until: float | None = None


@dataclass(frozen=True)
class DeadRow:
    event_id: str
    delivery_count: int
    reason: str


@dataclass(frozen=True)
class DeadLetters:
    """Every dead letter of the consumer, as listed at `at`."""

    rows: tuple[DeadRow, ...]
    at: float
    until: float | None = None


@dataclass(frozen=True)
class Drained:
    """Every surviving worker drained the consumer: received and acked until nothing was left, with the
    clock moved past every lease and nack delay. From here the final checks apply."""

    at: float
    until: float | None = None


Operation = (
    Write | Receive | Ack | Nack | Extend | Term | Advance | Death | Seek | Redrive | DeadLetters | Drained
)


@dataclass(frozen=True)
class ConsumerConfig:
    """What the checker needs of the consumer."""

    max_deliveries: int | None = 10
    ordering: Literal["record", "none"] = "record"
    start_after: int = 0
    """The consumer's start position: events at or before it are not its to deliver."""
    ack_wait_seconds: float | None = None
    """When given, each new lease must run for this long."""


# --- violations ------------------------------------------------------------------------------------------

SKIPPED = "skipped"
"""A matching event after the position was never delivered by the end of a drained run."""
UNSETTLED = "unsettled"
"""Delivered, but at the end of a drained run neither acked nor a dead letter."""
OVERLAPPING_LEASES = "overlapping_leases"
DELIVERY_COUNT = "delivery_count"
MAX_DELIVERIES = "max_deliveries"
NOT_DEAD_LETTERED = "not_dead_lettered"
"""Termed, or delivered max_deliveries times without an ack, and not among the dead letters."""
UNEXPECTED_DEAD_LETTER = "unexpected_dead_letter"
ACK_AFTER_EXPIRY = "ack_after_expiry"
"""An ack whose lease had run out (or been nacked) was answered as acked, not in `expired`."""
LIVE_LEASE_REFUSED = "live_lease_refused"
"""An ack, nack, extend or term of a lease that was still running came back in `expired`."""
ENDED_LEASE_CHANGED = "ended_lease_changed"
"""A nack, extend or term of a lease that had ended was answered as done."""
REDELIVERED_AFTER_ACK = "redelivered_after_ack"
REDELIVERED_AFTER_TERM = "redelivered_after_term"
NACK_DELAY = "nack_delay"
RECORD_ORDER = "record_order"
"""`ordering: "record"`: an event went out while an earlier event of its record was not yet settled."""
RECORD_OVERLAP = "record_overlap"
"""`ordering: "record"`: two events of one record leased at the same time.

Both note "after a redrive" when one of the record's events was redriven, or "beside a dead letter" when
one went past max_deliveries."""
UNKNOWN_EVENT = "unknown_event"
NOT_MATCHING = "not_matching"
BEFORE_POSITION = "before_position"
LEASE_LENGTH = "lease_length"
ACK_ID_REUSED = "ack_id_reused"
"""Two leases came with one ack id: an ack id must name one lease (note "across a seek" when a seek lay
between them)."""
MALFORMED = "malformed_history"
"""Not the server's fault: the history itself is inconsistent (an unknown ack id, a dead worker acting)."""


@dataclass(frozen=True)
class Violation:
    kind: str
    message: str
    operations: tuple[int, ...]
    """Indexes in the history of the operations involved, the offending one last."""
    event_id: str | None = None
    note: str = ""
    """What the violation happened beside, so known cases can be told apart: for `ack_after_expiry`,
    where the event was when the late ack came, "in flight" (leased again or waiting) or "gone" (acked
    through a later delivery, dead, or dropped by a seek); for `ack_id_reused`, "across a seek"; for
    `record_order` and `record_overlap`, "after a redrive" or "beside a dead letter"."""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message} (operations {list(self.operations)})"


def describe(history: Sequence[Operation], violations: Iterable[Violation], *, limit: int = 20) -> str:
    """The violations with the operations they name, for an assertion message."""
    lines: list[str] = []
    for violation in list(violations)[:limit]:
        lines.append(str(violation))
        lines.extend(f"    [{index}] {history[index]!r}" for index in violation.operations)
    return "\n".join(lines)


# --- the model -------------------------------------------------------------------------------------------


@dataclass
class _Lease:
    event_id: str
    ack_id: str
    worker: str
    op: int
    count: int
    started: float
    expires_at: float
    life: _Life
    ended: str | None = None
    """"acked", "nacked", "termed" (by its holder) or "dropped" (by a seek); None while it runs."""
    ended_op: int | None = None

    def live(self, moment: float) -> bool:
        return self.ended is None and self.expires_at > moment

    def lost(self, moment: float) -> bool:
        """Taken away before its holder settled it: it ran out, or it was nacked."""
        return self.ended == "nacked" or (self.ended is None and self.expires_at <= moment)


@dataclass
class _Life:
    """One event's life between seeks (and since its last redrive)."""

    event_id: str
    redriven_op: int | None = None
    count: int = 0
    lease: _Lease | None = None
    status: str = "open"
    """"open", "acked" or "termed"."""
    settled_op: int | None = None
    due_at: float = -math.inf
    delivered_ops: list[int] = field(default_factory=list)

    def exhausted(self, max_deliveries: int | None, moment: float) -> bool:
        """Delivered max_deliveries times and its last lease was lost: it must become a dead letter."""
        return (
            self.status == "open"
            and max_deliveries is not None
            and self.count >= max_deliveries
            and self.lease is not None
            and self.lease.lost(moment)
        )

    def settled(self, max_deliveries: int | None, moment: float) -> bool:
        return self.status != "open" or self.exhausted(max_deliveries, moment)


@dataclass
class _DeadMark:
    """Why an event should be among the dead letters: termed (it is), or exhausted (once a receive buried
    it; a seek may drop it first)."""

    termed: bool
    op: int


class _Checker:
    def __init__(self, history: Sequence[Operation], config: ConsumerConfig) -> None:
        self.history = history
        self.config = config
        self.violations: list[Violation] = []
        self.events: dict[str, Written] = {}
        self.write_op: dict[str, int] = {}
        for index, operation in enumerate(history):
            if isinstance(operation, Write):
                for event in operation.events:
                    self.events.setdefault(event.event_id, event)
                    self.write_op.setdefault(event.event_id, index)
        self.by_record: dict[str, list[Written]] = {}
        for event in sorted(self.events.values(), key=lambda event: event.position):
            if event.record_key is not None:
                self.by_record.setdefault(event.record_key, []).append(event)
        self.floor = config.start_after
        self.lives: dict[str, _Life] = {}
        self.leases: dict[str, _Lease] = {}
        self.dead: dict[str, _DeadMark] = {}
        self.dead_workers: dict[str, int] = {}
        self.last_snapshot: tuple[int, DeadLetters] | None = None

    def report(
        self,
        kind: str,
        message: str,
        operations: Iterable[int | None],
        event_id: str | None = None,
        note: str = "",
    ) -> None:
        ops = tuple(sorted({op for op in operations if op is not None}))
        self.violations.append(Violation(kind, message, ops, event_id, note))

    # -- helpers

    def life(self, event_id: str) -> _Life:
        if event_id not in self.lives:
            self.lives[event_id] = _Life(event_id)
        return self.lives[event_id]

    def required(self, event: Written) -> bool:
        """Whether the consumer must deliver this event in its current life."""
        if not event.matches:
            return False
        life = self.lives.get(event.event_id)
        return event.position > self.floor or (life is not None and life.redriven_op is not None)

    def notice_exhaustion(self, moment: float, index: int) -> None:
        for life in self.lives.values():
            if life.event_id not in self.dead and life.exhausted(self.config.max_deliveries, moment):
                self.dead[life.event_id] = _DeadMark(termed=False, op=index)

    def acting(self, worker: str, index: int) -> None:
        if worker in self.dead_workers:
            self.report(MALFORMED, f"worker {worker} acted after it died", [self.dead_workers[worker], index])

    # -- operations

    def run(self) -> list[Violation]:
        for index, operation in enumerate(self.history):
            self.notice_exhaustion(operation.at, index)
            match operation:
                case Receive():
                    self.receive(index, operation)
                case Ack():
                    self.ack(index, operation)
                case Nack() | Extend() | Term():
                    self.change(index, operation)
                case Death():
                    self.dead_workers.setdefault(operation.worker, index)
                case Seek():
                    self.seek(index, operation)
                case Redrive():
                    self.redrive(index, operation)
                case DeadLetters():
                    self.snapshot(index, operation)
                case Drained():
                    self.drained(index, operation)
                case _:
                    pass
        return self.violations

    def receive(self, index: int, operation: Receive) -> None:
        self.acting(operation.worker, index)
        until = operation.until if operation.until is not None else operation.at
        for delivered in operation.deliveries:
            self.deliver(index, operation, delivered, until)

    def deliver(self, index: int, operation: Receive, delivered: Delivered, until: float) -> None:
        event_id = delivered.event_id
        event = self.events.get(event_id)
        if event is None:
            self.report(UNKNOWN_EVENT, f"{event_id} was delivered but never written", [index], event_id)
            return
        life = self.life(event_id)
        self.check_where(index, event, life)
        self.check_settled(index, event_id, life)
        life.status = "open"  # out again, whatever came before: it must be settled again
        self.check_lease_free(index, operation, event_id, life, until)
        expected = self.check_count(index, delivered, life)
        if self.config.ordering == "record" and event.record_key is not None:
            self.check_record(index, event, operation.at, until)
        self.check_lease_length(index, operation, delivered, until)
        self.take_lease(index, operation, delivered, life, expected)

    def check_where(self, index: int, event: Written, life: _Life) -> None:
        event_id = event.event_id
        write = self.write_op[event_id]
        if not event.matches:
            self.report(NOT_MATCHING, f"{event_id} does not match the filters", [write, index], event_id)
        if event.position <= self.floor and life.redriven_op is None:
            self.report(
                BEFORE_POSITION,
                f"{event_id} (position {event.position}) lies at or before the position {self.floor}",
                [write, index],
                event_id,
            )

    def check_settled(self, index: int, event_id: str, life: _Life) -> None:
        if life.status == "acked":
            self.report(
                REDELIVERED_AFTER_ACK,
                f"{event_id} was delivered again after its ack",
                [life.settled_op, index],
                event_id,
            )
        elif life.status == "termed":
            self.report(
                REDELIVERED_AFTER_TERM,
                f"{event_id} was delivered again after it was termed, without a redrive",
                [life.settled_op, index],
                event_id,
            )

    def check_lease_free(
        self, index: int, operation: Receive, event_id: str, life: _Life, until: float
    ) -> None:
        previous = life.lease
        if previous is not None and previous.live(until):
            self.report(
                OVERLAPPING_LEASES,
                f"{event_id} was leased to {operation.worker} while {previous.worker}'s lease ran until "
                f"{previous.expires_at:.3f} (delivered by {until:.3f})",
                [previous.op, index],
                event_id,
            )
        if previous is not None and previous.ended == "nacked" and life.due_at > until:
            self.report(
                NACK_DELAY,
                f"{event_id} was delivered again before its nack delay ran out at {life.due_at:.3f}",
                [previous.ended_op, index],
                event_id,
            )

    def check_count(self, index: int, delivered: Delivered, life: _Life) -> int:
        event_id = delivered.event_id
        expected: int = life.count + 1
        if delivered.delivery_count != expected:
            self.report(
                DELIVERY_COUNT,
                f"{event_id} came with delivery_count {delivered.delivery_count}, expected {expected}",
                [*life.delivered_ops[-1:], index],
                event_id,
            )
        limit = self.config.max_deliveries
        if limit is not None and max(expected, delivered.delivery_count) > limit:
            self.report(
                MAX_DELIVERIES,
                f"{event_id} was delivered {max(expected, delivered.delivery_count)} times, max_deliveries "
                f"is {limit}",
                [*life.delivered_ops, index],
                event_id,
            )
        return expected

    def check_lease_length(self, index: int, operation: Receive, delivered: Delivered, until: float) -> None:
        wait = self.config.ack_wait_seconds
        if wait is not None and not (
            operation.at + wait - 0.002 <= delivered.lease_expires_at <= until + wait + 0.002
        ):
            self.report(
                LEASE_LENGTH,
                f"{delivered.event_id}'s lease runs until {delivered.lease_expires_at:.3f}, not "
                f"ack_wait_seconds ({wait}) after the receive",
                [index],
                delivered.event_id,
            )

    def take_lease(
        self, index: int, operation: Receive, delivered: Delivered, life: _Life, expected: int
    ) -> None:
        event_id = delivered.event_id
        lease = _Lease(
            event_id,
            delivered.ack_id,
            operation.worker,
            index,
            delivered.delivery_count,
            operation.at,
            delivered.lease_expires_at,
            life,
        )
        if delivered.ack_id in self.leases:
            earlier = self.leases[delivered.ack_id]
            seeks = [op for op in range(earlier.op, index) if isinstance(self.history[op], Seek)]
            self.report(
                ACK_ID_REUSED,
                f"{event_id} was leased with the ack id of an earlier lease (delivery {earlier.count})",
                [earlier.op, *seeks[-1:], index],
                event_id,
                note="across a seek" if seeks else "",
            )
        self.leases[delivered.ack_id] = lease
        life.lease = lease
        life.count = delivered.delivery_count if delivered.delivery_count > 0 else expected
        life.delivered_ops.append(index)

    def check_record(self, index: int, event: Written, at: float, until: float) -> None:
        note, noted_ops = self.record_note(event)
        for other in self.by_record.get(event.record_key or "", []):
            if other.event_id == event.event_id:
                continue
            life = self.lives.get(other.event_id)
            lease = life.lease if life is not None else None
            if lease is not None and lease.live(until):
                self.report(
                    RECORD_OVERLAP,
                    f"{event.event_id} went out while {other.event_id} of the same record was leased",
                    [lease.op, *noted_ops, index],
                    event.event_id,
                    note=note,
                )
            elif other.position < event.position and self.required(other):
                max_deliveries = self.config.max_deliveries
                # Certainly unsettled whenever the server acted in [at, until]: not acked or termed, and
                # not exhausted even at `until` (its lease then ran out later still).
                if life is None or not life.settled(max_deliveries, until):
                    delivered = life.delivered_ops[-1:] if life is not None else []
                    self.report(
                        RECORD_ORDER,
                        f"{event.event_id} went out before the earlier {other.event_id} of its record was "
                        f"acked or dead",
                        [self.write_op[other.event_id], *delivered, *noted_ops, index],
                        event.event_id,
                        note=note,
                    )

    def record_note(self, event: Written) -> tuple[str, list[int]]:
        """What a record ordering violation happened beside: "after a redrive" of one of the record's
        events, or "beside a dead letter" (one of them went past max_deliveries)."""
        same = self.by_record.get(event.record_key or "", [])
        redriven = [
            life.redriven_op
            for other in same
            if (life := self.lives.get(other.event_id)) is not None and life.redriven_op is not None
        ]
        if redriven:
            return "after a redrive", redriven[-1:]
        dead = [
            mark.op
            for other in same
            if (mark := self.dead.get(other.event_id)) is not None and not mark.termed
        ]
        if dead:
            return "beside a dead letter", dead[-1:]
        return "", []

    def ack(self, index: int, operation: Ack) -> None:
        self.acting(operation.worker, index)
        until = operation.until if operation.until is not None else operation.at
        expired = set(operation.expired)
        for ack_id in dict.fromkeys(operation.ack_ids):
            lease = self.leases.get(ack_id)
            if lease is None:
                self.report(MALFORMED, f"ack id {ack_id[:24]}... was never delivered", [index])
                continue
            if ack_id in expired:
                self.refused(index, lease, until, "ack")
                continue
            if lease.ended in ("acked", "termed", "dropped"):
                continue  # settled already, by its holder or a seek: a second ack is harmless
            if lease.lost(operation.at):
                how = "was nacked" if lease.ended == "nacked" else f"ran out at {lease.expires_at:.3f}"
                where = self.whereabouts(lease, operation.at)
                self.report(
                    ACK_AFTER_EXPIRY,
                    f"the ack of {lease.event_id} (delivery {lease.count}) was answered as acked, but its lease "
                    f"{how}, before the ack at {operation.at:.3f}; the event was then {where}",
                    [lease.op, lease.ended_op, index],
                    lease.event_id,
                    note="in flight" if where == "in flight" else "gone",
                )
                continue
            if lease.expires_at <= until:
                continue  # it ran out while the ack was on its way: either answer is right; nothing known
            self.end(lease, "acked", index)
            if lease.life is self.lives.get(lease.event_id) and lease.life.lease is lease:
                lease.life.status, lease.life.settled_op = "acked", index

    def whereabouts(self, lease: _Lease, moment: float) -> str:
        life = self.lives.get(lease.event_id)
        if life is not lease.life:
            return "dropped by a seek or a redrive"
        if life.status != "open":
            return f"{life.status} through a later delivery" if life.lease is not lease else life.status
        if life.exhausted(self.config.max_deliveries, moment):
            return "dead (max_deliveries)"
        return "in flight"

    def refused(self, index: int, lease: _Lease, until: float, what: str) -> None:
        if lease.live(until) and lease.life.lease is lease and self.lives.get(lease.event_id) is lease.life:
            self.report(
                LIVE_LEASE_REFUSED,
                f"the {what} of {lease.event_id} came back expired, but its lease ran until "
                f"{lease.expires_at:.3f}, after the answer at {until:.3f}",
                [lease.op, index],
                lease.event_id,
            )

    def change(self, index: int, operation: Nack | Extend | Term) -> None:
        self.acting(operation.worker, index)
        until = operation.until if operation.until is not None else operation.at
        what = type(operation).__name__.lower()
        expired = set(operation.expired)
        for ack_id in dict.fromkeys(operation.ack_ids):
            lease = self.leases.get(ack_id)
            if lease is None:
                self.report(MALFORMED, f"ack id {ack_id[:24]}... was never delivered", [index])
                continue
            if ack_id in expired:
                self.refused(index, lease, until, what)
                continue
            if not lease.live(operation.at):
                if lease.ended is None and lease.expires_at <= until and lease.expires_at > operation.at:
                    continue  # it ran out while the request was on its way: nothing known
                self.report(
                    ENDED_LEASE_CHANGED,
                    f"the {what} of {lease.event_id} was answered as done, but its lease had ended "
                    f"({lease.ended or 'ran out'})",
                    [lease.op, lease.ended_op, index],
                    lease.event_id,
                )
                continue
            if isinstance(operation, Extend):
                runs_until = operation.lease_expires_at
                lease.expires_at = runs_until if runs_until is not None else operation.at + operation.seconds
            elif isinstance(operation, Nack):
                self.end(lease, "nacked", index)
                lease.life.due_at = operation.at + operation.delay_seconds
            else:
                self.end(lease, "termed", index)
                if lease.life.lease is lease:
                    lease.life.status, lease.life.settled_op = "termed", index
                self.dead[lease.event_id] = _DeadMark(termed=True, op=index)

    @staticmethod
    def end(lease: _Lease, how: str, index: int) -> None:
        lease.ended, lease.ended_op = how, index

    def seek(self, index: int, operation: Seek) -> None:
        for life in self.lives.values():
            # What was leased is dropped, settled for good; what had run out stays lost: its ack is late
            if life.lease is not None and life.lease.live(operation.at):
                self.end(life.lease, "dropped", index)
        self.lives = {}
        self.floor = operation.after_position

    def redrive(self, index: int, operation: Redrive) -> None:
        for event_id in operation.event_ids:
            mark = self.dead.pop(event_id, None)
            if mark is None:
                self.report(
                    UNEXPECTED_DEAD_LETTER,
                    f"{event_id} was redriven, but it was neither termed nor delivered max_deliveries times",
                    [index],
                    event_id,
                )
            self.lives[event_id] = _Life(event_id, redriven_op=index)

    def snapshot(self, index: int, operation: DeadLetters) -> None:
        self.last_snapshot = (index, operation)
        rows = {row.event_id: row for row in operation.rows}
        limit = self.config.max_deliveries
        for row in operation.rows:
            mark = self.dead.get(row.event_id)
            if mark is None:
                self.report(
                    UNEXPECTED_DEAD_LETTER,
                    f"{row.event_id} is a dead letter ({row.reason}), but it was neither termed nor delivered "
                    f"max_deliveries times",
                    [*self.lives_ops(row.event_id), index],
                    row.event_id,
                )
            elif not mark.termed and limit is not None and row.delivery_count != limit:
                self.report(
                    MAX_DELIVERIES,
                    f"{row.event_id} is a dead letter after {row.delivery_count} deliveries, max_deliveries is "
                    f"{limit}",
                    [mark.op, index],
                    row.event_id,
                )
        for event_id, mark in self.dead.items():
            if mark.termed and event_id not in rows:
                self.report(
                    NOT_DEAD_LETTERED,
                    f"{event_id} was termed, but is not a dead letter",
                    [mark.op, index],
                    event_id,
                )

    def lives_ops(self, event_id: str) -> list[int]:
        life = self.lives.get(event_id)
        return life.delivered_ops[-1:] if life is not None else []

    def drained(self, index: int, operation: Drained) -> None:
        """The final checks: every event the consumer must deliver was delivered, and is acked or dead."""
        dead_rows = {row.event_id for row in self.last_snapshot[1].rows} if self.last_snapshot else None
        snapshot = [self.last_snapshot[0]] if self.last_snapshot else []
        written = [
            event
            for event_id, event in self.events.items()
            if self.write_op[event_id] < index and self.required(event)
        ]
        for event in sorted(written, key=lambda event: event.position):
            life = self.lives.get(event.event_id)
            if life is None or not life.delivered_ops:
                self.report(
                    SKIPPED,
                    f"{event.event_id} (position {event.position}) matches and lies after the position "
                    f"{self.floor}, but was never delivered",
                    [self.write_op[event.event_id], index],
                    event.event_id,
                )
            elif life.status == "termed" or life.exhausted(self.config.max_deliveries, operation.at):
                if dead_rows is not None and event.event_id not in dead_rows and life.status != "termed":
                    # (a termed one missing was reported with the snapshot)
                    self.report(
                        NOT_DEAD_LETTERED,
                        f"{event.event_id} was delivered max_deliveries times without an ack, but is not a "
                        f"dead letter",
                        [life.delivered_ops[-1], *snapshot, index],
                        event.event_id,
                    )
            elif life.status != "acked":
                self.report(
                    UNSETTLED,
                    f"{event.event_id} was delivered {life.count} times but at the end is neither acked nor a "
                    f"dead letter",
                    [life.delivered_ops[-1], index],
                    event.event_id,
                )


def check(history: Sequence[Operation], config: ConsumerConfig) -> list[Violation]:
    """Every way `history` breaks the consumer guarantees (empty when it keeps them all)."""
    return _Checker(history, config).run()


# --- recording a history through the domain -------------------------------------------------------------


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def record_key(document: dict[str, Any]) -> str | None:
    """The checker's own notion of a record: connection, collection and record id."""
    if not document.get("record_id"):
        return None
    return f"{document.get('connection_id')}/{document.get('collection')}/{document['record_id']}"


class HistoryRecorder:
    """Drives one consumer through the domain (`pullbridge.consumers`) and records every call with its
    outcome. Thread-safe: workers in threads record through one recorder."""

    def __init__(
        self,
        ctx: Consumers,
        tenant_id: str,
        reference: str,
        *,
        advance: Callable[[float], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.tenant_id = tenant_id
        self.consumer: StoredConsumer = find_consumer(ctx.store, tenant_id, reference)
        self.history: list[Operation] = []
        self._advance = advance
        self._lock = threading.Lock()
        self._serial = threading.Lock()
        """Held across every call but a receive and its record: a settlement is recorded before any
        receive that came after it at the server, so the record order is one the server could have seen."""

    def sharing(self, ctx: Consumers) -> HistoryRecorder:
        """A recorder for another worker (its own store client, as a separate Lambda would have) that
        records into this one's history."""
        twin = copy.copy(self)
        twin.ctx = ctx
        return twin

    @property
    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            max_deliveries=self.consumer.max_deliveries,
            ordering=self.consumer.ordering,
            ack_wait_seconds=self.consumer.ack_wait_seconds,
        )

    def check(self, start_after: int = 0) -> list[Violation]:
        with self._lock:
            history = list(self.history)
        return check(history, replace(self.config, start_after=start_after))

    def record(self, operation: Operation) -> Operation:
        with self._lock:
            self.history.append(operation)
        return operation

    def now(self) -> float:
        return self.ctx.clock()

    def matches(self, document: dict[str, Any]) -> bool:
        return all(document.get(name) == value for name, value in self.consumer.filters.items())

    def written(
        self,
        event_ids: Sequence[str],
        documents: Sequence[dict[str, Any]],
        *,
        writer: str = "writer",
        at: float | None = None,
    ) -> Write:
        """Records events the caller appended (tenant-log positions, as their ids carry them)."""
        moment = self.now()
        events = tuple(
            Written(event_id, event_position(event_id) or 0, record_key(document), self.matches(document))
            for event_id, document in zip(event_ids, documents, strict=True)
        )
        operation = Write(events, at if at is not None else moment, writer, moment)
        self.record(operation)
        return operation

    def receive(self, worker: str, max_batch_size: int = 10, wait: float = 0) -> list[Delivery]:
        at = self.now()
        deliveries = delivery.receive(self.ctx, self.consumer, max_batch_size, wait).data
        until = self.now()
        self.record(
            Receive(
                worker,
                tuple(
                    Delivered(item.event.id, item.ack_id, item.delivery_count, epoch(item.lease_expires_at))
                    for item in deliveries
                ),
                at,
                until,
            )
        )
        return deliveries

    def ack(self, worker: str, ack_ids: Sequence[str]) -> tuple[str, ...]:
        """The ack ids answered as expired."""
        with self._serial:
            at = self.now()
            result = delivery.ack(self.ctx, self.consumer, list(ack_ids))
            self.record(Ack(worker, tuple(ack_ids), tuple(result.expired), at, self.now()))
        return tuple(result.expired)

    def nack(self, worker: str, ack_ids: Sequence[str], delay_seconds: int = 0) -> tuple[str, ...]:
        with self._serial:
            at = self.now()
            result = delivery.nack(self.ctx, self.consumer, list(ack_ids), delay_seconds)
            self.record(Nack(worker, tuple(ack_ids), delay_seconds, tuple(result.expired), at, self.now()))
        return tuple(result.expired)

    def extend(self, worker: str, ack_ids: Sequence[str], seconds: int) -> tuple[str, ...]:
        with self._serial:
            at = self.now()
            result = delivery.extend(self.ctx, self.consumer, list(ack_ids), seconds)
            self.record(
                Extend(
                    worker,
                    tuple(ack_ids),
                    seconds,
                    tuple(result.expired),
                    at,
                    self.now(),
                    lease_expires_at=epoch(result.lease_expires_at),
                )
            )
        return tuple(result.expired)

    def term(self, worker: str, ack_ids: Sequence[str], reason: str = "") -> tuple[str, ...]:
        with self._serial:
            at = self.now()
            result = delivery.term(self.ctx, self.consumer, list(ack_ids), reason)
            self.record(Term(worker, tuple(ack_ids), tuple(result.expired), at, self.now(), reason=reason))
        return tuple(result.expired)

    def advance(self, seconds: float) -> None:
        if self._advance is None:
            raise RuntimeError("this recorder's clock cannot be moved")
        self._advance(seconds)
        self.record(Advance(self.now(), seconds))

    def die(self, worker: str) -> None:
        self.record(Death(worker, self.now()))

    def seek(self, request: SeekRequest, after_position: int) -> None:
        """Seeks; `after_position` is where the caller knows the request leads (the checker's floor)."""
        with self._serial:
            at = self.now()
            service.seek(self.ctx, self.tenant_id, self.consumer.id, request)
            self.record(Seek(after_position, at, self.now()))

    def dead_letter_rows(self) -> list[DeadRow]:
        rows: list[DeadRow] = []
        cursor: str | None = None
        while True:
            page = service.list_dead_letters(
                self.ctx, self.tenant_id, self.consumer.id, cursor=cursor, limit=100
            )
            rows += [DeadRow(row.event_id, row.delivery_count, row.reason) for row in page.data]
            if not page.has_more:
                return rows
            cursor = page.next_cursor

    def dead_letters(self) -> list[DeadRow]:
        with self._serial:
            at = self.now()
            rows = self.dead_letter_rows()
            self.record(DeadLetters(tuple(rows), at, self.now()))
        return rows

    def redrive(self, event_ids: Sequence[str]) -> list[str]:
        """Redrives; records (and returns) those that left the dead letters."""
        with self._serial:
            at = self.now()
            before = {row.event_id for row in self.dead_letter_rows()}
            service.redrive(
                self.ctx, self.tenant_id, self.consumer.id, RedriveRequest(event_ids=list(event_ids))
            )
            after = {row.event_id for row in self.dead_letter_rows()}
            moved = sorted(before - after)
            self.record(Redrive(tuple(moved), at, self.now()))
        return moved

    def drained(self) -> None:
        self.record(Drained(self.now()))
