"""Full-scan snapshots: one item per record, its content hash, under `SNAP#<conn>#<collection>`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pullbridge.errors import StorageUnavailable
from pullbridge.storage.attributes import s
from pullbridge.storage.client import storage_errors
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import key_part, snapshot_partition
from pullbridge.storage.model import SnapshotChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
else:
    TransactWriteItemTypeDef = Any


def snapshot_write(table: str, change: SnapshotChange) -> TransactWriteItemTypeDef:
    """The write of one record's snapshot: a put of its hash, or a delete once the record is deleted.
    Also part of the log's commits, so a snapshot never runs ahead of the log."""
    sort_key = key_part(change.record_id)
    key = {"pk": s(snapshot_partition(change.connection_id, change.collection)), "sk": s(sort_key)}
    if change.content_hash is None:
        return {"Delete": {"TableName": table, "Key": key}}
    item = {**key, "h": s(change.content_hash)}
    if sort_key != change.record_id:  # keyed by its hash: the id itself, for the scan's delete check
        item["rid"] = s(json.dumps(change.record_id))
    return {"Put": {"TableName": table, "Item": item}}


class Snapshots(StoreCore):
    def load_snapshot(self, connection_id: str, collection: str) -> dict[str, str]:
        """Every record's content hash for one collection of a connection: record id -> hash."""
        snapshot: dict[str, str] = {}
        request: dict[str, Any] = {
            "TableName": self._control_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(snapshot_partition(connection_id, collection))},
            "ProjectionExpression": "sk, h, rid",
            "ConsistentRead": True,
        }
        with storage_errors():
            while True:
                response = self._client.query(**request)
                for item in response.get("Items", []):
                    record_id = json.loads(item["rid"]["S"]) if "rid" in item else item["sk"]["S"]
                    snapshot[record_id] = item["h"]["S"]
                if "LastEvaluatedKey" not in response:
                    return snapshot
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def write_snapshots(self, changes: Sequence[SnapshotChange]) -> None:
        """Snapshot changes that come with no event (a silent baseline), 25 to a request."""
        requests = []
        for change in changes:
            write = snapshot_write(self._control_table, change)
            requests.append(
                {"DeleteRequest": {"Key": write["Delete"]["Key"]}}
                if "Delete" in write
                else {"PutRequest": {"Item": write["Put"]["Item"]}}
            )
        for start in range(0, len(requests), 25):
            self._batch_write(self._control_table, requests[start : start + 25])

    def _batch_write(self, table: str, requests: list[Any]) -> None:
        pending: dict[str, Any] = {table: requests}
        for attempt in range(8):
            with storage_errors():
                response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise StorageUnavailable("storage kept throttling a batch write; retry later")
