"""Control records: one JSON document per item in the control table, optionally listed per tenant
through `by_tenant` and due in `by_due`. The domain builds their keys with `storage.keys`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.storage.attributes import Item, control_document, n, plain, s
from pullbridge.storage.client import error_code, storage_error, storage_errors
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import DUE_PARTITION, HEALTH_KEY


@dataclass(frozen=True)
class ControlWrite:
    """One control record to write, as `ControlRecords.put_control` takes it."""

    pk: str
    sk: str
    document: Mapping[str, Any]
    index: tuple[str, str] | None = None
    due_at: str | None = None
    attributes: Mapping[str, Any] | None = None
    only_if_new: bool = False
    expected_version: int | None = None


class ControlRecords(StoreCore):
    def check_reachable(self) -> None:
        """One strongly consistent read of a key that never exists: `StorageUnavailable` unless
        DynamoDB answers (readiness, `GET /health?deep=true`)."""
        self.get_control(*HEALTH_KEY)

    def get_control(self, pk: str, sk: str) -> dict[str, Any] | None:
        """A control record's JSON document, or None."""
        with storage_errors():
            item = self._client.get_item(
                TableName=self._control_table, Key={"pk": s(pk), "sk": s(sk)}, ConsistentRead=True
            ).get("Item")
        return control_document(item) if item else None

    def put_control(
        self,
        pk: str,
        sk: str,
        document: Mapping[str, Any],
        *,
        index: tuple[str, str] | None = None,
        due_at: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        only_if_new: bool = False,
        expected_version: int | None = None,
    ) -> bool:
        """Write a control record. Returns False when its condition (new, or at a version) failed.

        `due_at` puts the record in the sparse `by_due` index at that time; None leaves it out.
        """
        write = ControlWrite(pk, sk, document, index, due_at, attributes, only_if_new, expected_version)
        try:
            self._client.put_item(**self._put_request(write))
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise storage_error(exc) from exc
        return True

    def put_controls(self, writes: Sequence[ControlWrite]) -> bool:
        """Write control records together, in one transaction: all of them, or (False) none, when a
        condition failed or another transaction touched one of them meanwhile."""
        actions: list[Any] = [{"Put": self._put_request(write)} for write in writes]
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) in ("TransactionCanceledException", "TransactionConflictException"):
                reasons = exc.response.get("CancellationReasons", [])
                refused = {reason.get("Code") for reason in reasons} - {"None", None}
                if refused <= {"ConditionalCheckFailed", "TransactionConflict"}:
                    return False
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise storage_error(exc) from exc
        return True

    def _put_request(self, write: ControlWrite) -> dict[str, Any]:
        item: Item = {
            "pk": s(write.pk),
            "sk": s(write.sk),
            "doc": s(json.dumps(write.document, separators=(",", ":"))),
        }
        if write.index is not None:
            item["gsi1pk"], item["gsi1sk"] = s(write.index[0]), s(write.index[1])
        if write.due_at is not None:
            item["gsi2pk"], item["gsi2sk"] = s(DUE_PARTITION), s(write.due_at)
        for name, value in (write.attributes or {}).items():
            item[name] = plain(value)
        request: dict[str, Any] = {"TableName": self._control_table, "Item": item}
        if write.only_if_new:
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        elif write.expected_version is not None:
            request["ConditionExpression"] = "#v = :v"
            request["ExpressionAttributeNames"] = {"#v": "version"}
            request["ExpressionAttributeValues"] = {":v": n(write.expected_version)}
        return request

    def query_control_index(
        self,
        partition: str,
        *,
        after: tuple[str, str, str] | None,
        limit: int,
        newest_first: bool,
        sort_between: tuple[str, str] | None = None,
        equals: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], tuple[str, str, str] | None]:
        """A page of records in the by_tenant index. `after`/the returned key: (pk, sk, gsi1sk).

        `sort_between` bounds the index's sort key; `equals` keeps records whose top-level attributes
        have those values (a filter: DynamoDB still reads the others, up to `limit`).
        """
        condition = "gsi1pk = :p"
        values: dict[str, Any] = {":p": s(partition)}
        if sort_between is not None:
            condition += " AND gsi1sk BETWEEN :low AND :high"
            values[":low"], values[":high"] = s(sort_between[0]), s(sort_between[1])
        request: dict[str, Any] = {
            "TableName": self._control_table,
            "IndexName": "by_tenant",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
            "Limit": limit,
        }
        if equals:
            names = {f"#f{i}": name for i, name in enumerate(equals)}
            request["ExpressionAttributeNames"] = names
            request["FilterExpression"] = " AND ".join(f"#f{i} = :f{i}" for i in range(len(equals)))
            values.update({f":f{i}": s(value) for i, value in enumerate(equals.values())})
        if after is not None:
            request["ExclusiveStartKey"] = {
                "pk": s(after[0]),
                "sk": s(after[1]),
                "gsi1pk": s(partition),
                "gsi1sk": s(after[2]),
            }
        with storage_errors():
            response = self._client.query(**request)
        items = response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        next_key = (last["pk"]["S"], last["sk"]["S"], last["gsi1sk"]["S"]) if last and items else None
        return [control_document(item) for item in items], next_key

    def delete_control(self, pk: str, sk: str) -> None:
        with storage_errors():
            self._client.delete_item(TableName=self._control_table, Key={"pk": s(pk), "sk": s(sk)})

    def query_due(self, until: str, *, limit: int) -> list[str]:
        """Partition keys of the records in the sparse `by_due` index due at or before `until`."""
        with storage_errors():
            response = self._client.query(
                TableName=self._control_table,
                IndexName="by_due",
                KeyConditionExpression="gsi2pk = :due AND gsi2sk <= :until",
                ExpressionAttributeValues={":due": s(DUE_PARTITION), ":until": s(until)},
                Limit=limit,
            )
        return [item["pk"]["S"] for item in response.get("Items", [])]
