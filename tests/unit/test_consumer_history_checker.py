"""The consumer history checker (tests/consumer_history.py) catches what it claims: each hand-built broken
history gives the matching violation, naming the operations involved, and correct ones give none."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.consumer_history import (
    ACK_AFTER_EXPIRY,
    ACK_ID_REUSED,
    BEFORE_POSITION,
    DELIVERY_COUNT,
    ENDED_LEASE_CHANGED,
    LEASE_LENGTH,
    LIVE_LEASE_REFUSED,
    MALFORMED,
    MAX_DELIVERIES,
    NACK_DELAY,
    NOT_DEAD_LETTERED,
    NOT_MATCHING,
    OVERLAPPING_LEASES,
    RECORD_ORDER,
    RECORD_OVERLAP,
    REDELIVERED_AFTER_ACK,
    REDELIVERED_AFTER_TERM,
    SKIPPED,
    UNEXPECTED_DEAD_LETTER,
    UNKNOWN_EVENT,
    UNSETTLED,
    Ack,
    Advance,
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
    Redrive,
    Seek,
    Term,
    Violation,
    Write,
    Written,
    check,
    describe,
)

WAIT = 30.0
CONFIG = ConsumerConfig(max_deliveries=3, ordering="record", ack_wait_seconds=WAIT)


def event(n: int, record: str | None = None, *, matches: bool = True) -> Written:
    """Event `e<n>` at position n."""
    return Written(f"e{n}", n, record, matches)


def lease(n: int, count: int, at: float, *, ack: str | None = None) -> Delivered:
    """Delivery `count` of e<n>, leased at `at` for WAIT; its ack id is `a<n>.<count>` unless given."""
    return Delivered(f"e{n}", ack or f"a{n}.{count}", count, at + WAIT)


def receive(worker: str, at: float, *deliveries: Delivered, until: float | None = None) -> Receive:
    return Receive(worker, deliveries, at, until)


def ack(worker: str, at: float, *ack_ids: str, expired: Sequence[str] = ()) -> Ack:
    return Ack(worker, ack_ids, tuple(expired), at)


def drained(at: float, *dead: DeadRow) -> list[Operation]:
    return [DeadLetters(dead, at), Drained(at)]


def kinds(violations: list[Violation]) -> list[str]:
    return [violation.kind for violation in violations]


def only(violations: list[Violation], kind: str) -> Violation:
    assert kinds(violations) == [kind], [str(violation) for violation in violations]
    return violations[0]


# --- correct histories -----------------------------------------------------------------------------------


def test_a_correct_history_with_every_kind_of_operation_gives_no_violation() -> None:
    history: list[Operation] = [
        Write((event(1, "x"), event(2, "y"), event(3, "x"), event(4), event(5)), at=0),
        receive("w1", 0, lease(1, 1, 0), lease(2, 1, 0)),  # e3 waits behind e1 (record x)
        receive("w2", 0, lease(4, 1, 0), lease(5, 1, 0)),
        ack("w1", 10, "a1.1"),
        receive("w2", 10, lease(3, 1, 10)),  # e1 is acked: e3 may go
        Nack("w1", ("a2.1",), 5, (), at=11),
        receive("w3", 16, lease(2, 2, 16)),  # after the nack's delay
        Extend("w3", ("a2.2",), 100, (), at=20, lease_expires_at=120),
        Death("w2", at=21),  # dies holding e3, e4 and e5
        Advance(at=50, seconds=29),
        receive("w1", 50, lease(3, 2, 50), lease(4, 2, 50), lease(5, 2, 50)),  # e2 is still extended
        ack("w1", 51, "a3.2", "a4.2"),
        Term("w1", ("a5.2",), (), at=52, reason="poison"),
        ack("w3", 60, "a2.2"),
        ack("w3", 61, "a2.2"),  # a second ack of the same id is harmless
        *drained(200, DeadRow("e5", 2, "poison")),
    ]
    assert check(history, CONFIG) == []


def test_an_ack_after_expiry_reported_expired_then_a_redelivery_is_correct() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Advance(at=31),
        receive("w2", 31, lease(1, 2, 31)),
        ack("w1", 32, "a1.1", expired=["a1.1"]),  # late: reported expired, the redelivery stands
        ack("w2", 33, "a1.2"),
        *drained(100),
    ]
    assert check(history, CONFIG) == []


def test_max_deliveries_then_a_dead_letter_then_a_redrive_restarts_the_count() -> None:
    config = ConsumerConfig(max_deliveries=2, ack_wait_seconds=WAIT)
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w1", 30, lease(1, 2, 30)),
        receive("w1", 60),  # buries it
        DeadLetters((DeadRow("e1", 2, "max_deliveries"),), at=61),
        Redrive(("e1",), at=62),
        receive("w2", 62, lease(1, 1, 62, ack="again")),
        ack("w2", 63, "again"),
        *drained(100),
    ]
    assert check(history, config) == []


def test_a_seek_drops_leases_and_moves_what_must_be_delivered() -> None:
    history: list[Operation] = [
        Write((event(1), event(2), event(3)), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Seek(after_position=2, at=1),  # e1 and e2 are no longer the consumer's to deliver
        ack("w1", 2, "a1.1"),  # dropped: settled for good, either answer is right
        receive("w1", 3, lease(3, 1, 3)),
        ack("w1", 4, "a3.1"),
        *drained(100),
    ]
    assert check(history, CONFIG) == []


def test_events_outside_the_filters_or_before_the_start_need_no_delivery() -> None:
    history: list[Operation] = [
        Write((event(1), event(2, matches=False), event(3)), at=0),
        receive("w1", 0, lease(3, 1, 0)),
        ack("w1", 1, "a3.1"),
        *drained(100),
    ]
    assert check(history, ConsumerConfig(start_after=1)) == []


def test_ordering_none_lets_one_records_events_out_together() -> None:
    history: list[Operation] = [
        Write((event(1, "x"), event(2, "x")), at=0),
        receive("w1", 0, lease(1, 1, 0), lease(2, 1, 0)),
        ack("w1", 1, "a2.1", "a1.1"),
        *drained(100),
    ]
    assert check(history, ConsumerConfig(ordering="none")) == []


def test_real_time_uncertainty_is_not_reported() -> None:
    """A receive in flight while a lease runs out may or may not get the event: no violation either way."""
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w2", 29.9, lease(1, 2, 30), until=30.1),  # e1's lease ran out at 30, inside [29.9, 30.1]
        ack("w2", 31, "a1.2"),
        *drained(100),
    ]
    assert check(history, CONFIG) == []


# --- each broken history gives its violation -------------------------------------------------------------


def test_a_skipped_event() -> None:
    history: list[Operation] = [
        Write((event(1), event(2)), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        ack("w1", 1, "a1.1"),
        *drained(100),
    ]
    violation = only(check(history, CONFIG), SKIPPED)
    assert violation.event_id == "e2"
    assert violation.operations == (0, 4)  # its write, and the end of the drained run


def test_nothing_is_reported_missing_before_the_run_is_drained() -> None:
    history: list[Operation] = [Write((event(1),), at=0)]
    assert check(history, CONFIG) == []
    assert kinds(check([*history, Drained(at=1)], CONFIG)) == [SKIPPED]


def test_an_event_delivered_but_never_settled() -> None:
    history: list[Operation] = [Write((event(1),), at=0), receive("w1", 0, lease(1, 1, 0)), *drained(100)]
    violation = only(check(history, CONFIG), UNSETTLED)
    assert violation.operations == (1, 3)


def test_two_overlapping_leases_of_one_event() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w2", 10, lease(1, 2, 10)),  # w1's lease runs until 30
        ack("w2", 11, "a1.2"),
        *drained(100),
    ]
    violation = only(check(history, CONFIG), OVERLAPPING_LEASES)
    assert violation.operations == (1, 2)


def test_the_same_event_twice_in_one_receive_overlaps() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0), lease(1, 2, 0)),
    ]
    assert kinds(check(history, CONFIG)) == [OVERLAPPING_LEASES]


def test_an_ack_after_expiry_reported_as_acked() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        ack("w1", 31, "a1.1"),  # its lease ran out at 30: this must come back in `expired`
        receive("w2", 32, lease(1, 2, 32)),  # and the redelivery goes on
        ack("w2", 33, "a1.2"),
        *drained(100),
    ]
    violation = only(check(history, CONFIG), ACK_AFTER_EXPIRY)
    assert (violation.operations, violation.note) == ((1, 2), "in flight")


def test_an_ack_after_expiry_of_an_event_acked_since_is_noted_gone() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w2", 31, lease(1, 2, 31)),
        ack("w2", 32, "a1.2"),
        ack("w1", 33, "a1.1"),
        *drained(100),
    ]
    violation = only(check(history, CONFIG), ACK_AFTER_EXPIRY)
    assert (violation.operations, violation.note) == ((1, 4), "gone")


def test_an_ack_of_a_nacked_lease_reported_as_acked() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Nack("w1", ("a1.1",), 0, (), at=1),
        ack("w1", 2, "a1.1"),
    ]
    violation = only(check(history, CONFIG), ACK_AFTER_EXPIRY)
    assert violation.operations == (1, 2, 3)


def test_an_ack_of_a_live_lease_reported_expired() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        ack("w1", 5, "a1.1", expired=["a1.1"]),
    ]
    assert kinds(check(history, CONFIG)) == [LIVE_LEASE_REFUSED]


def test_a_nack_or_extend_of_a_lease_that_ran_out_answered_as_done() -> None:
    history: list[Operation] = [
        Write((event(1), event(2)), at=0),
        receive("w1", 0, lease(1, 1, 0), lease(2, 1, 0)),
        Nack("w1", ("a1.1",), 0, (), at=31),
        Extend("w1", ("a2.1",), 10, (), at=31),
    ]
    assert kinds(check(history, CONFIG)) == [ENDED_LEASE_CHANGED, ENDED_LEASE_CHANGED]


def test_an_extended_lease_is_exclusive_until_its_new_end() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Extend("w1", ("a1.1",), 60, (), at=20, lease_expires_at=80),
        receive("w2", 40, lease(1, 2, 40)),
    ]
    assert kinds(check(history, CONFIG)) == [OVERLAPPING_LEASES]


def test_record_order_violated() -> None:
    history: list[Operation] = [
        Write((event(1, "x"), event(2, "x")), at=0),
        receive("w1", 0, lease(2, 1, 0)),  # e2 before e1, of the same record
    ]
    violation = only(check(history, CONFIG), RECORD_ORDER)
    assert violation.event_id == "e2"


def test_a_records_next_event_while_the_previous_is_leased() -> None:
    history: list[Operation] = [
        Write((event(1, "x"), event(2, "x")), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w2", 5, lease(2, 1, 5)),  # e1 neither acked nor dead
    ]
    violation = only(check(history, CONFIG), RECORD_OVERLAP)
    assert violation.operations == (1, 2)


def test_a_records_next_event_while_the_previous_waits_for_redelivery() -> None:
    history: list[Operation] = [
        Write((event(1, "x"), event(2, "x")), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Nack("w1", ("a1.1",), 60, (), at=1),
        receive("w2", 5, lease(2, 1, 5)),  # e1 was nacked, not acked
    ]
    assert kinds(check(history, CONFIG)) == [RECORD_ORDER]


def test_a_records_next_event_may_go_once_the_previous_is_dead() -> None:
    history: list[Operation] = [
        Write((event(1, "x"), event(2, "x")), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Term("w1", ("a1.1",), (), at=1),
        receive("w2", 5, lease(2, 1, 5)),
        ack("w2", 6, "a2.1"),
        *drained(100, DeadRow("e1", 1, "termed")),
    ]
    assert check(history, CONFIG) == []


def test_record_violations_note_a_redrive_or_a_dead_letter_beside_them() -> None:
    """So that a test can tell the known cases apart (tests/integration/test_consumer_history.py)."""
    config = ConsumerConfig(max_deliveries=1)
    beside_dead: list[Operation] = [
        Write((event(1, "x"), event(2, "x"), event(3, "x")), at=0),
        receive("w1", 0, lease(1, 1, 0)),  # e2 and e3 wait behind e1
        receive("w1", 31, lease(3, 1, 31)),  # e1 went past max_deliveries; e3 overtakes e2
    ]
    violation = only(check(beside_dead, config), RECORD_ORDER)
    assert (violation.note, violation.operations) == ("beside a dead letter", (0, 2))
    after_redrive: list[Operation] = [
        Write((event(1, "x"), event(2, "x")), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Term("w1", ("a1.1",), (), at=1),
        receive("w2", 2, lease(2, 1, 2)),
        Redrive(("e1",), at=3),
        receive("w3", 4, lease(1, 1, 4, ack="again")),  # while e2 is leased
    ]
    violation = only(check(after_redrive, CONFIG), RECORD_OVERLAP)
    assert (violation.note, violation.operations) == ("after a redrive", (3, 4, 5))


def test_a_delivery_beyond_max_deliveries() -> None:
    config = ConsumerConfig(max_deliveries=2)
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w1", 30, lease(1, 2, 30)),
        receive("w1", 60, lease(1, 3, 60)),
        ack("w1", 61, "a1.3"),
        *drained(100),
    ]
    violation = only(check(history, config), MAX_DELIVERIES)
    assert violation.operations == (1, 2, 3)


def test_an_event_that_reached_max_deliveries_must_end_as_a_dead_letter() -> None:
    config = ConsumerConfig(max_deliveries=1)
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w1", 31),
        *drained(100),  # no dead letters
    ]
    assert kinds(check(history, config)) == [NOT_DEAD_LETTERED]


def test_a_dead_letter_with_the_wrong_count_or_from_nowhere() -> None:
    config = ConsumerConfig(max_deliveries=2)
    history: list[Operation] = [
        Write((event(1), event(2)), at=0),
        receive("w1", 0, lease(1, 1, 0), lease(2, 1, 0)),
        ack("w1", 1, "a2.1"),
        receive("w1", 30, lease(1, 2, 30)),
        *drained(100, DeadRow("e1", 1, "max_deliveries"), DeadRow("e2", 1, "max_deliveries")),
    ]
    assert kinds(check(history, config)) == [MAX_DELIVERIES, UNEXPECTED_DEAD_LETTER]


def test_delivery_count_must_start_at_one_and_grow_by_one() -> None:
    history: list[Operation] = [
        Write((event(1), event(2)), at=0),
        receive("w1", 0, lease(1, 2, 0), lease(2, 1, 0)),  # e1 starts at 2
        receive("w1", 30, lease(2, 3, 30)),  # e2 skips 2
    ]
    assert kinds(check(history, CONFIG)) == [DELIVERY_COUNT, DELIVERY_COUNT]


def test_a_termed_event_delivered_again_or_missing_from_the_dead_letters() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Term("w1", ("a1.1",), (), at=1),
        DeadLetters((), at=2),
        receive("w2", 40, lease(1, 2, 40)),
    ]
    assert kinds(check(history, CONFIG)) == [NOT_DEAD_LETTERED, REDELIVERED_AFTER_TERM]


def test_an_acked_event_delivered_again() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        ack("w1", 1, "a1.1"),
        receive("w2", 40, lease(1, 2, 40)),
    ]
    violation = only(check(history, CONFIG), REDELIVERED_AFTER_ACK)
    assert violation.operations == (2, 3)


def test_a_nacked_event_delivered_before_its_delay() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Nack("w1", ("a1.1",), 60, (), at=1),
        receive("w2", 10, lease(1, 2, 10)),
    ]
    assert kinds(check(history, CONFIG)) == [NACK_DELAY]


def test_deliveries_outside_what_the_consumer_reads() -> None:
    history: list[Operation] = [
        Write((event(1), event(2, matches=False), event(3)), at=0),
        Seek(after_position=1, at=0),
        receive("w1", 1, lease(1, 1, 1), lease(2, 1, 1), Delivered("e9", "a9", 1, 1 + WAIT)),
    ]
    assert kinds(check(history, CONFIG)) == [BEFORE_POSITION, NOT_MATCHING, UNKNOWN_EVENT]


def test_a_lease_of_the_wrong_length() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, Delivered("e1", "a1.1", 1, 5)),
    ]
    assert kinds(check(history, CONFIG)) == [LEASE_LENGTH]


def test_an_ack_id_given_to_two_leases() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Seek(after_position=0, at=1),
        receive("w2", 1, lease(1, 1, 1, ack="a1.1")),
    ]
    violation = only(check(history, CONFIG), ACK_ID_REUSED)
    assert (violation.operations, violation.note) == ((1, 2, 3), "across a seek")


@pytest.mark.parametrize(
    "broken",
    [
        [Death("w1", at=1), receive("w1", 2)],
        [ack("w1", 1, "never-delivered")],
    ],
    ids=["a-dead-worker-acts", "an-unknown-ack-id"],
)
def test_a_malformed_history(broken: list[Operation]) -> None:
    assert kinds(check([Write((event(1),), at=0), *broken], CONFIG)) == [MALFORMED]


def test_a_dead_workers_leases_must_come_back() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        Death("w1", at=1),
        *drained(100),  # nobody received it again
    ]
    assert kinds(check(history, CONFIG)) == [UNSETTLED]


def test_describe_names_each_violations_operations() -> None:
    history: list[Operation] = [
        Write((event(1),), at=0),
        receive("w1", 0, lease(1, 1, 0)),
        receive("w2", 10, lease(1, 2, 10)),
    ]
    text = describe(history, check(history, CONFIG))
    assert text.startswith("overlapping_leases: e1 was leased to w2")
    assert "[1] Receive(worker='w1'" in text
    assert "[2] Receive(worker='w2'" in text
