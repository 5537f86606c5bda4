"""The log's pure decisions, apart from any I/O so they are unit-tested alone: which positions a commit
takes, how a batch is cut into transactions, what a cancelled transaction said, and what an empty
position before a committed row means to a reader. docs/architecture.md explains the protocol."""
# Every log has a head of fixed size; a commit moves the tenant's head (or holds positions it took by
# `ADD`) and the connection's head, which also records `tseq`, the tenant position of the connection's
# last event, so that both logs keep one order.

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pullbridge.storage.attributes import Item, num
from pullbridge.storage.model import ConnectionGuard, EventDraft

MAX_TRANSACTION_ITEMS = 98  # DynamoDB allows 100 items; two are kept for the connection guard and the head
MAX_TRANSACTION_BYTES = 3_500_000  # DynamoDB caps a transaction at 4 MB
_RETRYABLE_CANCELLATIONS = {"TransactionConflict"}

EncodedDraft = tuple[EventDraft, str, Any]
"""A draft with its document encoded: (draft, attribute name, attribute value)."""
GapVerdict = Literal["wait", "skip", "fence"]
Role = Literal["head", "guard", "claim", "snapshot", "record", "row", "tombstone"]


@dataclass(frozen=True)
class Take:
    """One log's positions for one commit.

    Planned (`expected` set): the commit moves the log's head itself, from `expected`, so nothing is
    taken unless it lands. Held (`expected` None): taken by an `ADD` on the head, ours whatever the
    commit does, until committed or released with tombstones. Only the tenant log is ever held.
    """

    log_key: str
    first: int
    size: int
    at_ms: int
    prev_at_ms: int
    """When the log's previous allocation was made: on every row, for readers judging a gap."""
    expected: int | None = None
    lease: str | None = None
    """A connection's head this writer holds a lease on (after losing races for it): its token."""

    @property
    def planned(self) -> bool:
        return self.expected is not None

    @property
    def last(self) -> int:
        return self.first + self.size - 1


@dataclass(frozen=True)
class Allocation:
    """The positions of one commit: in the tenant's log and in the connection's log."""

    tenant_id: str
    connection_id: str
    tenant: Take
    connection: Take

    @property
    def takes(self) -> tuple[Take, Take]:
        return (self.tenant, self.connection)

    @property
    def first_seq(self) -> int:
        return self.tenant.first

    @property
    def first_cseq(self) -> int:
        return self.connection.first


@dataclass(frozen=True)
class KnownHead:
    """A log's head as this instance last saw it: `seq`, the last position handed out, and `alloc_at`,
    when. Every log has its own head item, of fixed size: `T#<tenant>, 0` and `T#<tenant>#C#<conn>, 0`."""

    seq: int
    alloc_at_ms: int

    @classmethod
    def from_item(cls, item: Item) -> KnownHead:
        return cls(num(item, "seq"), num(item, "alloc_at"))


def planned_take(head: KnownHead, log_key: str, size: int, now: float, lease: str | None = None) -> Take:
    """Positions a commit takes itself, right after the head it knows."""
    return Take(
        log_key, head.seq + 1, size, int(now * 1000), head.alloc_at_ms, expected=head.seq, lease=lease
    )


def head_after(take: Take) -> KnownHead:
    """The head a take left once it is taken (an `ADD` returned, or a commit that moved it landed)."""
    return KnownHead(take.last, take.at_ms)


