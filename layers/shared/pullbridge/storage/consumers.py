"""A consumer's state: its head and in-flight events in one partition of the events table, its dead
letters in another, its record and name in the control table (docs/architecture.md, "Consumers").

Every move is conditional: the head moves only from the version that was read, so two receives never
take the same events from the log; an in-flight event is leased, acked, nacked or extended only at the
`lease_seq` its ack id names, so a lease is exclusive and a stale ack changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from botocore.exceptions import ClientError

from pullbridge.storage.attributes import Item, decode_document, n, num, s, text
from pullbridge.storage.client import error_code, storage_errors
from pullbridge.storage.consumer_items import control_item, head_item, head_of, in_flight, in_flight_item, ms
from pullbridge.storage.dead_letters import DeadLetters
from pullbridge.storage.keys import (
    CONSUMER_NAME_SK,
    CONSUMER_SK,
    HEAD_POSITION,
    consumer_name_pk,
    consumer_partition,
    consumer_pk,
    dead_letter_partition,
    receipt_partition,
    tenant_log,
)
from pullbridge.storage.model import ConsumerHead, ConsumerState, InFlight
from pullbridge.storage.transactions import MAX_TRANSACTION_ITEMS, chunks

RECEIPT_SECONDS = 86_400
Settled = Literal["done", "expired", "gone"]
"""What became of one ack id: settled; its lease had run out (or it was nacked) first; or nothing holds it
(acked already, dead-lettered, or dropped by a seek)."""


class ConsumerStore(DeadLetters):
    # --- the consumer's record, name and head ---------------------------------------------------------

    def create_consumer(
        self,
        tenant_id: str,
        consumer_id: str,
        name: str,
        document: Mapping[str, Any],
        index: tuple[str, str],
        head: ConsumerHead,
    ) -> bool:
        """The record, its name's claim and its head, together. False when the name is taken."""
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self._control_table,
                    "Item": control_item(
                        consumer_name_pk(tenant_id, name), CONSUMER_NAME_SK, {"id": consumer_id}, None
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._control_table,
                    "Item": control_item(consumer_pk(consumer_id), CONSUMER_SK, document, index),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._events_table,
                    "Item": head_item(consumer_partition(tenant_id, consumer_id), head),
                }
            },
        ]
        return self._transact(actions) is None

    def consumer_id_by_name(self, tenant_id: str, name: str) -> str | None:
        with storage_errors():
            item = self._client.get_item(
                TableName=self._control_table,
                Key={"pk": s(consumer_name_pk(tenant_id, name)), "sk": s(CONSUMER_NAME_SK)},
                ConsistentRead=True,
            ).get("Item")
        return str(json.loads(item["doc"]["S"])["id"]) if item else None

    def update_consumer_record(
        self, consumer_id: str, document: Mapping[str, Any], index: tuple[str, str], expected_version: int
    ) -> bool:
        with storage_errors():
            try:
                self._client.put_item(
                    TableName=self._control_table,
                    Item=control_item(consumer_pk(consumer_id), CONSUMER_SK, document, index),
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": n(expected_version)},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def read_consumer_state(
        self, tenant_id: str, consumer_id: str, *, consistent: bool = True
    ) -> ConsumerState | None:
        """The head and every in-flight event: one query, bounded by `max_ack_pending`."""
        partition = consumer_partition(tenant_id, consumer_id)
        items: list[Item] = []
        request: dict[str, Any] = {
            "TableName": self._events_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(partition)},
            "ConsistentRead": consistent,
        }
        while True:
            with storage_errors():
                response = self._client.query(**request)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if not items or num(items[0], "sk") != HEAD_POSITION:
            return None
        now = self._clock()
        held = [in_flight(item) for item in items[1:] if num(item, "expires_at") > now]
        return ConsumerState(head_of(items[0]), held)

    def delete_consumer(self, tenant_id: str, consumer_id: str, name: str) -> None:
        """The record, the name and the head first (so nothing can use it), then what it held."""
        partition = consumer_partition(tenant_id, consumer_id)
        self._transact(
            [
                {
                    "Delete": {
                        "TableName": self._control_table,
                        "Key": {"pk": s(consumer_pk(consumer_id)), "sk": s(CONSUMER_SK)},
                    }
                },
                {
                    "Delete": {
                        "TableName": self._control_table,
                        "Key": {"pk": s(consumer_name_pk(tenant_id, name)), "sk": s(CONSUMER_NAME_SK)},
                    }
                },
                {
                    "Delete": {
                        "TableName": self._events_table,
                        "Key": {"pk": s(partition), "sk": n(HEAD_POSITION)},
                    }
                },
            ],
            raise_on_cancel=True,
        )
        for key in (
            partition,
            dead_letter_partition(tenant_id, consumer_id),
            receipt_partition(tenant_id, consumer_id),
        ):
            self._delete_partition(key)

    # --- taking events from the log -------------------------------------------------------------------

    def take_from_log(
        self,
        tenant_id: str,
        consumer_id: str,
        expected: ConsumerHead,
        head: ConsumerHead,
        claims: Sequence[InFlight],
    ) -> bool:
        """Move the head from `expected` to `head` and hold `claims` in flight, in one transaction (at most
        `MAX_TRANSACTION_ITEMS - 1` claims). False when another receive moved the head first."""
        if len(claims) >= MAX_TRANSACTION_ITEMS:
            raise ValueError("too many claims for one transaction")
        partition = consumer_partition(tenant_id, consumer_id)
        actions: list[Any] = [self._consumer_head_move(partition, expected, head)]
        actions += [
            {
                "Put": {
                    "TableName": self._events_table,
                    "Item": in_flight_item(partition, claim),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for claim in claims
        ]
        return self._transact(actions) is None

    def move_head(
        self,
        tenant_id: str,
        consumer_id: str,
        expected: ConsumerHead,
        head: ConsumerHead,
        drop: Sequence[InFlight] = (),
    ) -> bool:
        """Move the head (a seek, or a count of pending events), and drop in-flight events with it."""
        partition = consumer_partition(tenant_id, consumer_id)
        first, rest = drop[: MAX_TRANSACTION_ITEMS - 1], drop[MAX_TRANSACTION_ITEMS - 1 :]
        actions: list[Any] = [self._consumer_head_move(partition, expected, head)]
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

    # --- leases ---------------------------------------------------------------------------------------

    def relet(
        self, tenant_id: str, consumer_id: str, changes: Sequence[tuple[InFlight, InFlight]]
    ) -> list[InFlight]:
        """Replace in-flight events (`before` -> `after`), each only if still at `before.lease_seq`. Returns
        the `after`s that landed: a lease is never given twice."""
        partition = consumer_partition(tenant_id, consumer_id)

        def action(before: InFlight, after: InFlight) -> dict[str, Any]:
            return {
                "Put": {
                    "TableName": self._events_table,
                    "Item": in_flight_item(partition, after),
                    "ConditionExpression": "seq = :seq",
                    "ExpressionAttributeValues": {":seq": n(before.lease_seq)},
                }
            }

        landed: list[InFlight] = []
        for chunk in chunks(changes, MAX_TRANSACTION_ITEMS):
            landed += [after for _, after in self._transact_each(chunk, lambda change: [action(*change)])]
        return landed

    def settle(
        self,
        tenant_id: str,
        consumer_id: str,
        held: Sequence[tuple[int, int]],
        *,
        now: float,
        after: Mapping[int, InFlight] | None = None,
    ) -> dict[int, Settled]:
        """Ack or change (`after[position]`: a nack or an extension) the events held at
        `(position, lease_seq)`, each only while that lease is still running at `now`, one lease per
        position. An ack deletes the event and leaves a receipt of its lease for a day, so a second ack
        of it is told "done", and an ack of an earlier lease, whose event another worker acked since or
        which became a dead letter, is told it expired."""
        partition = consumer_partition(tenant_id, consumer_id)
        receipts = receipt_partition(tenant_id, consumer_id)
        changes = after or {}
        condition = "seq = :seq AND #state = :leased AND due > :now"

        def actions(entry: tuple[int, int]) -> list[Any]:
            position, seq = entry
            guard = {
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {":seq": n(seq), ":leased": s("leased"), ":now": n(ms(now))},
                "ExpressionAttributeNames": {"#state": "state"},
            }
            table = {"TableName": self._events_table}
            if position in changes:
                return [{"Put": table | {"Item": in_flight_item(partition, changes[position])} | guard}]
            receipt = {
                "pk": s(receipts),
                "sk": n(position),
                "seq": n(seq),
                "expires_at": n(int(now) + RECEIPT_SECONDS),
            }
            return [
                {"Delete": table | {"Key": {"pk": s(partition), "sk": n(position)}} | guard},
                {"Put": table | {"Item": receipt}},
            ]

        outcome: dict[int, Settled] = {}
        per_transaction = MAX_TRANSACTION_ITEMS // 2
        for chunk in chunks(held, per_transaction):
            done = {entry[0] for entry in self._transact_each(chunk, actions)}
            refused = [entry for entry in chunk if entry[0] not in done]
            present = self._in_flight_at(partition, [position for position, _ in refused])
            receipted = self._receipts_at(
                receipts, [position for position, _ in refused if position not in present]
            )
            outcome.update(dict.fromkeys(done, "done"))
            for position, seq in refused:
                if position in present:
                    outcome[position] = "expired"
                else:
                    outcome[position] = (
                        "done" if receipted.get(position) == seq and position not in changes else "gone"
                    )
        return outcome

    def _receipts_at(self, receipts: str, positions: Sequence[int]) -> dict[int, int]:
        return {num(item, "sk"): num(item, "seq") for item in self._batch_get(receipts, positions)}

    # --- dead letters ---------------------------------------------------------------------------------

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

    # --- plumbing ---------------------------------------------------------------------------------------

    def _in_flight_at(self, partition: str, positions: Sequence[int]) -> set[int]:
        return {num(item, "sk") for item in self._batch_get(partition, positions)}
