"""A consumer's state: its head and in-flight events in one partition of the events table, its dead
letters in another, its record and name in the control table (docs/architecture.md, "Consumers").

Every move is conditional: the head moves only from the version that was read, so two receives never
take the same events from the log; an in-flight event is leased, acked, nacked or extended only at the
`lease_seq` its ack id names, so a lease is exclusive and a stale ack changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from pullbridge.storage.attributes import Item, decode_document, n, num, s, text
from pullbridge.storage.client import error_code, storage_errors
from pullbridge.storage.consumer_items import (
    LEASE_EPOCH_BITS,
    control_item,
    decided_of,
    head_item,
    head_of,
    in_flight,
    in_flight_item,
    ms,
)
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
MAX_VIEW_KEYS = 400
"""Past this many record keys (or `MAX_VIEW_KEY_BYTES` of them), a receive reads the complete state: a
filter expression is at most 4 KB, and an `IN` takes 100 operands."""
MAX_VIEW_KEY_BYTES = 64_000
Settled = Literal["done", "expired", "gone"]
"""What became of one ack id: settled; its lease had run out (or it was nacked) first; or nothing holds it
(acked already, dead-lettered, or dropped by a seek)."""


@dataclass(frozen=True)
class ConsumerView:
    """A receive's read of a consumer's state (`read_consumer_view`)."""

    head: ConsumerHead
    in_flight: list[InFlight]
    """The in-flight events read: all of them, or those the filter let through."""
    count: int
    """How many events are in flight, exactly, read or not (what `max_ack_pending` bounds)."""
    complete_records: frozenset[str] | None
    """The records all of whose in-flight events were read; None when every in-flight event was."""
    decided: int
    """The head's `fin`: every stretch handed out that ends at or before it is done with (`Stretch`)."""

    def complete_for(self, record_key: str) -> bool:
        return self.complete_records is None or record_key in self.complete_records

    def with_records(self, record_keys: Collection[str], items: Sequence[InFlight]) -> ConsumerView:
        """This view with every in-flight event of `record_keys` (`items`) read as well."""
        known = {item.position for item in self.in_flight}
        merged = self.in_flight + [item for item in items if item.position not in known]
        merged.sort(key=lambda item: item.position)
        complete = None if self.complete_records is None else self.complete_records | set(record_keys)
        return ConsumerView(self.head, merged, self.count, complete, self.decided)


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