def chunk_drafts(encoded: Iterator[EncodedDraft]) -> Iterator[list[EncodedDraft]]:
    """Cut a batch into transactions within DynamoDB's item and size limits. A position a retry no
    longer needs becomes a 2-item tombstone: never more than its event, so a chunk never outgrows them."""
    chunk: list[EncodedDraft] = []
    size = 0
    for draft, name, value in encoded:
        weight = 2 * len(value.get("S", value.get("B", b""))) + 1_000
        items = sum(d.transaction_items for d, _, _ in chunk) + draft.transaction_items
        if chunk and (items > MAX_TRANSACTION_ITEMS or size + weight > MAX_TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append((draft, name, value))
        size += weight
    if chunk:
        yield chunk


def item_roles(
    pending: Sequence[EncodedDraft], guard: ConnectionGuard | None, allocation: Allocation
) -> list[tuple[Role, int]]:
    """What each item of a commit is, in the commit's order: (role, its take's index for a head or a row,
    its draft's index for a claim, a snapshot or a record, else -1)."""
    roles: list[tuple[Role, int]] = [
        ("head", index) for index, take in enumerate(allocation.takes) if take.planned
    ]
    if guard is not None:
        roles.append(("guard", -1))
    for index, (draft, _, _) in enumerate(pending):
        if draft.delivery_id is not None:
            roles.append(("claim", index))
        if draft.snapshot is not None:
            roles.append(("snapshot", index))
        if draft.record is not None:
            roles.append(("record", index))
        roles.extend([("row", 0), ("row", 1)])  # the tenant's row, then the connection's
    return roles


@dataclass
class Cancellation:
    """What a cancelled commit's reasons say, item by item."""

    duplicates: dict[int, Item] = field(default_factory=dict)
    """Draft index -> the earlier delivery's claim (`ReturnValuesOnConditionCheckFailure`)."""
    current_heads: dict[str, Item] = field(default_factory=dict)
    """Log key -> the head now, for each head the commit meant to move that someone else had moved."""
    overtaken: bool = False
    """The connection's log already holds an event from after our tenant positions: they are useless."""
    guard_failed: bool = False
    fenced: bool = False
    """A reader fenced a position we hold."""
    stale: set[int] = field(default_factory=set)
    """Draft indexes whose record holds a newer version than the draft's object: a stale delivery."""
    conflict: bool = False
    unexpected: bool = False


def classify_cancellation(
    reasons: Sequence[Mapping[str, Any]], roles: Sequence[tuple[Role, int]], allocation: Allocation
) -> Cancellation:
    outcome = Cancellation()
    for index, reason in enumerate(reasons):
        code = reason.get("Code", "None")
        if code in ("None", None):
            continue
        role, detail = roles[index] if index < len(roles) else ("tombstone", -1)
        if code == "ConditionalCheckFailed":
            if role == "head":
                take = allocation.takes[detail]
                head = dict(reason.get("Item", {}))
                outcome.current_heads[take.log_key] = head
                if take is allocation.connection and num(head, "tseq") >= allocation.tenant.first:
                    outcome.overtaken = True
            elif role == "guard":
                outcome.guard_failed = True
            elif role == "record":
                outcome.stale.add(detail)
            elif role == "claim":
                outcome.duplicates[detail] = dict(reason.get("Item", {}))
            elif role == "row":
                # A planned position already written means only that the head moved (it says so too);
                # a held one, that a reader fenced it.
                outcome.fenced = outcome.fenced or not allocation.takes[detail].planned
            else:
                outcome.unexpected = True
        elif code in _RETRYABLE_CANCELLATIONS:
            outcome.conflict = True
        else:
            outcome.unexpected = True
    if not reasons:
        outcome.unexpected = True
    return outcome


def gap_verdict(
    *, age_ms: int, deadline_ms: int, retention_ms: int, missing: int, fences_left: int
) -> GapVerdict:
    """What the empty positions before a committed row mean to a reader.

    `age_ms` is the age of the successor row's `prev_at`: every missing position was allocated no later
    than that, because allocations are serialised and a transaction commits its whole allocation or none.
    """
    if age_ms > retention_ms:
        return "skip"  # allocated before the retention window: expired and deleted, or never written
    if age_ms <= deadline_ms or missing > fences_left:
        return "wait"  # a writer may still be committing (or too many to fence in one read)
    return "fence"
