"""Receives racing for one consumer: they are handed consecutive stretches of the log to read, so they read
different events instead of the same ones; one that loses the race for the head anyway takes from the
winner's head with what it read, without reading the log again. Acks of a batch are one transaction with
one receipt. The DynamoDB requests each makes are counted on its client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest

from pullbridge.clock import to_iso
from pullbridge.connections import create_connection
from pullbridge.consumers import delivery, instance_memory, receiving, service
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import ConsumerCreate, Delivery, SeekRequest
from pullbridge.consumers.records import StoredConsumer, find_consumer
from pullbridge.cursors import CursorCodec
from pullbridge.events import EventReader
from pullbridge.models import ConnectionCreate
from pullbridge.settings import ApiSettings
from pullbridge.storage import ConsumerHead, EventDraft, LoggedEvent, Store, dynamodb_client
from pullbridge.storage.keys import HEAD_POSITION, consumer_partition
from pullbridge.storage.transactions import MAX_TRANSACTION_ITEMS
from tests.conftest import CURSOR_SECRET
from tests.support import TEST_SECRET, labelled_event
from tests.support import MovingClock as Clock

TENANT = "t_races"


@dataclass
class Requests:
    """What one client sent: each call's operation and what it read or wrote ("log", "consumer" for a
    consumer's own partitions, or "control"), and the transactions' sizes."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    transaction_items: list[int] = field(default_factory=list)

    def hook(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._before_call)

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, _kind(params)))
        if model.name == "TransactWriteItems":
            self.transaction_items.append(len(params["TransactItems"]))

    def since(self, mark: int) -> list[tuple[str, str]]:
        return self.calls[mark:]


def _kind(params: dict[str, Any]) -> str:
    if "TransactItems" in params:  # by its first item: a take's is the consumer's head
        params = next(iter(params["TransactItems"][0].values()))
    key = params.get("Key") or params.get("Item") or {}
    partition = key.get("pk") or (params.get("ExpressionAttributeValues") or {}).get(":pk")
    value = partition.get("S", "") if isinstance(partition, dict) else ""
    if not value.startswith("T#"):
        return "control" if value else "other"
    return "consumer" if "#K#" in value else "log"


def _context(settings: ApiSettings, clock: Clock | None = None) -> tuple[Consumers, Requests]:
    """A worker's own client and Store, as a separate Lambda would have, with its requests counted."""
    requests = Requests()
    client = dynamodb_client(settings.dynamodb_endpoint)
    requests.hook(client)
    store = Store(client, settings)
    codec = CursorCodec(CURSOR_SECRET)
    reader = EventReader(store, codec)
    if clock is None:
        return Consumers(store, codec, reader), requests
    return Consumers(store, codec, reader, clock=clock, sleep=clock.sleep), requests


@pytest.fixture
def write(store: Store, settings: ApiSettings) -> Callable[[int], list[str]]:
    connection = create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )
    labels = iter(range(10_000))

    def append(count: int) -> list[str]:
        drafts = []
        for _ in range(count):
            document = labelled_event(connection.id, f"e{next(labels)}")
            document["received_at"] = to_iso(time.time())
            drafts.append(EventDraft(connection.id, document))
        return store.append(TENANT, connection.id, drafts).event_ids

    return append


@pytest.fixture(autouse=True)
def _fresh_instance_memory() -> None:
    """Each test starts as a new instance would: no pace of stretches, no count in flight seen."""
    instance_memory.paces.clear()
    instance_memory.seen_in_flight.clear()
    instance_memory.log_ends.clear()


def _consumer(ctx: Consumers, name: str = "racing") -> StoredConsumer:
    service.create_consumer(ctx, TENANT, ConsumerCreate(name=name, ack_wait_seconds=600))
    return find_consumer(ctx.store, TENANT, name)


def _decided(store: Store, consumer: StoredConsumer) -> int:
    view = store.read_consumer_view(TENANT, consumer.id, horizon=0, after=0, record_keys=None)
    assert view is not None
    return view.decided


def _ids(deliveries: list[Delivery]) -> list[str]:
    return [item.event.id for item in deliveries]


