"""Lease groups: the events one take leases together live in one item, deleted by an ack of all of them;
any other change gives each its own item first, with the same lease. What a worker sees does not change:
each case here passes event by event as it would without groups, and the partition holds what it says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pullbridge.consumers import delivery, service
from pullbridge.consumers.delivery import Consumers
from pullbridge.consumers.models import Delivery, SeekRequest
from pullbridge.consumers.records import find_consumer
from pullbridge.storage.keys import consumer_partition
from tests.integration.test_consumers import TENANT, _ack, _create, _labels, _receive, clock, ctx, write
from tests.support import MovingClock as Clock

__all__ = ["clock", "ctx", "write"]  # the fixtures, shared with test_consumers.py


def _items(ctx: Consumers) -> list[dict[str, Any]]:
    """The consumer's partition: its head, lease groups (negative keys) and events' own items."""
    consumer = find_consumer(ctx.store, TENANT, "workers")
    answer = ctx.store._client.query(
        TableName=ctx.store._events_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": consumer_partition(TENANT, consumer.id)}},
        ConsistentRead=True,
    )
    return answer["Items"]  # type: ignore[no-any-return]


def _kinds(ctx: Consumers) -> list[str]:
    kinds = []
    for item in _items(ctx):
        key = int(item["sk"]["N"])
        kinds.append("head" if key == 0 else f"group of {item['mc']['N']}" if key < 0 else "event")
    return kinds


def _counts(ctx: Consumers) -> tuple[int, int]:
    described = service.get_consumer(ctx, TENANT, "workers")
    return described.num_pending, described.num_ack_pending


def test_a_take_leases_its_events_in_one_item_and_an_ack_of_all_deletes_it(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("a", "b", "c", "d")
    _create(ctx)
    batch = _receive(ctx, batch=3)
    assert _kinds(ctx) == ["group of 3", "head"]
    assert _counts(ctx) == (1, 3)
    single = _receive(ctx, batch=1)
    assert _kinds(ctx) == ["group of 3", "head", "event"]  # a lease of one event alone is its own item

    assert _ack(ctx, batch).model_dump() == {"acked": 3, "expired": []}
    assert _kinds(ctx) == ["head", "event"]
    assert _ack(ctx, batch).model_dump() == {"acked": 3, "expired": []}  # twice is harmless
    assert _ack(ctx, single).model_dump() == {"acked": 1, "expired": []}
    assert _counts(ctx) == (0, 0)


def test_an_ack_of_some_of_a_group_settles_those_and_leaves_the_others_leased(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("a", "b", "c", "d", "e")
    _create(ctx)
    batch = _receive(ctx, batch=5)
    assert _ack(ctx, batch[:2]).model_dump() == {"acked": 2, "expired": []}
    assert _kinds(ctx) == ["head", "event", "event", "event"]
    assert _counts(ctx) == (0, 3)
    assert _receive(ctx) == []  # the rest are still leased to the first worker
    assert _ack(ctx, batch).model_dump() == {"acked": 5, "expired": []}  # the first two: their receipts
    assert _counts(ctx) == (0, 0)


def test_a_nack_and_an_extension_of_some_of_a_group_change_only_those(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    write("a", "b", "c")
    _create(ctx, ordering="none", ack_wait_seconds=30)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    a, b, c = _receive(ctx, batch=3)
    assert delivery.nack(ctx, consumer, [a.ack_id], 0).nacked == 1
    assert delivery.extend(ctx, consumer, [b.ack_id], 120).extended == 1
    again = _receive(ctx)
    assert (_labels(again), again[0].delivery_count) == (["a"], 2)
    assert _ack(ctx, again).model_dump() == {"acked": 1, "expired": []}

    clock.now += 31  # c's lease ran out, b's was extended
    redelivered = _receive(ctx)
    assert (_labels(redelivered), redelivered[0].delivery_count) == (["c"], 2)
    assert _ack(ctx, [a, b, c]).model_dump() == {"acked": 1, "expired": [a.ack_id, c.ack_id]}
    assert _ack(ctx, redelivered).model_dump() == {"acked": 1, "expired": []}
    assert _counts(ctx) == (0, 0)


def test_a_group_whose_lease_ran_out_is_delivered_again_and_its_late_ack_changes_nothing(
    ctx: Consumers, clock: Clock, write: Callable[..., list[str]]
) -> None:
    write("a", "b", "c")
    _create(ctx, ack_wait_seconds=30)
    first = _receive(ctx, batch=3)
    clock.now += 31
    assert _ack(ctx, first).model_dump() == {"acked": 0, "expired": [item.ack_id for item in first]}
    assert _counts(ctx) == (0, 3)
    again = _receive(ctx, batch=3)
    assert (_labels(again), [item.delivery_count for item in again]) == (["a", "b", "c"], [2, 2, 2])
    assert _ack(ctx, first).expired == [item.ack_id for item in first]
    assert _ack(ctx, again).model_dump() == {"acked": 3, "expired": []}
    assert _kinds(ctx) == ["head"]


def test_a_term_of_one_of_a_group_buries_it_alone(ctx: Consumers, write: Callable[..., list[str]]) -> None:
    write("a", "b", "c")
    _create(ctx)
    consumer = find_consumer(ctx.store, TENANT, "workers")
    batch = _receive(ctx, batch=3)
    assert delivery.term(ctx, consumer, [batch[1].ack_id], "bad").termed == 1
    assert service.get_consumer(ctx, TENANT, "workers").num_dead == 1
    assert _ack(ctx, batch).model_dump() == {"acked": 2, "expired": [batch[1].ack_id]}
    assert _counts(ctx) == (0, 0)


def test_a_seek_drops_the_leases_of_a_group_and_the_events_come_again(
    ctx: Consumers, write: Callable[..., list[str]]
) -> None:
    write("a", "b", "c")
    _create(ctx)
    batch = _receive(ctx, batch=3)
    service.seek(ctx, TENANT, "workers", SeekRequest(position="all"))
    assert _kinds(ctx) == ["head"]
    assert _ack(ctx, batch).expired == [item.ack_id for item in batch]
    again: list[Delivery] = _receive(ctx, batch=3)
    assert _labels(again) == ["a", "b", "c"]
    assert _ack(ctx, again).model_dump() == {"acked": 3, "expired": []}
