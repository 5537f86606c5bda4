"""A consumer's state: its head and in-flight events in one partition of the events table, its dead
letters in another, its record and name in the control table (docs/architecture.md, "Consumers").

Every move is conditional: the head moves only from the version that was read, so two receives never
take the same events from the log; an in-flight event is leased, acked, nacked or extended only at the
`lease_seq` its ack id names, so a lease is exclusive and a stale ack changes nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.errors import StorageUnavailable
from pullbridge.storage.attributes import Item, decode_document, encode_document, n, num, s, text
from pullbridge.storage.client import error_code, storage_error, storage_errors
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import (
    CONSUMER_NAME_SK,
    CONSUMER_SK,
    HEAD_POSITION,
    consumer_name_pk,
    consumer_partition,
    consumer_pk,
    dead_letter_partition,
    tenant_log,
)
from pullbridge.storage.model import ConsumerHead, ConsumerState, DeadLetterRow, InFlight

Settled = Literal["done", "expired", "gone"]
"""What became of one ack id: settled; its lease had run out (or it was nacked) first; or nothing holds it
(acked already, dead-lettered, or dropped by a seek)."""

MAX_TRANSACTION_ITEMS = 100
MAX_CONFLICT_RETRIES = 4
T = TypeVar("T")
_DEAD_COUNT_POSITION = 0


def _ms(seconds: float) -> float:
    """Times to the millisecond, rounded down: a nack "due now" must not become due a moment later."""
    return math.floor(seconds * 1000) / 1000


def _in_flight_item(partition: str, item: InFlight) -> Item:
    entry: Item = {
        "pk": s(partition),
        "sk": n(item.position),
        "spos": n(item.scope_position),
        "id": s(item.event_id),
        "state": s(item.state),
        "due": n(_ms(item.due_at)),
        "dc": n(item.delivery_count),
        "seq": n(item.lease_seq),
        "expires_at": n(item.expires_at),
        "at": n(round(item.received_at, 3)),
    }
    if item.record_key is not None:
        entry["rk"] = s(item.record_key)
    return entry


def _in_flight(item: Item) -> InFlight:
    return InFlight(
        position=num(item, "sk"),
        scope_position=num(item, "spos"),
        event_id=item["id"]["S"],
        record_key=text(item, "rk"),
        state=item["state"]["S"],
        due_at=float(item["due"]["N"]),
        delivery_count=num(item, "dc"),
        lease_seq=num(item, "seq"),
        expires_at=num(item, "expires_at"),
        received_at=float(item.get("at", {}).get("N", "0")),
    )


def _head(item: Item) -> ConsumerHead:
    return ConsumerHead(
        position=num(item, "pos"),
        version=num(item, "ver"),
        counted_to=num(item, "counted"),
        pending=num(item, "pending"),
    )


def _head_item(partition: str, head: ConsumerHead) -> Item:
    return {
        "pk": s(partition),
        "sk": n(HEAD_POSITION),
        "pos": n(head.position),
        "ver": n(head.version),
        "counted": n(head.counted_to),
        "pending": n(head.pending),
    }


def _control_item(pk: str, sk: str, document: Mapping[str, Any], index: tuple[str, str] | None) -> Item:
    item: Item = {"pk": s(pk), "sk": s(sk), "doc": s(json.dumps(document, separators=(",", ":")))}
    if index is not None:
        item["gsi1pk"], item["gsi1sk"] = s(index[0]), s(index[1])
    if "version" in document:
        item["version"] = n(document["version"])
    return item


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ConsumerStore(StoreCore):
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
                    "Item": _control_item(
                        consumer_name_pk(tenant_id, name), CONSUMER_NAME_SK, {"id": consumer_id}, None
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._control_table,
                    "Item": _control_item(consumer_pk(consumer_id), CONSUMER_SK, document, index),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._events_table,
                    "Item": _head_item(consumer_partition(tenant_id, consumer_id), head),
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
                    Item=_control_item(consumer_pk(consumer_id), CONSUMER_SK, document, index),
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
        in_flight = [_in_flight(item) for item in items[1:] if num(item, "expires_at") > now]
        return ConsumerState(_head(items[0]), in_flight)

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
        for key in (partition, dead_letter_partition(tenant_id, consumer_id)):
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
                    "Item": _in_flight_item(partition, claim),
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
        for chunk in _chunks(rest, MAX_TRANSACTION_ITEMS):
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
                    "Item": _in_flight_item(partition, after),
                    "ConditionExpression": "seq = :seq",
                    "ExpressionAttributeValues": {":seq": n(before.lease_seq)},
                }
            }

        landed: list[InFlight] = []
        for chunk in _chunks(changes, MAX_TRANSACTION_ITEMS):
            landed += [after for _, after in self._transact_each(chunk, lambda change: action(*change))]
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
        """Ack (delete) or change (`after[position]`: a nack or an extension) the events held at
        `(position, lease_seq)`, each only while that lease is still running at `now`."""
        partition = consumer_partition(tenant_id, consumer_id)
        changes = after or {}
        condition = "seq = :seq AND #state = :leased AND due > :now"

        def action(entry: tuple[int, int]) -> dict[str, Any]:
            position, seq = entry
            values = {":seq": n(seq), ":leased": s("leased"), ":now": n(_ms(now))}
            names = {"#state": "state"}
            if position in changes:
                return {
                    "Put": {
                        "TableName": self._events_table,
                        "Item": _in_flight_item(partition, changes[position]),
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": values,
                        "ExpressionAttributeNames": names,
                    }
                }
            return {
                "Delete": {
                    "TableName": self._events_table,
                    "Key": {"pk": s(partition), "sk": n(position)},
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                    "ExpressionAttributeNames": names,
                }
            }

        outcome: dict[int, Settled] = {}
        for chunk in _chunks(held, MAX_TRANSACTION_ITEMS):
            done = {entry[0] for entry in self._transact_each(chunk, action)}
            refused = [entry for entry in chunk if entry[0] not in done]
            present = self._in_flight_at(partition, [position for position, _ in refused])
            outcome.update(dict.fromkeys(done, "done"))
            outcome.update(
                {position: "expired" if position in present else "gone" for position, _ in refused}
            )
        return outcome

    # --- dead letters ---------------------------------------------------------------------------------

    def bury(
        self,
        tenant_id: str,
        consumer_id: str,
        rows: Sequence[DeadLetterRow],
        *,
        leased_only_at: float | None = None,
    ) -> list[DeadLetterRow]:
        """Move in-flight events to the dead letters, each only if still at its `lease_seq` (and, for a
        term, still leased at `leased_only_at`). Returns the rows that moved."""
        partition = consumer_partition(tenant_id, consumer_id)
        dead = dead_letter_partition(tenant_id, consumer_id)
        buried: list[DeadLetterRow] = []
        for row in rows:  # three items each, one transaction each: a term or a max-deliveries is rare
            condition = "seq = :seq"
            values: dict[str, Any] = {":seq": n(row.item.lease_seq)}
            names: dict[str, str] = {}
            if leased_only_at is not None:
                condition += " AND #state = :leased AND due > :now"
                values |= {":leased": s("leased"), ":now": n(_ms(leased_only_at))}
                names["#state"] = "state"
            delete: dict[str, Any] = {
                "TableName": self._events_table,
                "Key": {"pk": s(partition), "sk": n(row.item.position)},
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
            if names:
                delete["ExpressionAttributeNames"] = names
            actions = [
                {"Delete": delete},
                {"Put": {"TableName": self._events_table, "Item": self._dead_item(dead, row)}},
                self._count_dead(dead, 1),
            ]
            if self._transact(actions) is None:
                buried.append(row)
        return buried

    def _dead_item(self, dead: str, row: DeadLetterRow) -> Item:
        attribute, value = encode_document(row.event)
        item = _in_flight_item(dead, row.item)
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
            item=_in_flight(entry),
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
                            "Item": _in_flight_item(partition, back),
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

    # --- plumbing ---------------------------------------------------------------------------------------

    def _in_flight_at(self, partition: str, positions: Sequence[int]) -> set[int]:
        return {num(item, "sk") for item in self._batch_get(partition, positions)}

    def _batch_get(self, partition: str, positions: Sequence[int]) -> list[Item]:
        found: list[Item] = []
        for chunk in _chunks(sorted(set(positions)), 100):
            keys: list[Any] = [{"pk": s(partition), "sk": n(position)} for position in chunk]
            while keys:
                with storage_errors():
                    response = self._client.batch_get_item(
                        RequestItems={self._events_table: {"Keys": keys, "ConsistentRead": True}}
                    )
                found += response.get("Responses", {}).get(self._events_table, [])
                unprocessed: Any = response.get("UnprocessedKeys", {}).get(self._events_table)
                keys = list(unprocessed["Keys"]) if unprocessed else []
        return found

    def _delete_partition(self, partition: str) -> None:
        request: dict[str, Any] = {
            "TableName": self._events_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(partition)},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        while True:
            with storage_errors():
                response = self._client.query(**request)
            for chunk in _chunks(response.get("Items", []), 25):
                pending: list[Any] = [
                    {"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}} for item in chunk
                ]
                while pending:
                    with storage_errors():
                        answer = self._client.batch_write_item(RequestItems={self._events_table: pending})
                    pending = list(answer.get("UnprocessedItems", {}).get(self._events_table, []))
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _transact_each(self, entries: Sequence[T], action: Callable[[T], Any]) -> list[T]:
        """One transaction for all; when conditions refuse some, the others again without them (the
        cancellation says which refused). Returns the entries whose action landed."""
        remaining = list(entries)
        conflicts = 0
        while remaining:
            refused = self._transact([action(entry) for entry in remaining])
            if refused is None:
                return remaining
            if not refused:  # another transaction held one of the items: nothing landed, try again
                conflicts += 1
                if conflicts > MAX_CONFLICT_RETRIES:
                    raise StorageUnavailable(
                        "storage contended; retry later", data={"code": "TransactionConflict"}
                    )
                time.sleep(0.005 * 2**conflicts)
                continue
            remaining = [entry for index, entry in enumerate(remaining) if index not in refused]
        return []

    def _transact(self, actions: Sequence[Any], *, raise_on_cancel: bool = False) -> set[int] | None:
        """None when the transaction landed. Else the indexes of the actions whose condition failed: empty
        when it was cancelled for another reason (a conflicting transaction), and nothing landed."""
        try:
            self._client.transact_write_items(TransactItems=list(actions))
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException" or raise_on_cancel:
                raise storage_error(exc) from exc
            codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if any(
                code not in (None, "None", "ConditionalCheckFailed", "TransactionConflict") for code in codes
            ):
                raise storage_error(exc) from exc  # throttled, or a validation error: not ours to retry
            return {index for index, code in enumerate(codes) if code == "ConditionalCheckFailed"}
        except BotoCoreError as exc:
            raise storage_error(exc) from exc
        return None
