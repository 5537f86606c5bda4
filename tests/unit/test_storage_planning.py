"""The log's pure decisions, without botocore or a DynamoDB engine: positions, chunks, cancellations,
gaps, and keys."""

from __future__ import annotations

from typing import Any

import pytest

from pullbridge.storage.attributes import encode_document
from pullbridge.storage.keys import HASHED_KEY_PREFIX, dedupe_key, key_part, snapshot_partition
from pullbridge.storage.model import ConnectionGuard, EventDraft, SnapshotChange
from pullbridge.storage.planning import (
    MAX_TRANSACTION_ITEMS,
    Allocation,
    KnownHead,
    chunk_drafts,
    classify_cancellation,
    gap_verdict,
    item_roles,
    learn_allocation,
    plan_in_commit,
)


def _draft(label: str, *, delivery: bool = True, snapshot: bool = False, size: int = 10) -> EventDraft:
    return EventDraft(
        "conn_1",
        {"type": "t", "data": {"label": label, "pad": "x" * size}},
        delivery_id=label if delivery else None,
        snapshot=SnapshotChange("conn_1", "customers", label, "h") if snapshot else None,
    )


def _encoded(*drafts: EventDraft) -> list[tuple[EventDraft, str, Any]]:
    return [(draft, *encode_document(draft.document)) for draft in drafts]


# --- positions -----------------------------------------------------------------------------------------


def test_a_commit_plans_its_positions_from_the_head_it_knows() -> None:
    head = KnownHead(seq=41, alloc_at_ms=1_000, connections={"conn_1": (7, 900)})
    plan = plan_in_commit(head, "t", "conn_1", 3, now=2.5)
    assert plan == Allocation("t", "conn_1", 42, 8, 3, 2_500, 1_000, 900, expected_seq=41)
    assert plan.in_commit


@pytest.mark.parametrize("head", [None, KnownHead(5, 1, {"other": (1, 1)})], ids=["no head", "no counter"])
def test_without_a_known_head_and_counter_there_is_no_plan(head: KnownHead | None) -> None:
    assert plan_in_commit(head, "t", "conn_1", 1, now=1.0) is None


def test_an_allocation_moves_the_view_and_a_view_from_before_another_writer_is_dropped() -> None:
    head = KnownHead(10, 100, {"conn_1": (4, 100), "conn_2": (6, 90)})
    # Our allocation follows the view: the view moves, and the other connection's counter stays known
    moved = learn_allocation(head, Allocation("t", "conn_1", 11, 5, 2, 200, 100, 100))
    assert (moved.seq, moved.alloc_at_ms, moved.connections) == (
        12,
        200,
        {"conn_1": (6, 200), "conn_2": (6, 90)},
    )
    # Someone else allocated in between (positions 13-14): only what we moved is known
    after_gap = learn_allocation(moved, Allocation("t", "conn_1", 15, 9, 1, 300, 250, 260))
    assert (after_gap.seq, after_gap.connections) == (15, {"conn_1": (9, 300)})


def test_a_head_item_is_read_with_every_connections_counter() -> None:
    item = {
        "seq": {"N": "9"},
        "alloc_at": {"N": "50"},
        "c_a": {"N": "3"},
        "a_a": {"N": "40"},
        "c_b": {"N": "6"},
    }
    assert KnownHead.from_item(item) == KnownHead(9, 50, {"a": (3, 40), "b": (6, 0)})


# --- chunks ----------------------------------------------------------------------------------------------


def test_a_batch_is_cut_where_a_transaction_would_pass_dynamodbs_item_limit() -> None:
    drafts = [_draft(f"d{n}", snapshot=True) for n in range(60)]  # 4 items each
    chunks = list(chunk_drafts(iter(_encoded(*drafts))))
    assert [len(chunk) for chunk in chunks] == [24, 24, 12]
    assert all(sum(d.transaction_items for d, _, _ in chunk) <= MAX_TRANSACTION_ITEMS for chunk in chunks)
    assert [d for chunk in chunks for d, _, _ in chunk] == drafts  # in order, each once


