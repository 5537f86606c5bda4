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
    Take,
    chunk_drafts,
    classify_cancellation,
    gap_verdict,
    head_after,
    item_roles,
    planned_take,
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


def test_a_commit_plans_its_positions_right_after_the_head_it_knows() -> None:
    take = planned_take(KnownHead(seq=41, alloc_at_ms=1_000), "T#t", 3, now=2.5)
    assert take == Take("T#t", 42, 3, 2_500, 1_000, expected=41)
    assert take.planned
    assert take.last == 44
    assert head_after(take) == KnownHead(44, 2_500)


def test_a_take_by_add_is_held_and_a_lease_rides_along_a_planned_one() -> None:
    held = Take("T#t", 5, 2, 100, 90)
    assert not held.planned
    leased = planned_take(KnownHead(7, 50), "T#t#C#c", 1, now=1.0, lease="token")
    assert (leased.lease, leased.expected) == ("token", 7)


def test_a_head_item_is_read_as_its_seq_and_alloc_at_whatever_else_it_holds() -> None:
    item = {"seq": {"N": "9"}, "alloc_at": {"N": "50"}, "tseq": {"N": "80"}, "lease_owner": {"S": "x"}}
    assert KnownHead.from_item(item) == KnownHead(9, 50)
    assert KnownHead.from_item({}) == KnownHead(0, 0)  # a head never written


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

HELD = Allocation("t", "c", Take("T#t", 10, 3, 1, 0), Take("T#t#C#c", 4, 3, 1, 0, expected=3))
PLANNED = Allocation("t", "c", Take("T#t", 10, 3, 1, 0, expected=9), Take("T#t#C#c", 4, 3, 1, 0, expected=3))


def _pending() -> list[tuple[EventDraft, str, Any]]:
    return _encoded(_draft("a"), _draft("b", delivery=False), _draft("c", snapshot=True))


def test_each_item_of_a_commit_has_its_role() -> None:
    assert item_roles(_pending(), ConnectionGuard("conn_1", 2), PLANNED) == [
        ("head", 0),
        ("head", 1),
        ("guard", -1),
        ("claim", 0),
        ("row", 0),
        ("row", 1),
        ("row", 0),
        ("row", 1),
        ("claim", 2),
        ("snapshot", 2),
        ("row", 0),
        ("row", 1),
    ]
    assert item_roles(_pending(), None, HELD)[:2] == [("head", 1), ("claim", 0)]  # a held log has no head


def _reasons(count: int, **failed: dict[str, Any]) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = [{"Code": "None"}] * count
    for index, reason in failed.items():
        reasons[int(index.removeprefix("at"))] = reason
    return reasons


def test_a_stale_head_and_a_duplicate_are_read_from_the_reasons() -> None:
    roles = item_roles(_pending(), ConnectionGuard("conn_1", 2), PLANNED)
    head_now = {"seq": {"N": "99"}}
    claim = {"event_ids": {"L": [{"S": "evt_1"}]}}
    outcome = classify_cancellation(
        _reasons(
            12,
            at0={"Code": "ConditionalCheckFailed", "Item": head_now},
            at3={"Code": "ConditionalCheckFailed", "Item": claim},
            at4={"Code": "ConditionalCheckFailed"},  # our planned row: already written, as the head says
        ),
        roles,
        PLANNED,
    )
    assert outcome.current_heads == {"T#t": head_now}
    assert outcome.duplicates == {0: claim}
    assert [outcome.fenced, outcome.overtaken, outcome.guard_failed, outcome.unexpected] == [False] * 4


def test_a_held_position_already_written_was_fenced() -> None:
    roles = item_roles(_pending(), None, HELD)
    outcome = classify_cancellation(_reasons(10, at2={"Code": "ConditionalCheckFailed"}), roles, HELD)
    assert roles[2] == ("row", 0)
    assert outcome.fenced


@pytest.mark.parametrize(("tseq", "overtaken"), [(9, False), (10, True), (12, True)])
def test_a_connection_head_past_our_tenant_positions_means_we_were_overtaken(
    tseq: int, overtaken: bool
) -> None:
    head_now = {"seq": {"N": "5"}, "tseq": {"N": str(tseq)}}
    roles = item_roles(_pending(), None, HELD)
    outcome = classify_cancellation(
        _reasons(10, at0={"Code": "ConditionalCheckFailed", "Item": head_now}), roles, HELD
    )
    assert outcome.current_heads == {"T#t#C#c": head_now}
    assert outcome.overtaken is overtaken


@pytest.mark.parametrize(
    ("index", "code", "flag"),
    [
        (2, "ConditionalCheckFailed", "guard_failed"),
        (9, "ConditionalCheckFailed", "unexpected"),  # a snapshot write has no condition
        (4, "TransactionConflict", "conflict"),
        (4, "ThrottlingError", "unexpected"),
        (30, "ConditionalCheckFailed", "unexpected"),  # past the roles: a tombstone
    ],
)
def test_what_else_a_cancellation_can_say(index: int, code: str, flag: str) -> None:
    roles = item_roles(_pending(), ConnectionGuard("conn_1", 2), PLANNED)
    reasons = _reasons(31)
    reasons[index] = {"Code": code}
    assert getattr(classify_cancellation(reasons, roles, PLANNED), flag) is True


def test_a_cancellation_without_reasons_is_unexpected() -> None:
    assert classify_cancellation([], [], PLANNED).unexpected


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


# --- documents -------------------------------------------------------------------------------------------


def test_a_typical_webhook_is_stored_compressed_under_a_kilobyte_and_reads_back() -> None:
    from pullbridge.storage.attributes import decode_document

    document = {
        "connection_id": "conn_01jbm7k3v4q9t2x8y6z5a0b1c2",
        "provider": "stripe",
        "type": "invoice.paid",
        "received_at": "2026-11-30T21:00:00.000Z",
        "data": {
            "id": "in_1",
            "object": "invoice",
            "lines": [{"id": f"il_{n}", "amount": 1000 + n} for n in range(12)],
        },
    }
    name, value = encode_document(document)
    assert name == "docz"
    assert len(value["B"]) < 1_000 / 2  # the JSON is over 1 KB
    assert decode_document({name: value}) == document
    small = {"type": "x", "data": {}}
    assert encode_document(small) == ("doc", {"S": '{"type":"x","data":{}}'})
