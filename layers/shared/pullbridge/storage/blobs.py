"""Blobs: bytes larger than an item (a long scan's seen ids), compressed and split over items."""

from __future__ import annotations

import zlib
from typing import Any

from pullbridge.storage.attributes import MAX_ITEM_BYTES, n, s
from pullbridge.storage.client import storage_errors
from pullbridge.storage.core import StoreCore


class Blobs(StoreCore):
    def save_blob(self, pk: str, name: str, data: bytes) -> None:
        """Store `data` compressed under `pk`, in as many items as it takes."""
        packed = zlib.compress(data, 6)
        chunk = MAX_ITEM_BYTES - 10_000
        parts = [packed[start : start + chunk] for start in range(0, len(packed), chunk)] or [b""]
        for index, part in enumerate(parts):
            with storage_errors():
                self._client.put_item(
                    TableName=self._control_table,
                    Item={
                        "pk": s(pk),
                        "sk": s(f"{name}#{index:05d}"),
                        "b": {"B": part},
                        # Only a scan in progress needs it; TTL clears what a finished scan left behind.
                        "expires_at": n(int(self._clock()) + self._retention_seconds),
                    },
                )

    def load_blob(self, pk: str, name: str) -> bytes | None:
        request: dict[str, Any] = {
            "TableName": self._control_table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :name)",
            "ExpressionAttributeValues": {":pk": s(pk), ":name": s(f"{name}#")},
            "ConsistentRead": True,
        }
        parts: list[bytes] = []
        with storage_errors():
            while True:
                response = self._client.query(**request)
                parts.extend(item["b"]["B"] for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return zlib.decompress(b"".join(parts)) if parts else None
