"""What a connection's health is read from: the time of its last webhook, on its log's head (set in the
commit that moves the head anyway, so it costs the webhook path no request and no write unit), and its
pulls, one small item per connection written when a pull ends."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pullbridge.storage.attributes import n, num, s
from pullbridge.storage.client import storage_errors
from pullbridge.storage.keys import CONNECTION_HEALTH_SK, HEAD_POSITION, connection_health_pk, connection_log
from pullbridge.storage.transactions import Transactions

WEBHOOK_AT = "webhook_at"
"""The connection log head's attribute: when its last webhook was committed (epoch milliseconds)."""
SCAN_PREFIX = "scan:"


class Health(Transactions):
    def last_webhooks(self, tenant_id: str, connection_ids: Sequence[str]) -> dict[str, int]:
        """Each connection's last webhook time (epoch ms), for those that had one; eventually consistent."""
        logs = {connection_log(tenant_id, connection_id): connection_id for connection_id in connection_ids}
        found: dict[str, int] = {}
        for item in self._batch_read(
            self._events_table,
            [{"pk": s(log), "sk": n(HEAD_POSITION)} for log in logs],
            projection=f"pk, {WEBHOOK_AT}",
        ):
            if WEBHOOK_AT in item:
                found[logs[item["pk"]["S"]]] = num(item, WEBHOOK_AT)
        return found

    def pull_healths(self, connection_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each connection's pulls: `last_pull_at`, and per collection (`scans`) its last full scan."""
        keys = [{"pk": s(connection_health_pk(c)), "sk": s(CONNECTION_HEALTH_SK)} for c in connection_ids]
        prefix = len(connection_health_pk(""))
        healths: dict[str, dict[str, Any]] = {}
        for item in self._batch_read(self._control_table, keys):
            scans = {
                name.removeprefix(SCAN_PREFIX): json.loads(value["S"])
                for name, value in item.items()
                if name.startswith(SCAN_PREFIX)
            }
            last_pull = item.get("last_pull_at", {}).get("S")
            healths[item["pk"]["S"][prefix:]] = {"last_pull_at": last_pull, "scans": scans}
        return healths

    def save_pull_health(
        self, connection_id: str, *, pulled_at: str, collection: str, full_scan: Mapping[str, Any] | None
    ) -> None:
        """One update per pull: its time, and for a full scan its outcome under its collection's own
        attribute, so pulls of two collections ending together do not overwrite each other."""
        names = {"#pulled": "last_pull_at"}
        values: dict[str, Any] = {":pulled": s(pulled_at)}
        update = "SET #pulled = :pulled"
        if full_scan is not None:
            names["#scan"] = SCAN_PREFIX + collection
            values[":scan"] = s(json.dumps(full_scan, separators=(",", ":")))
            update += ", #scan = :scan"
        with storage_errors():
            self._client.update_item(
                TableName=self._control_table,
                Key={"pk": s(connection_health_pk(connection_id)), "sk": s(CONNECTION_HEALTH_SK)},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
