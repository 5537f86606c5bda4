"""The logs' heads as one writer knows and moves them: reading them, taking positions by `ADD`, the
lease on a contended connection's head, and the head's move inside a commit (docs/architecture.md,
"How the log is ordered")."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.errors import StorageUnavailable
from pullbridge.storage.attributes import Item, n, num, s, text
from pullbridge.storage.client import error_code, storage_error, storage_errors
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import HEAD_POSITION
from pullbridge.storage.planning import KnownHead, Take, head_after

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
else:
    TransactWriteItemTypeDef = Any

MAX_KNOWN_HEADS = 100_000
"""Heads (tenants' and connections') one instance remembers, about 100 bytes each; past it, the least
recently learned is forgotten, and read again when needed."""
MAX_ADD_ATTEMPTS = 4  # an ADD that meets another instance's commit on the head waits 5, 10, 20 ms
MAX_BACKOFF_SECONDS = 0.2


class LogHeads(StoreCore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: dict[str, KnownHead] = {}
        """Log key -> the head as this instance last saw it."""
        self._contended_until: dict[str, float] = {}
        """Tenant log key -> until when its positions are taken by `ADD`."""

    def _read_heads(self, log_keys: Sequence[str]) -> None:
        """Learn heads never seen, with one consistent read (a head not yet written is at 0)."""
        found: dict[str, Item] = {}
        request: dict[str, Any] = {
            self._events_table: {
                "Keys": [{"pk": s(key), "sk": n(HEAD_POSITION)} for key in log_keys],
                "ConsistentRead": True,
            }
        }
        for attempt in range(8):
            with storage_errors():
                response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._events_table, []):
                found[item["pk"]["S"]] = item
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
            time.sleep(min(0.01 * 2**attempt, MAX_BACKOFF_SECONDS))
        else:
            raise StorageUnavailable("storage kept throttling a read; retry later")
        for key in log_keys:
            self._remember(key, KnownHead.from_item(found.get(key, {})))

    def _remember(self, log_key: str, head: KnownHead) -> None:
        self._heads.pop(log_key, None)  # re-inserted last: the least recently learned goes first
        if len(self._heads) >= MAX_KNOWN_HEADS:
            del self._heads[next(iter(self._heads))]
        self._heads[log_key] = head

    def _lease_head(self, log_key: str) -> str | None:
        """A lease on a connection's head, so that this writer's next commit cannot lose the race for it
        again: other writers' commits wait until it is given back (in our commit) or runs out (after the
        write deadline, by their clocks: a lease only decides who goes first, never what is correct). Also
        learns the head. None when another writer holds it."""
        token = secrets.token_hex(8)
        now_ms = int(self._clock() * 1000)
        try:
            response = self._client.update_item(
                TableName=self._events_table,
                Key={"pk": s(log_key), "sk": n(HEAD_POSITION)},
                UpdateExpression="SET #owner = :me, #until = :until",
                # `#owner = :me`: botocore's retry of this very call, after a timeout whose write landed,
                # finds the lease its first attempt took; it is ours, not another writer's.
                ConditionExpression="attribute_not_exists(#until) OR #until < :now OR #owner = :me",
                ExpressionAttributeNames={"#owner": "lease_owner", "#until": "lease_until"},
                ExpressionAttributeValues={
                    ":me": s(token),
                    ":until": n(now_ms + self._deadline_ms),
                    ":now": n(now_ms),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) in ("ConditionalCheckFailedException", "TransactionConflictException"):
                return None
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise storage_error(exc) from exc
        self._remember(log_key, KnownHead.from_item(response.get("Attributes", {})))
        return token

    def _leased_by_another(self, head: Item, lease: str | None) -> bool:
        return num(head, "lease_until") >= self._clock() * 1000 and text(head, "lease_owner") != lease

    def _release_lease(self, log_key: str, token: str) -> None:
        """Give a lease back when the commit that was to do so did not land. Best effort: it runs out."""
        try:
            self._client.update_item(
                TableName=self._events_table,
                Key={"pk": s(log_key), "sk": n(HEAD_POSITION)},
                UpdateExpression="REMOVE #owner, #until",
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "lease_owner", "#until": "lease_until"},
                ExpressionAttributeValues={":me": s(token)},
            )
        except (ClientError, BotoCoreError):
            return

    def _take_by_add(self, log_key: str, size: int) -> Take:
        """Positions taken with one atomic `ADD` on the log's head: held from now on."""
        for attempt in range(MAX_ADD_ATTEMPTS):
            now_ms = int(self._clock() * 1000)
            try:
                response = self._client.update_item(
                    TableName=self._events_table,
                    Key={"pk": s(log_key), "sk": n(HEAD_POSITION)},
                    UpdateExpression="ADD #seq :size SET #at = :now",
                    ExpressionAttributeNames={"#seq": "seq", "#at": "alloc_at"},
                    ExpressionAttributeValues={":size": n(size), ":now": n(now_ms)},
                    # The head as it was, whole: botocore's retry of an `ADD` whose first attempt landed
                    # sets `alloc_at` to the value it already holds, and an attribute set to its own
                    # value may be left out of `UPDATED_OLD` (the local DynamoDB does so). Without it the
                    # rows would say the positions before them were taken at 0, and readers skip the gap.
                    ReturnValues="ALL_OLD",
                )
                break
            except ClientError as exc:
                # Another instance's commit is moving the head right now; DynamoDB refuses a plain write
                # to an item in a transaction, and botocore does not retry that. It is over in milliseconds.
                if error_code(exc) == "TransactionConflictException" and attempt + 1 < MAX_ADD_ATTEMPTS:
                    time.sleep(0.005 * 2**attempt)
                    continue
                raise storage_error(exc) from exc
            except BotoCoreError as exc:
                raise storage_error(exc) from exc
        old = KnownHead.from_item(response.get("Attributes", {}))
        take = Take(log_key, old.seq + 1, size, now_ms, old.alloc_at_ms)
        self._remember(log_key, head_after(take))  # the `ADD` moved it, whatever the commit does
        return take

    def _head_move(self, take: Take, tenant: Take, *, webhook: bool = False) -> TransactWriteItemTypeDef:
        """Move a log's head in the commit, conditional on `seq`, which versions the head: every
        allocation moves it. A connection's head also keeps `tseq`, the tenant position of its last
        event, and moves only past it: a writer holding earlier tenant positions can then never place
        its events after later ones in the connection's log. It moves only for the holder of a lease on
        it, if there is one; the holder's commit gives the lease back."""
        conditions = [
            "#seq = :expected" if take.expected else "(attribute_not_exists(#seq) OR #seq = :expected)"
        ]
        names = {"#seq": "seq", "#at": "alloc_at"}
        values: dict[str, Any] = {
            ":seq": n(take.last),
            ":now": n(take.at_ms),
            ":expected": n(take.expected or 0),
        }
        update = "SET #seq = :seq, #at = :now"
        if take is not tenant:
            if webhook:  # the connection's health: its last webhook, at no cost but a few bytes here
                names["#webhook_at"] = "webhook_at"
                update += ", #webhook_at = :now"
            names |= {"#tseq": "tseq", "#until": "lease_until"}
            values[":tlast"] = n(tenant.first + take.size - 1)
            values[":tfirst"] = n(tenant.first)
            update += ", #tseq = :tlast"
            conditions.append("(attribute_not_exists(#tseq) OR #tseq < :tfirst)")
            if take.lease is None:
                conditions.append("(attribute_not_exists(#until) OR #until < :now)")
            else:
                names["#owner"], values[":me"] = "lease_owner", s(take.lease)
                conditions.append("#owner = :me")
                update += " REMOVE #owner, #until"
        return {
            "Update": {
                "TableName": self._events_table,
                "Key": {"pk": s(take.log_key), "sk": n(HEAD_POSITION)},
                "UpdateExpression": update,
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
