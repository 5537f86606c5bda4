"""A consumer's head: where it stands in its log, and the stretches of the log handed to receives
(`ahead`, how far they were handed out; `fin`, how far they are done with), in one item of its partition
(docs/architecture.md, "Receives racing for one consumer").

Every move of the head is conditional: it moves only from the version that was read, so two receives
never take the same events from the log. A stretch only says where a receive reads: it grants nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pullbridge.storage.attributes import Item, n, num, s
from pullbridge.storage.client import error_code, storage_errors
from pullbridge.storage.consumer_items import decided_of, group_item, head_of, in_flight_item
from pullbridge.storage.keys import HEAD_POSITION, consumer_partition
from pullbridge.storage.model import ConsumerHead, InFlight
from pullbridge.storage.transactions import MAX_TRANSACTION_ITEMS, Transactions, chunks


@dataclass(frozen=True)
class Stretch:
    """Positions (`start`, `end`] of the consumer's log handed to one receive (`reserve_stretch`), so that
    receives racing for one consumer read different parts of the log. It grants nothing: a take is
    conditional on the head's version whatever stretch its receive was handed."""

    head: ConsumerHead
    start: int
    end: int
    decided: int
    """The head's `fin` when it was handed out: the stretches that end at or before it are done with."""


class ConsumerHeads(Transactions):
    def reserve_stretch(self, tenant_id: str, consumer_id: str, size: int) -> Stretch | None:
        """The next `size` positions past those handed out (`ahead`), and the head: one `UpdateItem`.
        None when the consumer is gone."""
        key = {"pk": s(consumer_partition(tenant_id, consumer_id)), "sk": n(HEAD_POSITION)}
        with storage_errors():
            try:
                item = self._client.update_item(
                    TableName=self._events_table,
                    Key=key,
                    UpdateExpression="SET ahead = ahead + :size",
                    ConditionExpression="attribute_exists(ahead)",
                    ExpressionAttributeValues={":size": n(size)},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                if not exc.response.get("Item"):
                    return None
                return self._first_stretch(key, size)
        head = head_of(item)
        end = num(item, "ahead")
        return Stretch(head, max(end - size, head.position), end, decided_of(item))

    def _first_stretch(self, key: Item, size: int) -> Stretch | None:
        """A head from before stretches: they start at its position. None when the consumer is gone, or
        when another receive started them first (the caller asks again)."""
        with storage_errors():
            try:
                item = self._client.update_item(
                    TableName=self._events_table,
                    Key=key,
                    UpdateExpression="SET ahead = pos + :size, fin = pos",
                    ConditionExpression="attribute_exists(pos) AND attribute_not_exists(ahead)",
                    ExpressionAttributeValues={":size": n(size)},
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return None
        head = head_of(item)
        return Stretch(head, head.position, num(item, "ahead"), head.position)

    def peek_stretch(self, tenant_id: str, consumer_id: str) -> Stretch | None:
        """No stretch, where the next would start (`ahead`): for a receive that reads from the head
        whatever the stretches handed out (a consumer caught up with its log). A consistent `GetItem`;
        None when the consumer is gone."""
        with storage_errors():
            item = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": s(consumer_partition(tenant_id, consumer_id)), "sk": n(HEAD_POSITION)},
                ConsistentRead=True,
            ).get("Item")
        if not item:
            return None
        head = head_of(item)
        ahead = max(num(item, "ahead", head.position), head.position)
        return Stretch(head, ahead, ahead, decided_of(item))

    def consumer_progress(self, tenant_id: str, consumer_id: str) -> tuple[ConsumerHead, int] | None:
        """The head, and how far the stretches handed out are done with (`fin`): a consistent `GetItem`."""
        with storage_errors():
            item = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": s(consumer_partition(tenant_id, consumer_id)), "sk": n(HEAD_POSITION)},
                ConsistentRead=True,
            ).get("Item")
        return (head_of(item), decided_of(item)) if item else None

    def release_stretch(self, tenant_id: str, consumer_id: str, end: int) -> None:
        """Done with a stretch without taking it all: `fin` moves to its end, unless it is there already
        (a later take moved it), so that the receives handed the next stretches need not wait for it."""
        with storage_errors():
            try:
                self._client.update_item(
                    TableName=self._events_table,
                    Key={"pk": s(consumer_partition(tenant_id, consumer_id)), "sk": n(HEAD_POSITION)},
                    UpdateExpression="SET fin = :end",
                    ConditionExpression="fin < :end",
                    ExpressionAttributeValues={":end": n(end)},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def take_from_log(
        self,
        tenant_id: str,
        consumer_id: str,
        expected: ConsumerHead,
        head: ConsumerHead,
        claims: Sequence[InFlight],
        *,
        decided: int | None = None,
    ) -> ConsumerHead | None:
        """Move the head from `expected` to `head` and hold `claims` in flight, in one transaction (at most
        `MAX_TRANSACTION_ITEMS - 1` claims); the claims of one `group` go in one item, the others in one
        each. `decided`: the stretches are done with up to there (`fin`).
        None when it landed. Else nothing was taken, and the answer is the head as another receive left
        it (the cancellation returns it), or `expected` when that is not known (a claim's condition
        refused, or a conflicting transaction)."""
        if len(claims) >= MAX_TRANSACTION_ITEMS:
            raise ValueError("too many claims for one transaction")
        partition = consumer_partition(tenant_id, consumer_id)
        move = self._consumer_head_move(partition, expected, head)
        if decided is not None:
            move["Update"]["UpdateExpression"] += ", fin = :fin"
            move["Update"]["ExpressionAttributeValues"][":fin"] = n(decided)
        move["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        grouped = [claim for claim in claims if claim.group is not None]
        items = [in_flight_item(partition, claim) for claim in claims if claim.group is None]
        if grouped:
            items.append(group_item(partition, grouped))
        actions: list[Any] = [move]
        actions += [
            {
                "Put": {
                    "TableName": self._events_table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for item in items
        ]
        old: dict[int, Item] = {}
        if self._transact(actions, old_items=old) is None:
            return None
        return head_of(old[0]) if 0 in old and "ver" in old[0] else expected

    def move_head(
        self,
        tenant_id: str,
        consumer_id: str,
        expected: ConsumerHead,
        head: ConsumerHead,
        drop: Sequence[InFlight] = (),
        *,
        seek: bool = False,
    ) -> bool:
        """Move the head (a seek, or a count of pending events), and drop in-flight events with it. A seek
        starts the stretches handed out again at the new position."""
        partition = consumer_partition(tenant_id, consumer_id)
        self._split_groups(partition, {item.group for item in drop if item.group is not None})
        first, rest = drop[: MAX_TRANSACTION_ITEMS - 1], drop[MAX_TRANSACTION_ITEMS - 1 :]
        move = self._consumer_head_move(partition, expected, head)
        if seek:
            move["Update"]["UpdateExpression"] += ", ahead = :pos, fin = :pos"
        actions: list[Any] = [move]
        actions += [
            {"Delete": {"TableName": self._events_table, "Key": {"pk": s(partition), "sk": n(item.position)}}}
            for item in first
        ]
        if self._transact(actions) is not None:
            return False
        for chunk in chunks(rest, MAX_TRANSACTION_ITEMS):
            self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self._events_table,
                            "Key": {"pk": s(partition), "sk": n(item.position)},
                        }
                    }
                    for item in chunk
                ],
                raise_on_cancel=True,
            )
        return True

    def _consumer_head_move(
        self, partition: str, expected: ConsumerHead, head: ConsumerHead
    ) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._events_table,
                "Key": {"pk": s(partition), "sk": n(HEAD_POSITION)},
                "UpdateExpression": "SET pos = :pos, ver = :next, counted = :counted, pending = :pending",
                "ConditionExpression": "ver = :ver",
                "ExpressionAttributeValues": {
                    ":pos": n(head.position),
                    ":next": n(expected.version + 1),
                    ":counted": n(head.counted_to),
                    ":pending": n(head.pending),
                    ":ver": n(expected.version),
                },
            }
        }
