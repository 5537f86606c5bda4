"""A consumer's dead letters: events that left its rotation (delivered `max_deliveries` times, or
termed), each kept with a copy of its event until it is redriven or discarded, and their count. And the
log's documents that a burial copies and a redelivery delivers (`events_at`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pullbridge.storage.attributes import Item, decode_document, encode_document, n, num, s, text
from pullbridge.storage.client import storage_errors
from pullbridge.storage.consumer_items import in_flight, in_flight_item, ms
from pullbridge.storage.keys import consumer_partition, dead_letter_partition, tenant_log
from pullbridge.storage.model import DeadLetterRow, InFlight
from pullbridge.storage.transactions import Transactions

_DEAD_COUNT_POSITION = 0


class DeadLetters(Transactions):
    def bury(
        self,
        tenant_id: str,
        consumer_id: str,
        rows: Sequence[DeadLetterRow],
        *,
        leased_only_at: float | None = None,
    ) -> list[DeadLetterRow]:
        """Move in-flight events to the dead letters, each only if still at its `lease_seq` (and, for a
        term, still leased at `leased_only_at`). Returns the rows that moved. A burial cancelled by another
        transaction on its items (nothing landed) is tried again: only a failed condition leaves a row."""
        partition = consumer_partition(tenant_id, consumer_id)
        dead = dead_letter_partition(tenant_id, consumer_id)
        self._split_groups(partition, {row.item.group for row in rows if row.item.group is not None})

        def burial(row: DeadLetterRow) -> list[Any]:
            condition = "seq = :seq"
            values: dict[str, Any] = {":seq": n(row.item.lease_seq)}
            names: dict[str, str] = {}
            if leased_only_at is not None:
                condition += " AND #state = :leased AND due > :now"
                values |= {":leased": s("leased"), ":now": n(ms(leased_only_at))}
                names["#state"] = "state"
            delete: dict[str, Any] = {
                "TableName": self._events_table,
                "Key": {"pk": s(partition), "sk": n(row.item.position)},
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
            if names:
                delete["ExpressionAttributeNames"] = names
            return [
                {"Delete": delete},
                {"Put": {"TableName": self._events_table, "Item": self._dead_item(dead, row)}},
                self._count_dead(dead, 1),
            ]

        buried: list[DeadLetterRow] = []
        for row in rows:  # three items each, one transaction each: a term or a max-deliveries is rare
            buried += self._transact_each([row], burial)
        return buried

    def _dead_item(self, dead: str, row: DeadLetterRow) -> Item:
        attribute, value = encode_document(row.event)
        item = in_flight_item(dead, row.item)
        # A dead letter is kept until it is redriven or deleted, never dropped: no TTL attribute.
        item["event_expires_at"] = item.pop("expires_at")
        item |= {"reason": s(row.reason[:1000]), "dead_at": n(round(row.dead_at, 3)), attribute: value}
        return item

    def _count_dead(self, dead: str, change: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._events_table,
                "Key": {"pk": s(dead), "sk": n(_DEAD_COUNT_POSITION)},
                "UpdateExpression": "ADD #count :change",
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {":change": n(change)},
            }
        }

    def dead_letter_count(self, tenant_id: str, consumer_id: str) -> int:
        with storage_errors():
            item = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": s(dead_letter_partition(tenant_id, consumer_id)), "sk": n(_DEAD_COUNT_POSITION)},
                ConsistentRead=True,
            ).get("Item")
        return max(0, num(item or {}, "count"))

    def dead_letters(
        self, tenant_id: str, consumer_id: str, *, after: int, limit: int
    ) -> tuple[list[DeadLetterRow], bool]:
        with storage_errors():
            response = self._client.query(
                TableName=self._events_table,
                KeyConditionExpression="pk = :pk AND sk > :after",
                ExpressionAttributeValues={
                    ":pk": s(dead_letter_partition(tenant_id, consumer_id)),
                    ":after": n(max(after, _DEAD_COUNT_POSITION)),
                },
                ConsistentRead=True,
                Limit=limit,
            )
        rows = [self._dead_row(item) for item in response.get("Items", [])]
        return rows, "LastEvaluatedKey" in response

    def dead_letters_at(
        self, tenant_id: str, consumer_id: str, positions: Sequence[int]
    ) -> list[DeadLetterRow]:
        dead = dead_letter_partition(tenant_id, consumer_id)
        return [self._dead_row(item) for item in self._batch_get(dead, positions)]

    def _dead_row(self, item: Item) -> DeadLetterRow:
        entry = dict(item)
        entry["expires_at"] = item.get("event_expires_at", n(0))
        return DeadLetterRow(
            item=in_flight(entry),
            reason=item.get("reason", {}).get("S", ""),
            dead_at=float(item.get("dead_at", {}).get("N", "0")),
            event=decode_document(item),
        )

    def unbury(
        self, tenant_id: str, consumer_id: str, moves: Sequence[tuple[DeadLetterRow, InFlight | None]]
    ) -> int:
        """Each dead letter back in flight (`InFlight`: a redrive) or gone (None: a discard). Returns how
        many moved; one that another request moved first is skipped."""
        partition = consumer_partition(tenant_id, consumer_id)
        dead = dead_letter_partition(tenant_id, consumer_id)
        moved = 0
        for row, back in moves:
            actions: list[Any] = [
                {
                    "Delete": {
                        "TableName": self._events_table,
                        "Key": {"pk": s(dead), "sk": n(row.item.position)},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                self._count_dead(dead, -1),
            ]
            if back is not None:
                actions.append(
                    {
                        "Put": {
                            "TableName": self._events_table,
                            "Item": in_flight_item(partition, back),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
            moved += self._transact(actions) is None
        return moved

    # --- the log's documents ----------------------------------------------------------------------------

    def events_at(self, tenant_id: str, positions: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The events at these tenant-log positions (BatchGetItem, consistent); expired ones are absent."""
        now = self._clock()
        found: dict[int, dict[str, Any]] = {}
        for item in self._batch_get(tenant_log(tenant_id), positions):
            if text(item, "kind") in (None, "event") and num(item, "expires_at") > now:
                document = decode_document(item)
                document["id"] = item["id"]["S"]
                found[num(item, "sk")] = document
        return found
