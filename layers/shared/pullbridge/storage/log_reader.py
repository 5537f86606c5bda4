"""Reading the log: never past a position that is not resolved (docs/architecture.md, "Why cursors
cannot skip"). An empty position older than the write deadline is fenced with a conditional tombstone."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.storage.attributes import decode_document, n, num, s, text
from pullbridge.storage.client import error_code, storage_error, storage_errors
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import HEAD_POSITION, connection_log, tenant_log
from pullbridge.storage.model import LoggedEvent, LogRead, LogRow
from pullbridge.storage.planning import gap_verdict

MAX_FENCES_PER_READ = 100


class LogReader(StoreCore):
    def read_log(self, tenant_id: str, connection_id: str | None, after: int, max_rows: int) -> LogRead:
        """Read up to `max_rows` positions after `after`, never passing an unresolved one.

        `connection_id` selects that connection's log; None, the tenant log.
        """
        log_key = tenant_log(tenant_id) if connection_id is None else connection_log(tenant_id, connection_id)
        events: list[LoggedEvent] = []
        position = after
        rows_read = 0
        fences_left = MAX_FENCES_PER_READ
        while rows_read < max_rows:
            rows, more_stored = self._query_rows(log_key, position, max_rows - rows_read)
            for row in rows:
                if row.position > position + 1:
                    verdict = self._judge_gap(log_key, position + 1, row, fences_left)
                    if verdict == "wait":
                        return LogRead(events, position, exhausted=True)
                    if verdict == "raced":
                        break  # a writer committed into the gap after all: read again from here
                    fences_left -= row.position - position - 1
                rows_read += 1
                if row.kind == "event" and row.expires_at > self._clock():
                    document = decode_document(row.item)
                    document["id"] = row.item["id"]["S"]
                    events.append(LoggedEvent(row.position, document))
                position = row.position
            else:
                if not more_stored:
                    return LogRead(events, position, exhausted=True)
        return LogRead(events, position, exhausted=False)

    def _query_rows(self, log_key: str, after: int, limit: int) -> tuple[list[LogRow], bool]:
        with storage_errors():
            response = self._client.query(
                TableName=self._events_table,
                KeyConditionExpression="pk = :pk AND sk > :after",
                ExpressionAttributeValues={":pk": s(log_key), ":after": n(after)},
                ConsistentRead=True,
                Limit=limit,
            )
        rows = [
            LogRow(
                position=num(item, "sk"),
                kind=text(item, "kind") or "event",
                prev_at_ms=num(item, "prev_at"),
                expires_at=num(item, "expires_at"),
                item=item,
            )
            for item in response.get("Items", [])
        ]
        return rows, "LastEvaluatedKey" in response

    def _judge_gap(self, log_key: str, first_missing: int, successor: LogRow, fences_left: int) -> str:
        """What the empty positions before `successor` mean ("wait", "skip"), fencing them when their
        writer is past the deadline; "raced" when a commit filled one first."""
        missing = range(first_missing, successor.position)
        verdict = gap_verdict(
            age_ms=int(self._clock() * 1000) - successor.prev_at_ms,
            deadline_ms=self._deadline_ms,
            retention_ms=self._retention_seconds * 1000,
            missing=len(missing),
            fences_left=fences_left,
        )
        if verdict != "fence":
            return verdict
        expires_at = int(successor.prev_at_ms / 1000) + self._retention_seconds
        for position in missing:
            try:
                self._client.put_item(
                    TableName=self._events_table,
                    Item={
                        "pk": s(log_key),
                        "sk": n(position),
                        "kind": s("tombstone"),
                        "prev_at": n(successor.prev_at_ms),
                        "expires_at": n(expires_at),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                # Either a commit filled the position first, or one is filling it right now (DynamoDB
                # refuses a plain write to an item in a transaction): read again from here.
                if error_code(exc) in ("ConditionalCheckFailedException", "TransactionConflictException"):
                    return "raced"
                raise storage_error(exc) from exc
            except BotoCoreError as exc:
                raise storage_error(exc) from exc
        return "skip"

    def log_head(self, tenant_id: str, connection_id: str | None, *, consistent: bool = True) -> int:
        """The last position allocated in a log (committed or not): a cheap "anything new?" probe.

        `consistent=False` costs half a read unit and may lag a write by a moment: right for a probe whose
        "yes" is followed by a consistent read of the log itself, and whose "no" is asked again soon."""
        log_key = tenant_log(tenant_id) if connection_id is None else connection_log(tenant_id, connection_id)
        with storage_errors():
            response = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": s(log_key), "sk": n(HEAD_POSITION)},
                ProjectionExpression="#seq",
                ExpressionAttributeNames={"#seq": "seq"},
                ConsistentRead=consistent,
            )
        return num(response.get("Item", {}), "seq")

    def received_at_or_after(
        self, tenant_id: str, connection_id: str | None, position: int
    ) -> tuple[int, str] | None:
        """The first event row at or after `position` in a log: its position and `received_at`; None
        past the last. Ten rows at most: tombstones between events are rare and short."""
        log_key = tenant_log(tenant_id) if connection_id is None else connection_log(tenant_id, connection_id)
        with storage_errors():
            response = self._client.query(
                TableName=self._events_table,
                KeyConditionExpression="pk = :pk AND sk >= :from",
                ExpressionAttributeValues={":pk": s(log_key), ":from": n(max(position, HEAD_POSITION + 1))},
                ConsistentRead=True,
                Limit=10,
            )
        for item in response.get("Items", []):
            if (text(item, "kind") or "event") == "event":
                return num(item, "sk"), str(decode_document(item)["received_at"])
        return None

    def get_event(self, tenant_id: str, position: int) -> dict[str, Any] | None:
        with storage_errors():
            item = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": s(tenant_log(tenant_id)), "sk": n(position)},
                ConsistentRead=True,
            ).get("Item")
        if not item or text(item, "kind") != "event" or num(item, "expires_at") <= self._clock():
            return None
        document = decode_document(item)
        document["id"] = item["id"]["S"]
        return document
