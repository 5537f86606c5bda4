"""The consumers' pure decisions, without DynamoDB."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pullbridge.consumers import planning
from pullbridge.consumers.planning import Limits, NewEvent
from pullbridge.storage import InFlight

NOW = 1_000_000.0


def held(
    position: int, record: str | None = None, *, state: str = "leased", due: float = NOW + 30, count: int = 1
) -> InFlight:
    return InFlight(
        position=position,
        scope_position=position,
        event_id=f"evt_{position}",
        record_key=record,
        state=state,
        due_at=due,
        delivery_count=count,
        lease_seq=count,
        expires_at=2_000_000_000,
        received_at=NOW - 60,
    )


def new(position: int, record: str | None = None) -> NewEvent:
    return NewEvent(position=position, scope_position=position, event_id=f"evt_{position}", record_key=record)


def limits(**changes: object) -> Limits:
    base = Limits(
        max_batch_size=10, max_ack_pending=100, max_deliveries=3, ack_wait_seconds=30, ordering="record"
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_only_the_earliest_in_flight_event_of_a_record_may_go_out() -> None:
    in_flight = [
        held(5, "x", due=NOW - 1),
        held(7, "x", state="waiting", due=0, count=0),
        held(6, "y", due=NOW - 1),
    ]
    assert planning.held_back(in_flight, "record") == {7}
    assert [item.position for item in planning.due(in_flight, NOW, "record")] == [5, 6]
    assert planning.held_back(in_flight, "none") == set()
    assert [item.position for item in planning.due(in_flight, NOW, "none")] == [5, 6, 7]


def test_a_due_event_is_leased_again_or_buried_at_max_deliveries() -> None:
    in_flight = [held(1, due=NOW - 1, count=2), held(2, due=NOW - 1, count=3), held(3)]
    plan = planning.plan_redeliveries(in_flight, NOW, limits())
    assert [item.position for item in plan.redeliver] == [1]
    assert [item.position for item in plan.dead] == [2]
    unlimited = planning.plan_redeliveries(in_flight, NOW, limits(max_deliveries=None))
    assert [item.position for item in unlimited.redeliver] == [1, 2]


def test_redeliveries_fill_the_batch_first() -> None:
    in_flight = [held(position, due=NOW - 1) for position in (1, 2, 3)]
    plan = planning.plan_redeliveries(in_flight, NOW, limits(max_batch_size=2))
    assert [item.position for item in plan.redeliver] == [1, 2]


def test_new_events_go_out_or_wait_behind_their_record() -> None:
    in_flight = [held(1, "x")]
    plan = planning.plan_new(
        planning.ReceivePlan(),
        in_flight,
        [new(2, "x"), new(3, "y"), new(4, "y"), new(5)],
        limits(),
        count=len(in_flight),
        position=1,
        scanned_to=9,
    )
    assert [event.position for event in plan.deliver_new] == [3, 5]
    assert [event.position for event in plan.queue_new] == [2, 4]
    assert plan.new_position == 9  # all taken: past the rows that did not match


def test_a_full_batch_stops_at_the_last_event_taken() -> None:
    plan = planning.plan_new(
        planning.ReceivePlan(),
        [],
        [new(2), new(3), new(4)],
        limits(max_batch_size=2),
        count=0,
        position=1,
        scanned_to=9,
    )
    assert [event.position for event in plan.deliver_new] == [2, 3]
    assert plan.new_position == 3


def test_max_ack_pending_bounds_what_is_taken() -> None:
    in_flight = [held(1), held(2)]
    plan = planning.plan_new(
        planning.ReceivePlan(),
        in_flight,
        [new(3), new(4)],
        limits(max_ack_pending=3),
        count=len(in_flight),
        position=2,
        scanned_to=4,
    )
    assert [event.position for event in plan.deliver_new] == [3]
    assert plan.new_position == 3


def test_the_count_in_flight_bounds_what_is_taken_not_the_events_read() -> None:
    """A receive's filtered view holds only some in-flight events; the count holds them all."""
    plan = planning.plan_new(
        planning.ReceivePlan(),
        [],
        [new(3), new(4)],
        limits(max_ack_pending=3),
        count=2,
        position=2,
        scanned_to=4,
    )
    assert [event.position for event in plan.deliver_new] == [3]


def test_a_buried_event_frees_its_room_and_its_record() -> None:
    in_flight = [held(1, "x", due=NOW - 1, count=3)]
    plan = planning.plan_redeliveries(in_flight, NOW, limits(max_ack_pending=1))
    plan = planning.plan_new(
        plan, in_flight, [new(2, "x")], limits(max_ack_pending=1), count=1, position=1, scanned_to=2
    )
    assert [item.position for item in plan.dead] == [1]
    assert [event.position for event in plan.deliver_new] == [2]


def test_ordering_none_delivers_a_records_events_together() -> None:
    plan = planning.plan_new(
        planning.ReceivePlan(),
        [held(1, "x")],
        [new(2, "x"), new(3, "x")],
        limits(ordering="none"),
        count=1,
        position=1,
        scanned_to=3,
    )
    assert [event.position for event in plan.deliver_new] == [2, 3]


def test_nothing_new_leaves_the_position() -> None:
    plan = planning.plan_new(planning.ReceivePlan(), [], [], limits(), count=0, position=4, scanned_to=4)
    assert plan.new_position is None


@pytest.mark.parametrize(
    ("counted_to", "pending", "taken", "expected"),
    [(10, 5, [3, 4], 3), (10, 5, [11, 12], 5), (10, 2, [9, 10, 11], 0), (0, 0, [1], 0)],
)
def test_pending_loses_only_the_counted_events_taken(
    counted_to: int, pending: int, taken: list[int], expected: int
) -> None:
    assert planning.pending_after_take(counted_to, pending, taken) == expected


def test_the_next_due_time_ignores_events_held_behind_their_record() -> None:
    in_flight = [
        held(1, "x", due=NOW + 30),
        held(2, "x", state="waiting", due=0, count=0),
        held(3, due=NOW + 10),
    ]
    assert planning.next_due(in_flight, NOW, "record") == NOW + 10
    assert planning.next_due([held(2, "x", state="waiting", due=0, count=0)], NOW, "record") is None


def test_the_record_key_is_the_connection_collection_and_record() -> None:
    event = {"connection_id": "conn_1", "collection": "customers", "record_id": "cus_1"}
    assert planning.record_key(event) == planning.record_key(dict(event))
    assert planning.record_key(event | {"collection": "invoices"}) != planning.record_key(event)
    assert planning.record_key(event | {"record_id": None}) is None


@pytest.mark.parametrize(
    ("wanted", "expected"), [(0, 0), (10, 10), (99, 99), (100, 99), (250, 198), (1000, 990)]
)
def test_past_one_transaction_a_receive_takes_whole_transactions_of_events(
    wanted: int, expected: int
) -> None:
    assert planning.claims_worth_taking(wanted, 99) == expected
