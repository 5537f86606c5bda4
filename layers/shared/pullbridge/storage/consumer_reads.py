"""Reading a consumer's state from its partition of the events table: whole (`read_consumer_state`), or
as a receive needs it (`read_consumer_view`: filtered to what it may act on when many events are in
flight); and just the in-flight events of some records, or at some positions. Every read but the probe's
is consistent: a receive decides on it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from pullbridge.storage.attributes import Item, n, num, s
from pullbridge.storage.client import storage_errors
from pullbridge.storage.consumer_items import decided_of, head_of, in_flight_entries, ms
from pullbridge.storage.keys import HEAD_POSITION, consumer_partition, group_sort_key
from pullbridge.storage.model import ConsumerHead, ConsumerState, InFlight
from pullbridge.storage.transactions import Transactions

MAX_VIEW_KEYS = 400
"""Past this many record keys (or `MAX_VIEW_KEY_BYTES` of them), a receive reads the complete state: a
filter expression is at most 4 KB, and an `IN` takes 100 operands."""
MAX_VIEW_KEY_BYTES = 64_000


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


def view_keys_fit(record_keys: Collection[str]) -> bool:
    """Whether a filtered view can name these records (else the complete state is read)."""
    return len(record_keys) <= MAX_VIEW_KEYS and sum(len(key) for key in record_keys) <= MAX_VIEW_KEY_BYTES


class ConsumerReads(Transactions):
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
        head, rest = _head_and_rest(items)
        if head is None:
            return None
        now = self._clock()
        held = [entry for item in rest for entry in in_flight_entries(item) if entry.expires_at > now]
        return ConsumerState(head_of(head), sorted(held, key=_by_position))

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
        head, rest = _head_and_rest(items)
        if head is None:
            return None
        held = [entry for item in rest for entry in in_flight_entries(item) if entry.expires_at > now]
        held.sort(key=_by_position)
        # The items the filter left out are events' own and within retention (it lets through every lease
        # group, and every item past retention, which TTL deletes late): each is one event in flight.
        count = scanned - 1 - len(rest) + len(held)
        complete = None if record_keys is None else frozenset(record_keys)
        return ConsumerView(head_of(head), held, count, complete, decided_of(head))

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
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": " OR ".join(
                ["attribute_exists(mem)"] + [f"rk IN ({', '.join(chunk)})" for chunk in names]
            ),
            "ExpressionAttributeValues": {":pk": s(partition)} | values,
            "ConsistentRead": True,
        }
        wanted = set(record_keys)
        found: list[InFlight] = []
        while True:
            with storage_errors():
                response = self._client.query(**request)
            found += [
                entry
                for item in response.get("Items", [])
                for entry in in_flight_entries(item)
                if entry.expires_at > now and entry.record_key in wanted
            ]
            if "LastEvaluatedKey" not in response:
                return sorted(found, key=_by_position)
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def in_flight_at(
        self, tenant_id: str, consumer_id: str, positions: Sequence[int], groups: Collection[int] = ()
    ) -> list[InFlight]:
        """The in-flight events at these positions, in their own items or in the lease `groups` named (one
        consistent `BatchGetItem`), oldest first."""
        now = self._clock()
        partition = consumer_partition(tenant_id, consumer_id)
        keys = [*positions, *(group_sort_key(group) for group in groups)]
        wanted = set(positions)
        found = {
            entry.position: entry
            for item in self._batch_get(partition, keys)
            if num(item, "sk") != HEAD_POSITION
            for entry in in_flight_entries(item)
            if entry.position in wanted and entry.expires_at > now
        }
        return [found[position] for position in sorted(found)]


def _head_and_rest(items: Sequence[Item]) -> tuple[Item | None, list[Item]]:
    """The head among a partition's items (lease groups sort before it), and the others."""
    head = next((item for item in items if num(item, "sk") == HEAD_POSITION), None)
    return head, [item for item in items if item is not head]


def _by_position(item: InFlight) -> int:
    return item.position


def _key_list(record_keys: Collection[str]) -> tuple[list[list[str]], dict[str, Any]]:
    """Placeholders for the record keys, 100 to an `IN` (DynamoDB's limit), and their values."""
    keys = sorted(set(record_keys))
    names = [f":k{index}" for index in range(len(keys))]
    values = {name: s(key) for name, key in zip(names, keys, strict=True)}
    return [names[start : start + 100] for start in range(0, len(names), 100)], values


def _view_filter(
    now: float, horizon: float, after: int, record_keys: Collection[str]
) -> tuple[str, dict[str, Any]]:
    """The filter of a receive's view: the head (it alone has `pos`), every lease group (its events are
    told apart once read), what is due by the horizon, what is past retention (to be left out of the
    count), what lies past `after`, and the named records."""
    names, values = _key_list(record_keys)
    parts = ["attribute_exists(pos)", "attribute_exists(mem)", "due <= :horizon", "expires_at <= :now"]
    parts += ["spos > :after"]
    parts += [f"rk IN ({', '.join(chunk)})" for chunk in names]
    values |= {":horizon": n(ms(horizon)), ":now": n(now), ":after": n(after)}
    return " OR ".join(parts), values
