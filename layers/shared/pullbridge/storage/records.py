"""Records: the latest known state of each upstream object, one item per record under
`REC#<conn>#<collection>`, sorted by record id.

A record is written in the same transaction as the event that changed it (`record_write`, part of the
log's commits), so a record and its `last_event_id` never disagree. The snapshot (hashes only, for the
scans' diffs) stays apart: a scan reads every snapshot row, and a record's data would make that read
grow with every object's size. A deleted record stays as a tombstone, with its last data, until
retention ends (its TTL).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pullbridge.storage.attributes import Item, decode_document, encode_document, n, s
from pullbridge.storage.client import storage_errors
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import key_part, record_partition
from pullbridge.storage.model import RecordChange, StoredRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
else:
    TransactWriteItemTypeDef = Any


def record_write(
    table: str, change: RecordChange, *, event_id: str, at: str, tombstone_expires_at: int
) -> TransactWriteItemTypeDef:
    """The update of one record in an event's commit. `first_seen_at` is set once; a delete keeps the
    data as last seen (a delete event may carry none) and starts the tombstone's TTL. A check-only change
    is a condition on the record's version, and writes nothing."""
    sort_key = key_part(change.record_id)
    key = {"pk": s(record_partition(change.connection_id, change.collection)), "sk": s(sort_key)}
    if change.check_only and change.version is not None:
        return {
            "ConditionCheck": {
                "TableName": table,
                "Key": key,
                "ConditionExpression": "attribute_not_exists(ver) OR ver <= :version",
                "ExpressionAttributeValues": {":version": n(change.version)},
            }
        }
    names: dict[str, str] = {"#deleted": "deleted", "#first": "first_seen_at"}
    values: dict[str, Any] = {
        ":deleted": {"BOOL": change.deleted},
        ":at": s(at),
        ":event": s(event_id),
        ":rid": s(json.dumps(change.record_id)),
    }
    sets = [
        "#deleted = :deleted",
        "#first = if_not_exists(#first, :at)",
        "changed_at = :at",
        "eid = :event",
        "rid = :rid",
    ]
    removes: list[str] = []
    if change.data is not None:
        attribute, value = encode_document({"data": change.data})
        other = "docz" if attribute == "doc" else "doc"
        names |= {"#doc": attribute, "#other": other}
        values[":doc"] = value
        sets.append("#doc = :doc")
        removes.append("#other")
    if change.upstream_updated_at is not None:
        values[":uat"] = s(change.upstream_updated_at)
        sets.append("uat = :uat")
    condition: str | None = None
    if change.version is not None:
        values[":version"] = n(change.version)
        sets.append("ver = :version")
        condition = "attribute_not_exists(ver) OR ver <= :version"
    if change.deleted:
        values[":expires"] = n(tombstone_expires_at)
        sets.append("expires_at = :expires")
    else:
        removes.append("expires_at")
    update: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    if condition is not None:
        update["ConditionExpression"] = condition
    return {"Update": update}  # type: ignore[typeddict-item]


def _stored(connection_id: str, collection: str, item: Item) -> StoredRecord:
    document = decode_document(item) if ("doc" in item or "docz" in item) else {"data": None}
    return StoredRecord(
        connection_id=connection_id,
        collection=collection,
        record_id=json.loads(item["rid"]["S"]),
        data=document.get("data"),
        deleted=bool(item.get("deleted", {}).get("BOOL", False)),
        first_seen_at=item["first_seen_at"]["S"],
        changed_at=item["changed_at"]["S"],
        upstream_updated_at=item["uat"]["S"] if "uat" in item else None,
        last_event_id=item["eid"]["S"],
    )


class Records(StoreCore):
    def records_page(
        self, connection_id: str, collection: str, *, after: str | None, limit: int, include_deleted: bool
    ) -> tuple[list[StoredRecord], str | None]:
        """Up to `limit` records in record id order (by key) after the key `after`; the key to go on from,
        None at the end. Tombstones are skipped unless asked for: DynamoDB still reads them, so a page
        costs about `limit` items while deletes are few, and may then come back short."""
        request: dict[str, Any] = {
            "TableName": self._control_table,
            "KeyConditionExpression": "pk = :pk" + (" AND sk > :after" if after is not None else ""),
            "ExpressionAttributeValues": {":pk": s(record_partition(connection_id, collection))},
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after is not None:
            request["ExpressionAttributeValues"][":after"] = s(after)
        if not include_deleted:
            request["FilterExpression"] = "#deleted = :live"
            request["ExpressionAttributeNames"] = {"#deleted": "deleted"}
            request["ExpressionAttributeValues"][":live"] = {"BOOL": False}
        with storage_errors():
            response = self._client.query(**request)
        records = [
            _stored(connection_id, collection, item) for item in response.get("Items", []) if self._kept(item)
        ]
        last = response.get("LastEvaluatedKey")
        return records, (last["sk"]["S"] if last else None)

    def get_record(self, connection_id: str, collection: str, record_id: str) -> StoredRecord | None:
        with storage_errors():
            item = self._client.get_item(
                TableName=self._control_table,
                Key={"pk": s(record_partition(connection_id, collection)), "sk": s(key_part(record_id))},
                ConsistentRead=True,
            ).get("Item")
        if item is None or json.loads(item["rid"]["S"]) != record_id or not self._kept(item):
            return None
        return _stored(connection_id, collection, item)

    def _kept(self, item: Item) -> bool:
        """A tombstone past retention is gone, even before DynamoDB's TTL deletes it."""
        return "expires_at" not in item or int(item["expires_at"]["N"]) > self._clock()