def view_keys_fit(record_keys: Collection[str]) -> bool:
    """Whether a filtered view can name these records (else the complete state is read)."""
    return len(record_keys) <= MAX_VIEW_KEYS and sum(len(key) for key in record_keys) <= MAX_VIEW_KEY_BYTES


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

    def read_consumer_view(
        self,
        tenant_id: str,
        consumer_id: str,
        *,
        horizon: float,
        after: int,
        record_keys: Collection[str] | None,
    ) -> ConsumerView | None:
        """What a receive needs of the state, in one consistent query of the partition: the head, how many
        events are in flight, and of those only the ones it may act on: due by `horizon`, past the
        position `after` (in flight already when the log is read past it), or of the records
        `record_keys` (which new events of theirs must wait for). The query reads every item as the
        complete read does; the filter only leaves the rest out of the answer. `record_keys` None: the
        complete state, every in-flight event."""
        partition = consumer_partition(tenant_id, consumer_id)
        now = self._clock()
        request: dict[str, Any] = {
            "TableName": self._events_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(partition)},
            "ConsistentRead": True,
        }
        if record_keys is not None:
            expression, values = _view_filter(now, horizon, after, record_keys)
            request["FilterExpression"] = expression
            request["ExpressionAttributeValues"] |= values
        items: list[Item] = []
        scanned = 0
        while True:
            with storage_errors():
                response = self._client.query(**request)
            items.extend(response.get("Items", []))
            scanned += int(response.get("ScannedCount", len(response.get("Items", []))))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if not items or num(items[0], "sk") != HEAD_POSITION:
            return None
        returned = [in_flight(item) for item in items[1:]]
        held = [item for item in returned if item.expires_at > now]
        # Every item but the head counts, less those past retention (TTL deletes them late), all of which
        # the filter lets through to be told apart.
        count = scanned - 1 - (len(returned) - len(held))
        complete = None if record_keys is None else frozenset(record_keys)
        return ConsumerView(head_of(items[0]), held, count, complete, decided_of(items[0]))

    def in_flight_of_records(
        self, tenant_id: str, consumer_id: str, record_keys: Collection[str]
    ) -> list[InFlight]:
        """Every in-flight event of these records (a consistent query of the partition, filtered)."""
        if not record_keys:
            return []
        partition = consumer_partition(tenant_id, consumer_id)
        now = self._clock()
        names, values = _key_list(record_keys)
        request: dict[str, Any] = {
            "TableName": self._events_table,
            "KeyConditionExpression": "pk = :pk AND sk > :head",
            "FilterExpression": " OR ".join(f"rk IN ({', '.join(chunk)})" for chunk in names),
            "ExpressionAttributeValues": {":pk": s(partition), ":head": n(HEAD_POSITION)} | values,
            "ConsistentRead": True,
        }
        found: list[InFlight] = []
        while True:
            with storage_errors():
                response = self._client.query(**request)
            found += [item for item in map(in_flight, response.get("Items", [])) if item.expires_at > now]
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def in_flight_at(self, tenant_id: str, consumer_id: str, positions: Sequence[int]) -> list[InFlight]:
        """The in-flight events at these positions (one consistent `BatchGetItem`), oldest first."""
        now = self._clock()
        partition = consumer_partition(tenant_id, consumer_id)
        found = [
            in_flight(item)
            for item in self._batch_get(partition, positions)
            if num(item, "sk") != HEAD_POSITION
        ]
        return sorted((item for item in found if item.expires_at > now), key=lambda item: item.position)

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
        `MAX_TRANSACTION_ITEMS - 1` claims); `decided`: the stretches are done with up to there (`fin`).
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
        actions: list[Any] = [move]
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

    # --- leases ---------------------------------------------------------------------------------------

    def relet(
        self,
        tenant_id: str,
        consumer_id: str,
        changes: Sequence[tuple[InFlight, InFlight]],
        *,
        now: float,
    ) -> list[InFlight]:
        """Lease again in-flight events that fell due (`before` -> `after`), each only if still at
        `before.lease_seq` and still due at `now`: an extension keeps the lease's `seq` but moves its `due`,
        so the `seq` alone would let a receive that read the lease before it was extended take it from its
        holder. Returns the `after`s that landed: a lease is never given twice."""
        partition = consumer_partition(tenant_id, consumer_id)

        def action(before: InFlight, after: InFlight) -> dict[str, Any]:
            return {
                "Put": {
                    "TableName": self._events_table,
                    "Item": in_flight_item(partition, after),
                    "ConditionExpression": "seq = :seq AND due <= :now",
                    "ExpressionAttributeValues": {":seq": n(before.lease_seq), ":now": n(ms(now))},
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
        clock: Callable[[], float] | None = None,
    ) -> dict[int, Settled]:
        """Ack or change (`after[position]`: a nack or an extension) the events held at
        `(position, lease_seq)`, each only while that lease is still running at `now`, one lease per
        position. An ack deletes the event and leaves a receipt of its lease for a day, so a second ack
        of it is told "done", and an ack of an earlier lease, whose event another worker acked since or
        which became a dead letter, is told it expired.

        Receipts go one item per lease epoch (the head's version when the events were taken, `seq`'s high
        bits), a set of `position:lease` the acks add to: the events of one receive share an epoch, so an
        ack of a batch is one transaction of its deletes and one receipt, not a receipt per event.

        `clock`: the time of each try after the first. A try refused for some leases (another receive took
        them once they ran out) settles the rest only while they still run then, so that the answer holds
        at one moment: no lease answered done ran out before one answered expired with the same end."""
        partition = consumer_partition(tenant_id, consumer_id)
        receipts = receipt_partition(tenant_id, consumer_id)
        changes = after or {}
        condition = "seq = :seq AND #state = :leased AND due > :now"
        moment = [now]

        def later() -> None:
            if clock is not None:
                moment[0] = max(moment[0], clock())

        def actions(entry: tuple[int, int]) -> list[Any]:
            position, seq = entry
            guard = {
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {
                    ":seq": n(seq),
                    ":leased": s("leased"),
                    ":now": n(ms(moment[0])),
                },
                "ExpressionAttributeNames": {"#state": "state"},
            }
            table = {"TableName": self._events_table}
            if position in changes:
                return [{"Put": table | {"Item": in_flight_item(partition, changes[position])} | guard}]
            return [{"Delete": table | {"Key": {"pk": s(partition), "sk": n(position)}} | guard}]

        def receipted(entries: Sequence[tuple[int, int]]) -> list[Any]:
            by_epoch: dict[int, list[str]] = {}
            for position, seq in entries:
                if position not in changes:
                    by_epoch.setdefault(lease_epoch(seq), []).append(receipt_entry(position, seq))
            return [
                {
                    "Update": {
                        "TableName": self._events_table,
                        "Key": {"pk": s(receipts), "sk": n(epoch)},
                        "UpdateExpression": "ADD #acked :acked SET expires_at = :expires",
                        "ExpressionAttributeNames": {"#acked": "acked"},
                        "ExpressionAttributeValues": {
                            ":acked": {"SS": sorted(acked)},
                            ":expires": n(int(now) + RECEIPT_SECONDS),
                        },
                    }
                }
                for epoch, acked in sorted(by_epoch.items())
            ]

        outcome: dict[int, Settled] = {}
        for chunk in _settle_chunks(held, changes):
            done = {entry[0] for entry in self._transact_each(chunk, actions, receipted, before_retry=later)}
            refused = [entry for entry in chunk if entry[0] not in done]
            present = self._in_flight_at(partition, [position for position, _ in refused])
            acked = self._receipted(
                receipts, [entry for entry in refused if entry[0] not in present and entry[0] not in changes]
            )
            outcome.update(dict.fromkeys(done, "done"))
            for position, seq in refused:
                if position in present:
                    outcome[position] = "expired"
                else:
                    outcome[position] = "done" if (position, seq) in acked else "gone"
        return outcome

    def _receipted(self, receipts: str, entries: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of these `(position, lease_seq)` were acked: one read of their epochs' receipts."""
        if not entries:
            return set()
        found: set[str] = set()
        for item in self._batch_get(receipts, [lease_epoch(seq) for _, seq in entries]):
            found.update(item.get("acked", {}).get("SS", []))
        return {entry for entry in entries if receipt_entry(*entry) in found}

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


def lease_epoch(seq: int) -> int:
    """The epoch of a lease: the head's version when its event was taken from the log (`seq`'s high bits)."""
    return seq >> LEASE_EPOCH_BITS


def receipt_entry(position: int, seq: int) -> str:
    """A receipt's record of one acked lease, in its epoch's set: the position and the lease within it."""
    return f"{position}:{seq & ((1 << LEASE_EPOCH_BITS) - 1)}"


def _settle_chunks(
    held: Sequence[tuple[int, int]], changes: Mapping[int, InFlight]
) -> Iterator[list[tuple[int, int]]]:
    """The entries in transactions of at most 100 items: one per entry, and one receipt per lease epoch
    of the acks among them."""
    chunk: list[tuple[int, int]] = []
    epochs: set[int] = set()
    for entry in held:
        epoch = None if entry[0] in changes else lease_epoch(entry[1])
        new_epoch = epoch is not None and epoch not in epochs
        if chunk and len(chunk) + len(epochs) + 1 + new_epoch > MAX_TRANSACTION_ITEMS:
            yield chunk
            chunk, epochs = [], set()
        chunk.append(entry)
        if epoch is not None:
            epochs.add(epoch)
    if chunk:
        yield chunk


def _key_list(record_keys: Collection[str]) -> tuple[list[list[str]], dict[str, Any]]:
    """Placeholders for the record keys, 100 to an `IN` (DynamoDB's limit), and their values."""
    keys = sorted(set(record_keys))
    names = [f":k{index}" for index in range(len(keys))]
    values = {name: s(key) for name, key in zip(names, keys, strict=True)}
    return [names[start : start + 100] for start in range(0, len(names), 100)], values


def _view_filter(
    now: float, horizon: float, after: int, record_keys: Collection[str]
) -> tuple[str, dict[str, Any]]:
    """The filter of a receive's view: the head (it alone has `pos`), what is due by the horizon, what is
    past retention (to be left out of the count), what lies past `after`, and the named records."""
    names, values = _key_list(record_keys)
    parts = ["attribute_exists(pos)", "due <= :horizon", "expires_at <= :now", "spos > :after"]
    parts += [f"rk IN ({', '.join(chunk)})" for chunk in names]
    values |= {":horizon": n(ms(horizon)), ":now": n(now), ":after": n(after)}
    return " OR ".join(parts), values
