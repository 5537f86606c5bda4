"""Transactions and batches over the events table, as the consumers' state uses them: chunks of at most
100 actions, the actions a cancellation refused, and batch reads and deletes that finish their
unprocessed keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.errors import StorageUnavailable
from pullbridge.storage.attributes import Item, n, s
from pullbridge.storage.client import error_code, storage_error, storage_errors
from pullbridge.storage.consumer_items import group_members, in_flight_item, is_group
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import group_sort_key

MAX_TRANSACTION_ITEMS = 100
MAX_CONFLICT_RETRIES = 4
T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Transactions(StoreCore):
    def _batch_get(self, partition: str, positions: Sequence[int]) -> list[Item]:
        """The events table's items at these positions of one partition (consistent reads)."""
        keys = [{"pk": s(partition), "sk": n(position)} for position in sorted(set(positions))]
        return self._batch_read(self._events_table, keys, consistent=True)

    def _batch_read(
        self, table: str, keys: Sequence[Any], *, consistent: bool = False, projection: str | None = None
    ) -> list[Item]:
        """Items by key, 100 to a `BatchGetItem`, until no key is left unprocessed: the one batch read of
        the storage package."""
        found: list[Item] = []
        for chunk in chunks(keys, 100):
            request: dict[str, Any] = {"Keys": list(chunk), "ConsistentRead": consistent}
            if projection is not None:
                request["ProjectionExpression"] = projection
            pending: dict[str, Any] = {table: request}
            while pending:
                with storage_errors():
                    response = self._client.batch_get_item(RequestItems=pending)
                found += response.get("Responses", {}).get(table, [])
                pending = response.get("UnprocessedKeys") or {}
        return found

    def _split_groups(self, partition: str, groups: Collection[int]) -> None:
        """Give each event of these lease groups an item of its own, with the same lease, in one
        transaction per group: a change to some of a group's events then acts on theirs alone, under the
        conditions every event's item has. A group another request acked or split first is left as it is."""
        if not groups:
            return
        for item in self._batch_get(partition, [group_sort_key(group) for group in groups]):
            if not is_group(item):
                continue
            actions: list[Any] = [
                {
                    "Delete": {
                        "TableName": self._events_table,
                        "Key": {"pk": item["pk"], "sk": item["sk"]},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            ]
            actions += [
                {
                    "Put": {
                        "TableName": self._events_table,
                        "Item": in_flight_item(partition, member),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for member in group_members(item)
            ]
            for _ in range(MAX_CONFLICT_RETRIES + 1):
                refused = self._transact(actions)
                if refused is None or refused:
                    break  # split, or by another request first (its delete's condition refused)
                time.sleep(0.005)  # a conflicting transaction: nothing landed, try again

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
            for chunk in chunks(response.get("Items", []), 25):
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

    def _transact_each(
        self,
        entries: Sequence[T],
        actions_of: Callable[[T], list[Any]],
        shared: Callable[[Sequence[T]], list[Any]] | None = None,
        *,
        before_retry: Callable[[], None] | None = None,
    ) -> list[T]:
        """One transaction for all; when conditions refuse some, the others again without them (the
        cancellation says which action refused, so which entry). Returns the entries whose actions landed.

        `shared`: actions written with whichever entries land (their receipt, say), built again from the
        remaining entries at each try; they must carry no condition. `before_retry`: called before each
        try after the first (the actions are built again after it)."""
        remaining = list(entries)
        conflicts = 0
        tried = False
        while remaining:
            if tried and before_retry is not None:
                before_retry()
            tried = True
            actions: list[Any] = []
            owner: list[int] = []
            for index, entry in enumerate(remaining):
                for action in actions_of(entry):
                    actions.append(action)
                    owner.append(index)
            if shared is not None:
                actions += shared(remaining)
            refused_actions = self._transact(actions)
            if refused_actions is None:
                return remaining
            refused = {owner[index] for index in refused_actions if index < len(owner)}
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

    def _transact(
        self,
        actions: Sequence[Any],
        *,
        raise_on_cancel: bool = False,
        old_items: dict[int, Item] | None = None,
    ) -> set[int] | None:
        """None when the transaction landed. Else the indexes of the actions whose condition failed: empty
        when it was cancelled for another reason (a conflicting transaction), and nothing landed.

        `old_items`: filled, on a cancellation, with the items the refused actions found (action index ->
        item), for the actions that asked for them (`ReturnValuesOnConditionCheckFailure: ALL_OLD`)."""
        try:
            self._client.transact_write_items(TransactItems=list(actions))
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException" or raise_on_cancel:
                raise storage_error(exc) from exc
            reasons = exc.response.get("CancellationReasons", [])
            codes = [reason.get("Code") for reason in reasons]
            if old_items is not None:
                old_items.update(
                    {index: dict(reason["Item"]) for index, reason in enumerate(reasons) if "Item" in reason}
                )
            if any(
                code not in (None, "None", "ConditionalCheckFailed", "TransactionConflict") for code in codes
            ):
                raise storage_error(exc) from exc  # throttled, or a validation error: not ours to retry
            return {index for index, code in enumerate(codes) if code == "ConditionalCheckFailed"}
        except BotoCoreError as exc:
            raise storage_error(exc) from exc
        return None
