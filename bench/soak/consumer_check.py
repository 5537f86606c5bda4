"""The consumers' part of the soak's checker: each consumer's lines become a history for the consumers'
own checker (`tests/consumer_history.py`), which replays it against PRODUCT.md's "Consumers".

| line | what | fields |
|---|---|---|
| `receive` | one `POST …/receive` | `consumer`, `worker`, `status` (None: no answer), `deliveries` [{event_id, ack_id, delivery_count, lease_expires_at}] |
| `settle` | one ack, nack, extend or term, retried until answered | `consumer`, `worker`, `op`, `ack_ids`, `expired`, `ok` (False: never answered, the worker then dies), `ambiguous` (an attempt was lost before the answer), `delay_seconds`, `seconds`, `lease_expires_at`, `reason` |
| `death` | a worker stops acting: what it holds must come back | `consumer`, `worker` |
| `dead_letters` | every dead letter, listed | `consumer`, `rows` [{event_id, delivery_count, reason}] |
| `drained` | the end: received and acked until nothing was left | `consumer` |

The log at the end is every consumer's `Write`, placed first: a later event of a record cannot be
delivered before an earlier one is resolved (readers never pass a gap), so nothing is out of place there.

Faults make some answers lost, and the consumers' checker knows only answers. What a lost answer
explains is set aside as explained, never dropped silently:
- a receive with no answer may have leased events (its deliveries are counted, and each runs out later):
  a higher `delivery_count` than the answers show, and a dead letter after fewer deliveries than
  `max_deliveries`, are explained by it;
- an ack that was never answered may have landed: the event then is neither delivered again nor dead;
- a nack or a term whose first attempt was lost, then answered `expired`, is taken as the first attempt
  landing (it would answer so); its delay or burial may then be told apart only by what followed.

A settlement answered as done happened at the server before every lease it settled ran out: its `until`
is bounded by them, so a lease that ran out while the answer was on its way is still seen as settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.soak.checker import CONSUMER, Report, Violation, World, epoch, matches
from bench.soak.history import Line
from tests.consumer_history import (
    DELIVERY_COUNT,
    MAX_DELIVERIES,
    NACK_DELAY,
    NOT_DEAD_LETTERED,
    REDELIVERED_AFTER_TERM,
    UNEXPECTED_DEAD_LETTER,
    UNSETTLED,
    Ack,
    ConsumerConfig,
    DeadLetters,
    DeadRow,
    Death,
    Delivered,
    Drained,
    Extend,
    Nack,
    Operation,
    Receive,
    Term,
    Write,
    Written,
    check,
    record_key,
)
from tests.consumer_history import Violation as ConsumerViolation


@dataclass
class _Converted:
    operations: list[Operation] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    """The history line of each operation (None for the log's `Write`)."""
    lost_receives: list[Line] = field(default_factory=list)
    unanswered_ack_ids: set[str] = field(default_factory=set)
    ambiguous_ack_ids: set[str] = field(default_factory=set)
    event_of_ack: dict[str, str] = field(default_factory=dict)
    lease_until: dict[str, float] = field(default_factory=dict)

    def add(self, operation: Operation, line: int | None) -> None:
        self.operations.append(operation)
        self.lines.append(line)


def _config(consumer: dict[str, Any]) -> ConsumerConfig:
    return ConsumerConfig(
        max_deliveries=consumer.get("max_deliveries"),
        ordering=consumer.get("ordering", "record"),
        ack_wait_seconds=consumer.get("ack_wait_seconds"),
    )


def _written(world: World, consumer: dict[str, Any]) -> Write:
    filters = consumer.get("filters") or {}
    events = tuple(
        Written(
            line["event"]["id"], line["position"], record_key(line["event"]), matches(line["event"], filters)
        )
        for line in world.log
    )
    return Write(events, at=0.0, until=0.0)


def _receive(converted: _Converted, line: Line) -> None:
    if line.get("status") != 200:
        converted.lost_receives.append(line)
        return
    deliveries = []
    for item in line["deliveries"]:
        expires = epoch(item["lease_expires_at"]) or 0.0
        converted.event_of_ack[item["ack_id"]] = item["event_id"]
        converted.lease_until[item["ack_id"]] = expires
        deliveries.append(Delivered(item["event_id"], item["ack_id"], item["delivery_count"], expires))
    converted.add(Receive(line["worker"], tuple(deliveries), line["at"], line["until"]), line["n"])


def _settle(converted: _Converted, line: Line) -> None:
    ack_ids = tuple(line["ack_ids"])
    if not line.get("ok"):
        if line["op"] in ("ack", "term"):
            converted.unanswered_ack_ids.update(ack_ids)
        return  # never answered: the worker dies next, and what it held comes back (or was settled)
    expired = tuple(line.get("expired") or ())
    if line.get("ambiguous") and line["op"] in ("nack", "term"):
        # A lost first attempt may have landed: the retry then finds the lease gone, as it would.
        converted.ambiguous_ack_ids.update(ack_ids)
        expired = tuple(ack for ack in expired if converted.lease_until.get(ack, 0.0) <= line["at"])
    worker, at, until = line["worker"], line["at"], line["until"]
    # One settlement is one moment at the server, inside [at, until]: before every lease it answered as
    # done still ran out (a correct server settles no lease that ran out). Bounding `until` by them keeps
    # a lease that ran out while the answer travelled from looking unsettled.
    ends = [converted.lease_until[ack] for ack in set(ack_ids) - set(expired) if ack in converted.lease_until]
    until = max(at, min([until, *(end - 1e-6 for end in ends if end > at)]))
    operation: Operation
    if line["op"] == "ack":
        operation = Ack(worker, ack_ids, expired, at, until)
    elif line["op"] == "nack":
        operation = Nack(worker, ack_ids, line.get("delay_seconds", 0), expired, at, until)
    elif line["op"] == "extend":
        runs_until = epoch(line.get("lease_expires_at"))
        operation = Extend(worker, ack_ids, line.get("seconds", 0), expired, at, until, runs_until)
        for ack in set(ack_ids) - set(expired):
            converted.lease_until[ack] = runs_until or at + line.get("seconds", 0)
    else:
        operation = Term(worker, ack_ids, expired, at, until, reason=line.get("reason", ""))
    converted.add(operation, line["n"])


def convert(world: World, consumer: dict[str, Any]) -> _Converted:
    converted = _Converted()
    converted.add(_written(world, consumer), None)
    for line in world.history:
        if line.get("consumer") != consumer["id"]:
            continue
        kind = line["t"]
        if kind == "receive":
            _receive(converted, line)
        elif kind == "settle":
            _settle(converted, line)
        elif kind == "death":
            converted.add(Death(line["worker"], line["at"]), line["n"])
        elif kind == "dead_letters":
            rows = tuple(
                DeadRow(row["event_id"], row["delivery_count"], row["reason"]) for row in line["rows"]
            )
            converted.add(DeadLetters(rows, line["at"], line["until"]), line["n"])
        elif kind == "drained":
            converted.add(Drained(line["at"]), line["n"])
    return converted


def _lost_receive(violation: ConsumerViolation, converted: _Converted, config: ConsumerConfig) -> str | None:
    ops = [converted.operations[index] for index in violation.operations]
    last_until = max((op.until if op.until is not None else op.at) for op in ops) if ops else 0.0
    # The delivery before (when there was one): a lost receive since then may have leased it.
    first_at = min(op.at for op in ops) if len(ops) > 1 else float("-inf")
    lost = [line for line in converted.lost_receives if line["at"] <= last_until]
    if violation.kind == DELIVERY_COUNT and any(line["until"] >= first_at for line in lost):
        return f"a receive with no answer (line {lost[-1]['n']}) may have leased it in between"
    if violation.kind in (UNEXPECTED_DEAD_LETTER, MAX_DELIVERIES) and config.max_deliveries and lost:
        return (
            f"receives with no answer (line {lost[-1]['n']}, ...) counted deliveries the answers do not show"
        )
    return None


def _lost_settlement(violation: ConsumerViolation, converted: _Converted) -> str | None:
    acks = {ack for ack, event in converted.event_of_ack.items() if event == violation.event_id}
    if violation.kind == UNSETTLED and acks & converted.unanswered_ack_ids:
        return "an ack of it was never answered, and may have landed"
    if violation.kind in (NACK_DELAY, REDELIVERED_AFTER_TERM, NOT_DEAD_LETTERED) and (
        acks & converted.ambiguous_ack_ids
    ):
        return "a nack or term of it lost its first attempt: whether that one landed is not known"
    return None


def _explanation(violation: ConsumerViolation, converted: _Converted, config: ConsumerConfig) -> str | None:
    """Why a lost answer explains this violation, or None when nothing does."""
    return _lost_receive(violation, converted, config) or _lost_settlement(violation, converted)


def check_consumers(world: World, report: Report) -> None:
    """Every consumer delivered every matching event until it was acked or dead-lettered, with no lease
    shared and, for `ordering: "record"`, each record's events in log order, one at a time."""
    for consumer in world.setup.get("consumers", []):
        converted = convert(world, consumer)
        if not any(isinstance(op, Drained) for op in converted.operations):
            report.notes.append(f"consumer {consumer['name']} was not drained: the final checks did not run")
        config = _config(consumer)
        report.checked["consumer operations"] += len(converted.operations) - 1
        for violation in check(converted.operations, config):
            lines = [
                converted.lines[index]
                if converted.lines[index] is not None
                else world.line_of_event.get(violation.event_id or "")
                for index in violation.operations
            ]
            found = Violation(
                CONSUMER + violation.kind,
                f"{consumer['name']}: {violation.message}",
                tuple(line for line in lines if line is not None),
                violation.note,
            )
            why = _explanation(violation, converted, config)
            if why is None:
                report.violations.append(found)
            else:
                report.explained.append((found, why))