def test_a_receive_that_loses_the_race_takes_from_the_winners_head_with_what_it_read(
    settings: ApiSettings, write: Callable[[int], list[str]]
) -> None:
    event_ids = write(10)
    clock = Clock()
    ctx, requests = _context(settings, clock)
    consumer = _consumer(ctx)
    other: list[Delivery] = []
    after_the_other = 0
    raced_yet = False
    take = ctx.store.take_from_log

    def raced(*args: Any, **kwargs: Any) -> Any:
        """Before this receive's first take lands, another receive runs whole: handed the stretch after
        this one's, it waits for it (on the test's clock) no longer than it may, then takes 4 events
        from the head itself."""
        nonlocal after_the_other, raced_yet
        if not raced_yet:
            raced_yet = True
            other.extend(delivery.receive(ctx, consumer, 4, 0).data)
            after_the_other = len(requests.calls)
        return take(*args, **kwargs)

    with mock.patch.object(ctx.store, "take_from_log", raced):
        mine = delivery.receive(ctx, consumer, 10, 0).data

    assert _ids(other) == event_ids[:4]
    assert _ids(mine) == event_ids[4:]
    # After the other receive: this one's take, refused, then the state read again and the take of what
    # it had read past the winner's head. The log is not read again, nor a new stretch taken.
    assert requests.since(after_the_other) == [
        ("TransactWriteItems", "consumer"),
        ("Query", "consumer"),
        ("TransactWriteItems", "consumer"),
    ]


def test_racing_receives_read_consecutive_stretches_and_take_them_in_turn(
    settings: ApiSettings, write: Callable[[int], list[str]]
) -> None:
    event_ids = write(20)
    setup, _ = _context(settings)
    consumer = _consumer(setup)
    first_ctx, first_requests = _context(settings)
    second_ctx, second_requests = _context(settings)
    first_read, second_read = threading.Event(), threading.Event()
    reads: dict[str, list[int]] = {"first": [], "second": []}

    def reading(ctx: Consumers, name: str, done: threading.Event, then: threading.Event | None) -> None:
        collect = ctx.reader.collect

        def collecting(*args: Any, **kwargs: Any) -> tuple[list[LoggedEvent], int, float, bool]:
            reads[name].append(args[2])  # where it reads from
            answer = collect(*args, **kwargs)
            done.set()
            if then is not None:
                assert then.wait(10), "the other receive did not read"
            return answer

        ctx.reader.collect = collecting  # type: ignore[method-assign]

    # The first receive reads its stretch and holds on until the second has read its own
    reading(first_ctx, "first", first_read, second_read)
    reading(second_ctx, "second", second_read, None)
    got: dict[str, list[Delivery]] = {}

    def receive(ctx: Consumers, name: str) -> None:
        got[name] = delivery.receive(ctx, consumer, 10, 0).data

    first = threading.Thread(target=receive, args=(first_ctx, "first"))
    first.start()
    assert first_read.wait(10)
    second = threading.Thread(target=receive, args=(second_ctx, "second"))
    second.start()
    for thread in (first, second):
        thread.join(15)
        assert not thread.is_alive()

    assert _ids(got["first"]) == event_ids[:10]
    assert _ids(got["second"]) == event_ids[10:]
    # Each read the log once, the second from where the first's stretch ends, while the first was at work
    assert reads == {"first": [0], "second": [10]}
    # One take each, of the head and its 10 events' lease group: no take was refused
    assert first_requests.transaction_items == [2]
    assert second_requests.transaction_items == [2]


def test_stretches_are_handed_out_one_after_another_done_with_in_turn_and_restarted_by_a_seek(
    store: Store, settings: ApiSettings, write: Callable[[int], list[str]]
) -> None:
    write(3)
    ctx, _ = _context(settings)
    consumer = _consumer(ctx)
    first = store.reserve_stretch(TENANT, consumer.id, 5)
    second = store.reserve_stretch(TENANT, consumer.id, 5)
    assert first is not None
    assert second is not None
    assert (first.start, first.end, first.decided) == (0, 5, 0)
    assert (second.start, second.end, second.decided) == (5, 10, 0)
    store.release_stretch(TENANT, consumer.id, first.end)
    assert _decided(store, consumer) == 5
    store.release_stretch(TENANT, consumer.id, 3)  # never back
    assert _decided(store, consumer) == 5
    taken = store.take_from_log(
        TENANT, consumer.id, second.head, ConsumerHead(3, second.head.version + 1, 3, 0), [], decided=10
    )
    assert taken is None
    assert _decided(store, consumer) == 10
    service.seek(ctx, TENANT, consumer.id, SeekRequest(position="all"))
    again = store.reserve_stretch(TENANT, consumer.id, 5)
    assert again is not None
    assert (again.start, again.end, again.decided) == (0, 5, 0)