def test_a_batch_is_cut_where_a_transaction_would_pass_4_mb() -> None:
    drafts = [_draft(f"d{n}", size=30_000) for n in range(130)]  # about 60 kB of transaction weight each
    chunks = list(chunk_drafts(iter(_encoded(*drafts))))
    assert len(chunks) > 2
    assert sum(len(chunk) for chunk in chunks) == 130


# --- cancellations ---------------------------------------------------------------------------------------


def test_each_cancellation_reason_is_read_by_the_role_of_its_item() -> None:
    pending = _encoded(_draft("a"), _draft("b", delivery=False), _draft("c", snapshot=True))
    roles = item_roles(pending, ConnectionGuard("conn_1", 2), head=True)
    assert roles == [
        ("head", -1),
        ("guard", -1),
        ("claim", 0),
        ("row", 0),
        ("row", 0),
        ("row", 1),
        ("row", 1),
        ("claim", 2),
        ("snapshot", 2),
        ("row", 2),
        ("row", 2),
    ]
    none = {"Code": "None"}
    failed = {"Code": "ConditionalCheckFailed"}
    head_now = {"seq": {"N": "99"}}
    claim = {"event_ids": {"L": [{"S": "evt_1"}]}}
    outcome = classify_cancellation(
        [{**failed, "Item": head_now}, none, {**failed, "Item": claim}] + [none] * 8, roles
    )
    assert outcome.current_head == head_now
    assert outcome.duplicates == {0: claim}
    assert [outcome.guard_failed, outcome.fenced, outcome.conflict, outcome.unexpected] == [False] * 4


@pytest.mark.parametrize(
    ("index", "code", "flag"),
    [
        (1, "ConditionalCheckFailed", "guard_failed"),
        (3, "ConditionalCheckFailed", "fenced"),
        (8, "ConditionalCheckFailed", "unexpected"),  # a snapshot write has no condition
        (3, "TransactionConflict", "conflict"),
        (3, "ThrottlingError", "unexpected"),
        (20, "ConditionalCheckFailed", "unexpected"),  # past the roles: a tombstone
    ],
)
def test_what_else_a_cancellation_can_say(index: int, code: str, flag: str) -> None:
    pending = _encoded(_draft("a"), _draft("b", delivery=False), _draft("c", snapshot=True))
    roles = item_roles(pending, ConnectionGuard("conn_1", 2), head=True)
    reasons = [{"Code": "None"}] * 21
    reasons[index] = {"Code": code}
    outcome = classify_cancellation(reasons, roles)
    assert getattr(outcome, flag) is True


def test_a_cancellation_without_reasons_is_unexpected() -> None:
    assert classify_cancellation([], []).unexpected


# --- gaps ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_ms", "missing", "fences_left", "verdict"),
    [
        (4_999, 1, 100, "wait"),  # a writer may still commit
        (5_000, 1, 100, "wait"),
        (5_001, 1, 100, "fence"),  # past the deadline: fence it
        (5_001, 101, 100, "wait"),  # more than this read may fence
        (86_400_001, 500, 0, "skip"),  # allocated before retention: expired history
    ],
)
def test_what_an_empty_position_means_to_a_reader(
    age_ms: int, missing: int, fences_left: int, verdict: str
) -> None:
    assert (
        gap_verdict(
            age_ms=age_ms,
            deadline_ms=5_000,
            retention_ms=86_400_000,
            missing=missing,
            fences_left=fences_left,
        )
        == verdict
    )


# --- keys ------------------------------------------------------------------------------------------------


def test_ids_stand_in_keys_as_they_are_or_by_their_hash() -> None:
    assert key_part("evt_1") == "evt_1"
    long = key_part("x" * 513)
    assert long.startswith(HASHED_KEY_PREFIX)
    assert len(long) == len(HASHED_KEY_PREFIX) + 64
    assert key_part("x" * 512) == "x" * 512
    assert key_part("a\ud83d").startswith(HASHED_KEY_PREFIX)
    assert key_part(HASHED_KEY_PREFIX + "x") != HASHED_KEY_PREFIX + "x"  # no id can pose as a hash
    assert key_part("a\ud83d") != key_part("a\ud83e")
    assert dedupe_key("conn_1", "m" * 3_000) == "W#conn_1#" + key_part("m" * 3_000)
    assert snapshot_partition("conn_1", "customers") == "SNAP#conn_1#customers"
