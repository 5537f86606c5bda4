"""A term whose burial meets another transaction on its items (DynamoDB cancels it with
`TransactionConflict`; nothing landed) is tried again: a term of a running lease is never answered
`expired` for it. The soak found it (bench/soak: `consumer.live_lease_refused` under `dynamodb:0.1`)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pullbridge.clock import to_iso
from pullbridge.connections import create_connection
from pullbridge.consumers import delivery, service
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import ConsumerCreate
from pullbridge.consumers.records import find_consumer
from pullbridge.cursors import CursorCodec
from pullbridge.errors import StorageUnavailable
from pullbridge.events import EventReader
from pullbridge.models import ConnectionCreate
from pullbridge.settings import ApiSettings
from pullbridge.storage import EventDraft, Store
from tests.conftest import CURSOR_SECRET
from tests.support import TEST_SECRET, labelled_event
from tests.support import MovingClock as Clock

TENANT = "t_term_conflict"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(store: Store, settings: ApiSettings, clock: Clock) -> Consumers:
    codec = CursorCodec(CURSOR_SECRET)
    connection = create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )
    document = labelled_event(connection.id, "poison")
    document["received_at"] = to_iso(time.time())
    store.append(TENANT, connection.id, [EventDraft(connection.id, document, delivery_id=None)])
    consumers = Consumers(store, codec, EventReader(store, codec), clock=clock, sleep=clock.sleep)
    service.create_consumer(consumers, TENANT, ConsumerCreate(name="workers", ack_wait_seconds=30))
    return consumers


def _conflicts(client: Any, times: int) -> None:
    """The next `times` transactions are cancelled as DynamoDB cancels one that meets another."""
    left = [times]

    def cancel(**_: Any) -> None:
        left[0] -= 1
        if left[0] <= 0:
            client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", cancel)
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}, {"Code": "None"}],
            },
            "TransactWriteItems",
        )

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", cancel)


def _term(ctx: Consumers) -> Any:
    consumer = find_consumer(ctx.store, TENANT, "workers")
    (delivered,) = delivery.receive(ctx, consumer, 10, 0).data
    return delivered, lambda: delivery.term(ctx, consumer, [delivered.ack_id], "poison")


def _dead(ctx: Consumers) -> list[str]:
    consumer = find_consumer(ctx.store, TENANT, "workers")
    page = service.list_dead_letters(ctx, TENANT, consumer.id, cursor=None, limit=10)
    return [row.event_id for row in page.data]


def test_a_term_whose_burial_meets_a_conflict_is_tried_again_and_buries_the_event(ctx: Consumers) -> None:
    delivered, term = _term(ctx)
    _conflicts(ctx.store._client, 1)

    result = term()

    assert (result.termed, result.expired) == (1, [])
    assert _dead(ctx) == [delivered.event.id]


def test_a_term_after_the_lease_ran_out_is_still_answered_expired(ctx: Consumers, clock: Clock) -> None:
    _, term = _term(ctx)
    clock.sleep(31)

    result = term()

    assert result.termed == 0
    assert len(result.expired) == 1
    assert _dead(ctx) == []


def test_a_burial_that_keeps_meeting_conflicts_fails_as_storage_unavailable(ctx: Consumers) -> None:
    _, term = _term(ctx)
    _conflicts(ctx.store._client, 100)

    with pytest.raises(StorageUnavailable):
        term()