def test_a_head_from_before_stretches_starts_them_at_its_position(
    store: Store, settings: ApiSettings, write: Callable[[int], list[str]]
) -> None:
    event_ids = write(4)
    ctx, _ = _context(settings)
    consumer = _consumer(ctx)
    store._client.update_item(  # a head as consumers made before stretches left it
        TableName=settings.events_table,
        Key={"pk": {"S": consumer_partition(TENANT, consumer.id)}, "sk": {"N": str(HEAD_POSITION)}},
        UpdateExpression="SET pos = :two REMOVE ahead, fin",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    stretch = store.reserve_stretch(TENANT, consumer.id, 5)
    assert stretch is not None
    assert (stretch.start, stretch.end, stretch.decided) == (2, 7, 2)
    store.release_stretch(TENANT, consumer.id, stretch.end)
    assert _ids(delivery.receive(ctx, consumer, 10, 0).data) == event_ids[2:]


def test_a_receive_waits_for_the_stretch_of_one_that_died_no_longer_than_it_may(
    store: Store, settings: ApiSettings, write: Callable[[int], list[str]]
) -> None:
    """A receive was handed a stretch and never came back: the next waits for it no longer than
    `STRETCH_WAIT_SECONDS` (on the test's clock), then takes from the head itself."""
    event_ids = write(20)
    clock = Clock()
    ctx, _ = _context(settings, clock)
    consumer = _consumer(ctx)
    assert store.reserve_stretch(TENANT, consumer.id, 10) is not None  # and gone
    started = clock.now
    assert _ids(delivery.receive(ctx, consumer, 10, 0).data) == event_ids[:10]
    assert receiving.STRETCH_WAIT_SECONDS <= clock.now - started <= receiving.STRETCH_WAIT_SECONDS + 1
    # Then the stretches run on: the next receive has nothing to wait for
    started = clock.now
    assert _ids(delivery.receive(ctx, consumer, 10, 0).data) == event_ids[10:]
    assert clock.now == started


def test_a_receive_whose_stretch_lies_past_the_end_of_the_log_does_not_wait(
    store: Store, settings: ApiSettings, write: Callable[[int], list[str]]
) -> None:
    """Workers waiting on a quiet consumer: what comes lies before their stretches, so a receive takes it
    from the head at once, whatever the receives handed the stretches before are doing."""
    event_ids = write(3)
    clock = Clock()
    ctx, _ = _context(settings, clock)
    consumer = _consumer(ctx)
    assert store.reserve_stretch(TENANT, consumer.id, 10) is not None  # another receive, at work
    started = clock.now
    assert _ids(delivery.receive(ctx, consumer, 10, 0).data) == event_ids
    assert clock.now == started


def test_an_ack_of_a_batch_is_one_transaction_with_one_receipt_and_a_second_ack_is_harmless(
    settings: ApiSettings, write: Callable[[int], list[str]]
) -> None:
    write(5)
    ctx, requests = _context(settings)
    consumer = _consumer(ctx)
    batch = delivery.receive(ctx, consumer, 10, 0).data
    mark = len(requests.transaction_items)
    ack_ids = [item.ack_id for item in batch]
    assert delivery.ack(ctx, consumer, ack_ids).model_dump() == {"acked": 5, "expired": []}
    assert requests.transaction_items[mark:] == [1 + 1]  # the lease group's delete and one receipt
    assert delivery.ack(ctx, consumer, ack_ids).model_dump() == {"acked": 5, "expired": []}
    assert ctx.store.read_consumer_state(TENANT, consumer.id).in_flight == []  # type: ignore[union-attr]


def test_acks_of_many_takes_fill_transactions_with_a_receipt_for_each_take() -> None:
    from pullbridge.storage.consumer_leases import _settle_chunks

    epoch = 1 << 32
    one_take = [(position, epoch + 1) for position in range(1, 150)]
    assert [len(chunk) for chunk in _settle_chunks(one_take, {})] == [MAX_TRANSACTION_ITEMS - 1, 50]
    many_takes = [(position, (position << 32) + 1) for position in range(1, 101)]
    assert [len(chunk) for chunk in _settle_chunks(many_takes, {})] == [MAX_TRANSACTION_ITEMS // 2] * 2
    assert [len(chunk) for chunk in _settle_chunks(many_takes, dict.fromkeys(range(1, 101)))] == [100]


def test_a_busy_consumers_state_is_read_filtered_to_what_the_receive_needs(
    settings: ApiSettings, write: Callable[[int], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiving, "WHOLE_STATE_IN_FLIGHT", 10)
    write(30)
    ctx, _ = _context(settings)
    consumer = _consumer(ctx)
    # 30 in flight, leased, each in an item of its own (a receive of one leases no group)
    held = [item for _ in range(30) for item in delivery.receive(ctx, consumer, 1, 0).data]
    write(2)
    answers: list[tuple[int, int]] = []
    client = ctx.store._client

    def answered(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query" and "ScannedCount" in parsed:
            answers.append((parsed["Count"], parsed["ScannedCount"]))

    client.meta.events.register("after-call.dynamodb.Query", answered)
    assert len(delivery.receive(ctx, consumer, 10, 0).data) == 2
    state_reads = [answer for answer in answers if answer[1] == len(held) + 1]
    assert state_reads == [(1, len(held) + 1)]  # the head alone; every in-flight event read, and counted
