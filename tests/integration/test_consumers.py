"""Consumers on moto's DynamoDB, through the domain with a clock the tests move: leases, acks, nacks,
extensions, terms, dead letters, redrive, seek, ordering and exact counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from pullbridge.clock import to_iso
from pullbridge.connections import create_connection
from pullbridge.consumers import delivery, receiving, service
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import ConsumerCreate, ConsumerUpdate, Delivery, RedriveRequest, SeekRequest
from pullbridge.consumers.records import find_consumer
from pullbridge.cursors import CursorCodec
from pullbridge.errors import Conflict, NotFound, ValidationFailed
from pullbridge.events import EventFilters, EventReader
from pullbridge.models import ConnectionCreate
from pullbridge.settings import ApiSettings
from pullbridge.storage import EventDraft, Store
from tests.conftest import CURSOR_SECRET
from tests.support import TEST_SECRET, labelled_event
from tests.support import MovingClock as Clock

TENANT = "t_consumers"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["whole state", "filtered state"])
def ctx(
    request: pytest.FixtureRequest, store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Consumers:
    """Every test twice: receives reading the consumer's whole state (few in flight), and receives
    reading it filtered (many in flight: `receiving._view`)."""
    if request.param == "filtered state":
        monkeypatch.setattr(receiving, "WHOLE_STATE_IN_FLIGHT", -1)
    codec = CursorCodec(CURSOR_SECRET)
    return Consumers(store, codec, EventReader(store, codec), clock=clock, sleep=clock.sleep)


@pytest.fixture
def write(store: Store, settings: ApiSettings) -> Callable[..., list[str]]:
    connection = create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )

    def append(*labels: str, record: str | None = None) -> list[str]:
        drafts = []
        for label in labels:
            document = labelled_event(connection.id, label)
            document["record_id"] = record if record is not None else label
            document["received_at"] = to_iso(time.time())  # as the log's writers stamp it
            drafts.append(EventDraft(connection.id, document, delivery_id=None))
        return store.append(TENANT, connection.id, drafts).event_ids

    return append


def _create(ctx: Consumers, name: str = "workers", **fields: Any) -> str:
    return service.create_consumer(ctx, TENANT, ConsumerCreate(name=name, **fields)).id


def _receive(ctx: Consumers, name: str = "workers", batch: int = 10, wait: float = 0) -> list[Delivery]:
    return delivery.receive(ctx, find_consumer(ctx.store, TENANT, name), batch, wait).data


def _labels(deliveries: list[Delivery]) -> list[str]:
    return [item.event.data["label"] for item in deliveries]


def _ack(ctx: Consumers, deliveries: list[Delivery], name: str = "workers") -> Any:
    return delivery.ack(ctx, find_consumer(ctx.store, TENANT, name), [item.ack_id for item in deliveries])


def test_a_consumer_delivers_each_event_once_until_acked_and_counts_exactly(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("a", "b", "c")
    _create(ctx)
    assert service.get_consumer(ctx, TENANT, "workers").num_pending == 3

    first = _receive(ctx, batch=2)
    assert _labels(first) == ["a", "b"]
    assert [item.delivery_count for item in first] == [1, 1]
    described = service.get_consumer(ctx, TENANT, "workers")
    assert (described.num_pending, described.num_ack_pending, described.num_dead) == (1, 2, 0)

    assert _labels(_receive(ctx, batch=10)) == ["c"]  # a second worker gets what is left, not a or b
    assert _receive(ctx) == []
    assert _ack(ctx, first).model_dump() == {"acked": 2, "expired": []}
    described = service.get_consumer(ctx, TENANT, "workers")
    assert (described.num_pending, described.num_ack_pending) == (0, 1)


def test_events_written_later_are_counted_and_delivered(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    _create(ctx)
    assert service.get_consumer(ctx, TENANT, "workers").num_pending == 0
    write("a", "b")
    assert service.get_consumer(ctx, TENANT, "workers").num_pending == 2
    write("c")
    described = service.get_consumer(ctx, TENANT, "workers")
    assert described.num_pending == 3
    assert described.lag_seconds >= 0
    assert _labels(_receive(ctx)) == ["a", "b", "c"]
    assert service.get_consumer(ctx, TENANT, "workers").num_pending == 0


def test_an_expired_lease_is_delivered_again_and_its_late_ack_is_reported_expired(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    write("a")
    _create(ctx, ack_wait_seconds=30)
    first = _receive(ctx)
    clock.now += 31
    again = _receive(ctx)
    assert _labels(again) == ["a"]
    assert again[0].delivery_count == 2
    assert _ack(ctx, first).model_dump() == {"acked": 0, "expired": [first[0].ack_id]}
    assert _ack(ctx, again).model_dump() == {"acked": 1, "expired": []}
    assert _ack(ctx, again).model_dump() == {"acked": 1, "expired": []}  # twice is harmless
    clock.now += 60
    assert _receive(ctx) == []


def test_nack_redelivers_at_once_or_after_its_delay(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    write("a", "b")
    _create(ctx, ordering="none", ack_wait_seconds=300)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    a, b = _receive(ctx)
    assert delivery.nack(ctx, consumer, [a.ack_id], 0).nacked == 1
    assert delivery.nack(ctx, consumer, [b.ack_id], 60).nacked == 1
    assert _labels(_receive(ctx)) == ["a"]
    clock.now += 61
    again = _receive(ctx)
    assert _labels(again) == ["b"]
    assert again[0].delivery_count == 2
    assert delivery.nack(ctx, consumer, [b.ack_id], 0).model_dump() == {"nacked": 0, "expired": [b.ack_id]}


def test_extend_keeps_the_lease_and_the_delivery_count(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    write("a")
    _create(ctx, ack_wait_seconds=10)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    (leased,) = _receive(ctx)
    clock.now += 8
    assert delivery.extend(ctx, consumer, [leased.ack_id], 60).extended == 1
    clock.now += 30
    assert _receive(ctx) == []  # still leased: nobody else gets it
    assert _ack(ctx, [leased]).acked == 1


def test_a_redelivery_never_takes_a_lease_extended_after_the_receive_read_it(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    """The soak's find: a receive that read a lease about to run out, then saw it due by its own clock,
    took it from a holder whose extension (by the holder's clock, in time) had landed in between."""
    write("a")
    _create(ctx, ack_wait_seconds=10)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    (leased,) = _receive(ctx)
    state = ctx.store.read_consumer_state(TENANT, consumer.id, consistent=True)
    assert state is not None
    (read,) = state.in_flight  # what a racing receive read before the extension
    clock.now += 9.5
    assert delivery.extend(ctx, consumer, [leased.ack_id], 60).extended == 1
    clock.now += 1  # past the lease as it was read
    again = replace(read, due_at=clock.now + 10, delivery_count=2, lease_seq=read.lease_seq + 1)
    assert ctx.store.relet(TENANT, consumer.id, [(read, again)], now=clock.now) == []
    assert _receive(ctx) == []
    assert _ack(ctx, [leased]).acked == 1


def test_an_ack_answers_as_of_one_moment_when_a_receive_takes_some_of_its_leases_meanwhile(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The soak's find: an ack sent just before its leases ran out was refused for those a receive took
    once they had, and its try again without them, with the time it was sent, acked the others, whose
    leases had run out just the same."""
    write("a", "b")
    _create(ctx, ack_wait_seconds=10)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    a, b = _receive(ctx)
    clock.now += 9.9
    transact = ctx.store._transact
    calls = 0

    def slow_first_try(actions: Any, **options: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # throttled and retried by botocore: meanwhile the leases run out, `a` goes again
            clock.now += 0.5
            assert _labels(_receive(ctx, batch=1)) == ["a"]
        return transact(actions, **options)

    monkeypatch.setattr(ctx.store, "_transact", slow_first_try)
    answer = delivery.ack(ctx, consumer, [a.ack_id, b.ack_id])
    assert (answer.acked, sorted(answer.expired)) == (0, sorted([a.ack_id, b.ack_id]))
    monkeypatch.setattr(ctx.store, "_transact", transact)
    clock.now += 10
    assert sorted(_labels(_receive(ctx))) == ["a", "b"]  # both still in flight, neither acked


def test_a_redriven_lease_is_the_later_of_two_ack_ids_after_seeks_took_its_event_again(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    """The property test's find: a dead letter's event taken again from the log after a seek back (a
    later epoch), that lease dropped by a seek forward, then the dead letter redriven: its new lease kept
    the buried one's `seq` + 1, below the dropped lease's, so an ack naming both tried the dropped one and
    answered the live lease `expired`."""
    (event_id,) = write("a")
    _create(ctx, ack_wait_seconds=30, max_deliveries=1)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    _receive(ctx)
    clock.now += 31
    assert _receive(ctx) == []  # buried: max_deliveries
    service.seek(ctx, TENANT, "workers", SeekRequest(position="all"))
    (taken_again,) = _receive(ctx)  # from the log again, in a later epoch
    service.seek(ctx, TENANT, "workers", SeekRequest(position="new"))  # drops that lease
    assert service.redrive(ctx, TENANT, "workers", RedriveRequest(event_ids=[event_id])).redriven == 1
    (redriven,) = _receive(ctx)
    answer = delivery.ack(ctx, consumer, [taken_again.ack_id, redriven.ack_id])
    assert (answer.acked, answer.expired) == (1, [taken_again.ack_id])
    assert service.get_consumer(ctx, TENANT, "workers").num_ack_pending == 0


def test_a_dead_letter_redriven_twice_gets_a_new_lease_each_time(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    (event_id,) = write("a")
    _create(ctx, ack_wait_seconds=30, max_deliveries=1)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    _receive(ctx)
    clock.now += 31
    assert _receive(ctx) == []
    service.redrive(ctx, TENANT, "workers", RedriveRequest(event_ids=[event_id]))
    (first,) = _receive(ctx)
    assert delivery.term(ctx, consumer, [first.ack_id], "again").termed == 1
    service.redrive(ctx, TENANT, "workers", RedriveRequest(event_ids=[event_id]))  # the head has not moved
    (second,) = _receive(ctx)
    assert second.ack_id != first.ack_id
    assert delivery.ack(ctx, consumer, [first.ack_id]).expired == [first.ack_id]
    assert delivery.ack(ctx, consumer, [second.ack_id]).acked == 1


def test_max_deliveries_then_a_dead_letter_that_can_be_listed_redriven_and_discarded(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    (event_id,) = write("a")
    _create(ctx, ack_wait_seconds=5, max_deliveries=2)
    _receive(ctx)
    clock.now += 6
    assert [item.delivery_count for item in _receive(ctx)] == [2]
    clock.now += 6
    assert _receive(ctx) == []  # the third delivery would pass max_deliveries: it is buried instead
    described = service.get_consumer(ctx, TENANT, "workers")
    assert (described.num_dead, described.num_ack_pending, described.num_pending) == (1, 0, 0)
    page = service.list_dead_letters(ctx, TENANT, "workers", cursor=None, limit=10)
    assert [(row.event_id, row.delivery_count, row.reason) for row in page.data] == [
        (event_id, 2, "max_deliveries")
    ]
    assert page.data[0].event is not None
    assert page.data[0].event.data["label"] == "a"

    redriven = service.redrive(ctx, TENANT, "workers", RedriveRequest(event_ids=[event_id]))
    assert (redriven.redriven, redriven.remaining) == (1, 0)
    back = _receive(ctx)
    assert (_labels(back), back[0].delivery_count) == (["a"], 1)

    consumer = find_consumer(ctx.store, TENANT, "workers")
    assert delivery.term(ctx, consumer, [back[0].ack_id], "poison").termed == 1
    rows = service.list_dead_letters(ctx, TENANT, "workers", cursor=None, limit=10).data
    assert [row.reason for row in rows] == ["poison"]
    service.discard_dead_letter(ctx, TENANT, "workers", event_id)
    assert service.get_consumer(ctx, TENANT, "workers").num_dead == 0
    with pytest.raises(NotFound):
        service.discard_dead_letter(ctx, TENANT, "workers", event_id)


def test_record_ordering_holds_a_records_next_event_until_the_previous_is_settled(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("x1", record="x")
    write("y1", record="y")
    write("x2", record="x")
    _create(ctx)
    first = _receive(ctx)
    assert _labels(first) == ["x1", "y1"]  # different records in parallel; x2 waits behind x1
    assert service.get_consumer(ctx, TENANT, "workers").num_pending == 1
    assert _receive(ctx) == []
    _ack(ctx, [first[0]])
    assert _labels(_receive(ctx)) == ["x2"]


def test_a_new_event_waits_behind_its_records_event_taken_by_an_earlier_receive(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("x1", record="x")
    _create(ctx)
    (x1,) = _receive(ctx)
    write("x2", record="x")
    write("y1", record="y")
    assert _labels(_receive(ctx)) == ["y1"]  # x2 is taken, to wait behind the leased x1
    assert _receive(ctx) == []
    _ack(ctx, [x1])
    assert _labels(_receive(ctx)) == ["x2"]


def test_ordering_none_delivers_a_records_events_in_parallel(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("x1", "x2", record="x")
    _create(ctx, ordering="none")
    assert _labels(_receive(ctx)) == ["x1", "x2"]


def test_max_ack_pending_bounds_what_is_in_flight(ctx: Consumers, write: Callable[..., list[str]]) -> None:
    write("a", "b", "c")
    _create(ctx, max_ack_pending=2)
    assert _labels(_receive(ctx)) == ["a", "b"]
    assert _receive(ctx) == []


def test_seek_drops_what_is_in_flight_and_moves_the_position(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("a", "b")
    _create(ctx)
    leased = _receive(ctx, batch=1)
    described = service.seek(ctx, TENANT, "workers", SeekRequest(position="new"))
    assert (described.num_pending, described.num_ack_pending) == (0, 0)
    assert _ack(ctx, leased).expired == [leased[0].ack_id]  # what the seek dropped, an ack cannot settle
    write("c")
    assert _labels(_receive(ctx)) == ["c"]
    service.seek(ctx, TENANT, "workers", SeekRequest(position="all"))
    assert _labels(_receive(ctx)) == ["a", "b", "c"]


def test_start_new_and_start_from_a_cursor(ctx: Consumers, write: Callable[..., list[str]]) -> None:
    write("a", "b")
    _create(ctx, "from-new", start="new")
    page = ctx.reader.list_events(TENANT, EventFilters(), cursor=None, limit=1)
    _create(ctx, "from-cursor", start={"cursor": page.next_cursor})
    write("c")
    assert _labels(_receive(ctx, "from-new")) == ["c"]
    assert _labels(_receive(ctx, "from-cursor")) == ["b", "c"]


def test_filters_select_what_a_consumer_sees(ctx: Consumers, write: Callable[..., list[str]]) -> None:
    write("a")
    _create(ctx, "typed", filters={"type": "other.type"})
    _create(ctx, "all-types", filters={"type": "test.written"})
    assert _receive(ctx, "typed") == []
    assert _labels(_receive(ctx, "all-types")) == ["a"]


def test_a_name_is_unique_and_routes_take_the_id_or_the_name(ctx: Consumers) -> None:
    consumer_id = _create(ctx)
    with pytest.raises(Conflict):
        _create(ctx)
    assert service.get_consumer(ctx, TENANT, consumer_id).name == "workers"
    assert (
        service.update_consumer(ctx, TENANT, "workers", ConsumerUpdate(max_deliveries=None)).max_deliveries
        is None
    )
    with pytest.raises(NotFound):
        service.get_consumer(ctx, "t_other", consumer_id)
    service.delete_consumer(ctx, TENANT, "workers")
    with pytest.raises(NotFound):
        service.get_consumer(ctx, TENANT, consumer_id)
    assert _create(ctx) != consumer_id  # the name is free again


def test_another_consumers_ack_id_is_refused(ctx: Consumers, write: Callable[..., list[str]]) -> None:
    write("a")
    _create(ctx, "one")
    _create(ctx, "two")
    leased = _receive(ctx, "one")
    with pytest.raises(ValidationFailed) as refused:
        _ack(ctx, leased, name="two")
    assert refused.value.key == "invalid_ack_id"
    assert _ack(ctx, leased, name="one").acked == 1


def test_a_waiting_receive_gets_a_redelivery_as_its_lease_runs_out(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    write("a")
    _create(ctx, ack_wait_seconds=5)
    _receive(ctx)
    started = clock.now
    again = _receive(ctx, wait=20)
    assert _labels(again) == ["a"]
    assert 4.99 <= clock.now - started <= 5.1  # slept until the lease's end, not a probe interval past it


def test_a_waiting_receive_sees_new_events_and_does_not_spin_on_held_back_ones(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    write("x1", "x2", record="x")
    _create(ctx)
    assert _labels(_receive(ctx)) == ["x1"]  # x2 waits behind x1
    reads: list[bool] = []
    original = ctx.store.read_consumer_state

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs.get("consistent", True))
        return original(*args, **kwargs)

    monkeypatch.setattr(ctx.store, "read_consumer_state", counted)
    started = clock.now
    assert _receive(ctx, wait=6.5) == []
    assert clock.now - started >= 6.5
    assert len(reads) <= 12  # one probe per 0.65 s and the consistent reads around them, no spinning
    write("y1", record="y")
    assert _labels(_receive(ctx, wait=5)) == ["y1"]


def test_redrive_all_passes_dead_letters_whose_event_left_the_log(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]], store: Store
) -> None:
    write("old")
    time.sleep(1.1)  # the two events' expiries are whole seconds apart
    write("new")
    _create(ctx, ordering="none", max_ack_pending=1)  # room for one at a time: one dead letter per redrive
    consumer = find_consumer(ctx.store, TENANT, "workers")
    leased = _receive(ctx)
    assert delivery.term(ctx, consumer, [leased[0].ack_id], "poison").termed == 1
    leased += _receive(ctx)
    assert delivery.term(ctx, consumer, [leased[1].ack_id], "poison").termed == 1
    old_expiry = int(_received(leased[0])) + store.retention_seconds
    clock.now = old_expiry + 0.5  # "old" has left the log; "new" has not
    redriven = service.redrive(ctx, TENANT, "workers", RedriveRequest(all=True))
    assert (redriven.redriven, redriven.remaining) == (1, 1)
    assert [
        row.event_id for row in service.list_dead_letters(ctx, TENANT, "workers", cursor=None, limit=5).data
    ] == [leased[0].event.id]


def _received(item: Delivery) -> float:
    from datetime import datetime

    return datetime.fromisoformat(item.event.received_at.replace("Z", "+00:00")).timestamp()
