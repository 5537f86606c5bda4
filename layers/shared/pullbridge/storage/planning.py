"""The log's pure decisions, apart from any I/O so they are unit-tested alone: which positions a commit
takes, how a batch is cut into transactions, what a cancelled transaction said, and what an empty
position before a committed row means to a reader. docs/architecture.md explains the protocol."""

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
Role = Literal["head", "guard", "claim", "snapshot", "row", "tombstone"]


@dataclass(frozen=True)
class Allocation:
    tenant_id: str
    connection_id: str
    first_seq: int
    first_cseq: int
    size: int
    at_ms: int
    prev_at_ms: int
    prev_connection_at_ms: int
    expected_seq: int | None = None
    """Set when the commit itself moves the head, from this `seq`: nothing is taken until it lands."""

    @property
    def in_commit(self) -> bool:
        return self.expected_seq is not None


@dataclass
class KnownHead:
    """A tenant's log head as this instance last saw it. `seq` versions the whole item: every allocation
    moves it, so while `seq` is unchanged, so are `alloc_at` and every connection's `c_`/`a_` pair."""

    seq: int
    alloc_at_ms: int
    connections: dict[str, tuple[int, int]] = field(default_factory=dict)
    """connection id -> (`c_<id>`, `a_<id>`)"""

    @classmethod
    def from_item(cls, item: Item) -> KnownHead:
        connections = {
            name[2:]: (num(item, name), num(item, f"a_{name[2:]}")) for name in item if name.startswith("c_")
        }
        return cls(num(item, "seq"), num(item, "alloc_at"), connections)


def plan_in_commit(
    head: KnownHead | None, tenant_id: str, connection_id: str, size: int, now: float
) -> Allocation | None:
    """Positions the commit takes itself from a known head; None when the head or this connection's
    counter on it is unknown (the writer then takes positions by `ADD`)."""
    if head is None or connection_id not in head.connections:
        return None
    cseq, connection_at_ms = head.connections[connection_id]
    return Allocation(
        tenant_id=tenant_id,
        connection_id=connection_id,
        first_seq=head.seq + 1,
        first_cseq=cseq + 1,
        size=size,
        at_ms=int(now * 1000),
        prev_at_ms=head.alloc_at_ms,
        prev_connection_at_ms=connection_at_ms,
        expected_seq=head.seq,
    )


def learn_allocation(head: KnownHead | None, allocation: Allocation) -> KnownHead:
    """The head as an allocation left it: an `ADD` once it returns, a move in a commit once it lands. A
    view from before someone else's allocation is dropped: only what this allocation moved is known."""
    if head is None or head.seq != allocation.first_seq - 1:
        head = KnownHead(0, 0)
    head.seq = allocation.first_seq + allocation.size - 1
    head.alloc_at_ms = allocation.at_ms
    head.connections[allocation.connection_id] = (
        allocation.first_cseq + allocation.size - 1,
        allocation.at_ms,
    )
    return head


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
    pending: Sequence[EncodedDraft], guard: ConnectionGuard | None, *, head: bool
) -> list[tuple[Role, int]]:
    """What each item of a commit is, in the commit's order: (role, index of its draft or -1)."""
    roles: list[tuple[Role, int]] = [("head", -1)] if head else []
    if guard is not None:
        roles.append(("guard", -1))
    for index, (draft, _, _) in enumerate(pending):
        if draft.delivery_id is not None:
            roles.append(("claim", index))
        if draft.snapshot is not None:
            roles.append(("snapshot", index))
        roles.extend([("row", index), ("row", index)])
    return roles


@dataclass
class Cancellation:
    """What a cancelled commit's reasons say, item by item."""

    duplicates: dict[int, Item] = field(default_factory=dict)
    """Draft index -> the earlier delivery's claim (`ReturnValuesOnConditionCheckFailure`)."""
    current_head: Item | None = None
    """The head, when a commit that moved it found it moved by someone else."""
    guard_failed: bool = False
    fenced: bool = False
    conflict: bool = False
    unexpected: bool = False


def classify_cancellation(
    reasons: Sequence[Mapping[str, Any]], roles: Sequence[tuple[Role, int]]
) -> Cancellation:
    outcome = Cancellation()
    for index, reason in enumerate(reasons):
        code = reason.get("Code", "None")
        if code in ("None", None):
            continue
        role, draft_index = roles[index] if index < len(roles) else ("tombstone", -1)
        if code == "ConditionalCheckFailed":
            if role == "head":
                outcome.current_head = dict(reason.get("Item", {}))
            elif role == "guard":
                outcome.guard_failed = True
            elif role == "claim":
                outcome.duplicates[draft_index] = dict(reason.get("Item", {}))
            elif role == "row":
                outcome.fenced = True
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
