"""Writing the log: one transaction per chunk of events, whose positions come from the log's head.

The protocol (docs/architecture.md, "How the log is ordered"): a writer that knows the head moves it
inside its commit, conditional on `seq` being what it knew, so a commit that lands allocated exactly
what it wrote and one that fails allocated nothing. A writer that does not know it, or whose view went
stale twice, takes positions with one atomic `ADD` and holds them until it commits or releases them.
The pure decisions are in `planning`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.errors import StorageUnavailable
from pullbridge.ids import new_event_id
from pullbridge.storage.attributes import Item, encode_document, n, num, readable_text, s
from pullbridge.storage.client import error_code, storage_error, storage_errors
from pullbridge.storage.core import StoreCore
from pullbridge.storage.keys import (
    CONNECTION_SK,
    HEAD_POSITION,
    connection_log,
    connection_pk,
    dedupe_key,
    tenant_log,
)
from pullbridge.storage.model import AppendResult, ConnectionChanged, ConnectionGuard, EventDraft
from pullbridge.storage.planning import (
    Allocation,
    Cancellation,
    EncodedDraft,
    KnownHead,
    chunk_drafts,
    classify_cancellation,
    item_roles,
    learn_allocation,
    plan_in_commit,
)
from pullbridge.storage.snapshots import snapshot_write

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
else:
    TransactWriteItemTypeDef = Any

MAX_COMMIT_ATTEMPTS = 6
MAX_HEAD_GUESSES = 2
"""Commits that move the head themselves, per chunk, before a writer falls back to `ADD`."""
HEAD_CONTENTION_SECONDS = 1.0
"""After its view goes stale that often, a writer takes positions by `ADD` for this long: a tenant that
many instances write at once would otherwise cost a cancelled transaction per webhook."""
MAX_KNOWN_HEADS = 10_000  # tenants whose head one instance remembers; past it, it starts over
MAX_ADD_ATTEMPTS = 4  # an ADD that meets another instance's commit on the head waits 5, 10, 20 ms
MAX_ATTRIBUTE_TEXT_BYTES = 1_024  # the plain copies of an event's fields on its log rows
MAX_READABLE_ID_BYTES = 4_096  # the original of a hashed delivery id, kept beside its claim


class LogWriter(StoreCore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: dict[str, KnownHead] = {}
        self._contended_until: dict[str, float] = {}

    def append(
        self,
        tenant_id: str,
        connection_id: str,
        drafts: Sequence[EventDraft],
        *,
        guard: ConnectionGuard | None = None,
    ) -> AppendResult:
        """Log `drafts` of one connection, in order, each exactly once per delivery id.

        Raises `ConnectionChanged` when `guard` no longer holds, `StorageUnavailable` when DynamoDB fails.
        Each transaction is atomic; a batch larger than one transaction is committed chunk by chunk,
        and a redelivery of the batch finds the committed chunks' deliveries as duplicates.
        """
        result = AppendResult()
        for chunk in self._chunks(drafts):
            self._append_chunk(tenant_id, connection_id, chunk, guard, result)
        return result

    @staticmethod
    def _chunks(drafts: Sequence[EventDraft]) -> Iterator[list[EncodedDraft]]:
        return chunk_drafts((draft, *encode_document(draft.document)) for draft in drafts)

    def _append_chunk(
        self,
        tenant_id: str,
        connection_id: str,
        chunk: list[EncodedDraft],
        guard: ConnectionGuard | None,
        result: AppendResult,
    ) -> None:
        pending = list(chunk)
        allocation: Allocation | None = None
        head_guesses = MAX_HEAD_GUESSES
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            if not pending:
                if allocation and not allocation.in_commit:
                    self._release(allocation)
                return
            if allocation is None:
                guessed = (
                    self._allocate_in_commit(tenant_id, connection_id, len(pending)) if head_guesses else None
                )
                allocation = guessed or self._allocate(tenant_id, connection_id, len(pending))
            items, event_ids = self._commit_items(allocation, pending, guard)
            try:
                self._client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    self._abandon(allocation, committed_maybe=True)
                    raise storage_error(exc) from exc
                outcome = self._classify_cancellation(exc, pending, guard, allocation)
                if outcome.guard_failed:
                    self._abandon(allocation)
                    raise ConnectionChanged(connection_id) from exc
                if outcome.unexpected:
                    self._abandon(allocation)
                    raise storage_error(exc) from exc
                for index in sorted(outcome.duplicates, reverse=True):
                    draft = pending.pop(index)[0]
                    result.duplicates += 1
                    result.duplicate_event_ids.extend(self._claimed_ids(draft, outcome.duplicates[index]))
                if allocation.in_commit:
                    head_guesses = self._after_cancelled_head_move(tenant_id, outcome, head_guesses)
                    allocation = None
                elif outcome.fenced:
                    # A reader gave up on our positions: release them all and take new ones.
                    self._release(allocation)
                    allocation = None
                if outcome.conflict:
                    time.sleep(0.01 * 2**attempt)
                continue
            except BotoCoreError as exc:
                # Unknown outcome (e.g. a timeout): the commit may have landed, so release conditionally.
                # A redelivery then finds the claim if it did, and is stored anew if it did not.
                self._abandon(allocation, committed_maybe=True)
                raise storage_error(exc) from exc
            if allocation.in_commit:
                self._learn_allocation(allocation)
            result.event_ids.extend(event_ids)
            return
        if allocation:
            self._abandon(allocation)
        raise StorageUnavailable("the log is too contended; retry later", key="storage_contention")

    def _after_cancelled_head_move(self, tenant_id: str, outcome: Cancellation, head_guesses: int) -> int:
        """A commit that moved the head took nothing: learn the head the cancellation returned, if it
        moved, and count the miss. Returns the guesses left for this chunk."""
        if outcome.current_head is not None:
            self._heads[tenant_id] = KnownHead.from_item(outcome.current_head)
        elif outcome.fenced:
            # Cannot happen while the view holds: trust it no more.
            self._heads.pop(tenant_id, None)
        if outcome.current_head is None and not outcome.conflict and not outcome.fenced:
            return head_guesses  # only duplicates: plan again for the rest
        if head_guesses <= 1:
            self._contended_until[tenant_id] = self._clock() + HEAD_CONTENTION_SECONDS
        return head_guesses - 1

    def _abandon(self, allocation: Allocation, *, committed_maybe: bool = False) -> None:
        """Give up a commit: an `ADD` allocation is released. A head moved in the commit took nothing;
        its view stays true unless the commit may have landed after all."""
        if allocation.in_commit:
            if committed_maybe:
                self._heads.pop(allocation.tenant_id, None)
        else:
            self._release(allocation, committed_maybe=committed_maybe)

    def _allocate_in_commit(self, tenant_id: str, connection_id: str, size: int) -> Allocation | None:
        """Positions the commit takes itself, from the head this instance knows; None if it knows none."""
        now = self._clock()
        if self._contended_until.get(tenant_id, 0.0) > now:
            return None
        return plan_in_commit(self._heads.get(tenant_id), tenant_id, connection_id, size, now)

    def _learn_allocation(self, allocation: Allocation) -> None:
        """The head as an allocation left it: an `ADD` once it returns, a move in a commit once it lands."""
        if allocation.tenant_id not in self._heads and len(self._heads) >= MAX_KNOWN_HEADS:
            self._heads.clear()
            self._contended_until.clear()
        self._heads[allocation.tenant_id] = learn_allocation(
            self._heads.get(allocation.tenant_id), allocation
        )

    def _allocate(self, tenant_id: str, connection_id: str, size: int) -> Allocation:
        for attempt in range(MAX_ADD_ATTEMPTS):
            now_ms = int(self._clock() * 1000)
            try:
                response = self._client.update_item(
                    TableName=self._events_table,
                    Key={"pk": s(tenant_log(tenant_id)), "sk": n(HEAD_POSITION)},
                    UpdateExpression="ADD #seq :size, #cseq :size SET #at = :now, #cat = :now",
                    ExpressionAttributeNames={
                        "#seq": "seq",
                        "#cseq": f"c_{connection_id}",
                        "#at": "alloc_at",
                        "#cat": f"a_{connection_id}",
                    },
                    ExpressionAttributeValues={":size": n(size), ":now": n(now_ms)},
                    ReturnValues="UPDATED_OLD",
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
        old = response.get("Attributes", {})
        allocation = Allocation(
            tenant_id=tenant_id,
            connection_id=connection_id,
            first_seq=num(old, "seq") + 1,
            first_cseq=num(old, f"c_{connection_id}") + 1,
            size=size,
            at_ms=now_ms,
            prev_at_ms=num(old, "alloc_at"),
            prev_connection_at_ms=num(old, f"a_{connection_id}"),
        )
        self._learn_allocation(allocation)  # the `ADD` itself moved the head, whatever the commit does
        return allocation

    def _commit_items(
        self,
        allocation: Allocation,
        pending: list[EncodedDraft],
        guard: ConnectionGuard | None,
    ) -> tuple[list[TransactWriteItemTypeDef], list[str]]:
        items: list[TransactWriteItemTypeDef] = []
        if allocation.in_commit:
            items.append(self._head_move(allocation))
        if guard is not None:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._control_table,
                        "Key": {"pk": s(connection_pk(guard.connection_id)), "sk": s(CONNECTION_SK)},
                        "ConditionExpression": "#v = :v AND #archived = :no",
                        "ExpressionAttributeNames": {"#v": "version", "#archived": "archived"},
                        "ExpressionAttributeValues": {":v": n(guard.version), ":no": {"BOOL": False}},
                    }
                }
            )
        expires_at = int(allocation.at_ms / 1000) + self._retention_seconds
        event_ids = []
        for offset, (draft, doc_name, doc_value) in enumerate(pending):
            seq = allocation.first_seq + offset
            cseq = allocation.first_cseq + offset
            event_id = new_event_id(seq)
            event_ids.append(event_id)
            if draft.delivery_id is not None:
                items.append(self._claim_put(draft.connection_id, draft.delivery_id, event_id, expires_at))
            if draft.snapshot is not None:
                items.append(snapshot_write(self._control_table, draft.snapshot))
            row = self._row_attributes(draft, event_id, doc_name, doc_value, expires_at)
            for log_key, position, other, prev_at in (
                (tenant_log(allocation.tenant_id), seq, cseq, allocation.prev_at_ms),
                (
                    connection_log(allocation.tenant_id, allocation.connection_id),
                    cseq,
                    seq,
                    allocation.prev_connection_at_ms,
                ),
            ):
                items.append(
                    {
                        "Put": {
                            "TableName": self._events_table,
                            "Item": {
                                "pk": s(log_key),
                                "sk": n(position),
                                "other_position": n(other),
                                "prev_at": n(prev_at),
                                **row,
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
        for offset in range(len(pending), allocation.size):
            items.extend(self._tombstone_puts(allocation, offset))
        return items, event_ids

    def _claim_put(
        self, connection_id: str, delivery_id: str, event_id: str, expires_at: int
    ) -> TransactWriteItemTypeDef:
        """The dedupe claim of one delivery: the commit fails on it when the delivery was logged before."""
        pk = dedupe_key(connection_id, delivery_id)
        item: Item = {
            "pk": s(pk),
            "sk": n(0),
            "event_ids": {"L": [s(event_id)]},
            "expires_at": n(expires_at),
        }
        if not pk.endswith(delivery_id):  # keyed by its hash: keep the id itself for whoever looks
            item["delivery_id"] = s(readable_text(delivery_id, MAX_READABLE_ID_BYTES))
        return {
            "Put": {
                "TableName": self._events_table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _head_move(self, allocation: Allocation) -> TransactWriteItemTypeDef:
        return {
            "Update": {
                "TableName": self._events_table,
                "Key": {"pk": s(tenant_log(allocation.tenant_id)), "sk": n(HEAD_POSITION)},
                "UpdateExpression": "SET #seq = :seq, #cseq = :cseq, #at = :now, #cat = :now",
                # `seq` versions the head; the connection's own counter is checked too, in case a view
                # ever pairs them wrongly: a counter moved back would reissue its positions.
                "ConditionExpression": "#seq = :expected AND #cseq = :cexpected",
                "ExpressionAttributeNames": {
                    "#seq": "seq",
                    "#cseq": f"c_{allocation.connection_id}",
                    "#at": "alloc_at",
                    "#cat": f"a_{allocation.connection_id}",
                },
                "ExpressionAttributeValues": {
                    ":seq": n(allocation.first_seq + allocation.size - 1),
                    ":cseq": n(allocation.first_cseq + allocation.size - 1),
                    ":now": n(allocation.at_ms),
                    ":expected": n(allocation.expected_seq or 0),
                    ":cexpected": n(allocation.first_cseq - 1),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    @staticmethod
    def _row_attributes(
        draft: EventDraft, event_id: str, doc_name: str, doc_value: Any, expires_at: int
    ) -> Item:
        document = draft.document
        row: Item = {
            "kind": s("event"),
            "id": s(event_id),
            "connection_id": s(draft.connection_id),
            "provider": s(str(document.get("provider"))),
            "type": s(readable_text(str(document.get("type")), MAX_ATTRIBUTE_TEXT_BYTES)),
            "source": s(str(document.get("source"))),
            "expires_at": n(expires_at),
            doc_name: doc_value,
        }
        if document.get("collection"):
            row["collection"] = s(readable_text(str(document["collection"]), MAX_ATTRIBUTE_TEXT_BYTES))
        return row

    def _tombstone_puts(self, allocation: Allocation, offset: int) -> list[TransactWriteItemTypeDef]:
        expires_at = int(allocation.at_ms / 1000) + self._retention_seconds
        puts: list[TransactWriteItemTypeDef] = []
        for log_key, position, prev_at in (
            (tenant_log(allocation.tenant_id), allocation.first_seq + offset, allocation.prev_at_ms),
            (
                connection_log(allocation.tenant_id, allocation.connection_id),
                allocation.first_cseq + offset,
                allocation.prev_connection_at_ms,
            ),
        ):
            puts.append(
                {
                    "Put": {
                        "TableName": self._events_table,
                        "Item": {
                            "pk": s(log_key),
                            "sk": n(position),
                            "kind": s("tombstone"),
                            "prev_at": n(prev_at),
                            "expires_at": n(expires_at),
                        },
                    }
                }
            )
        return puts

    def _release(self, allocation: Allocation, *, committed_maybe: bool = False) -> None:
        """Tombstone positions a failed commit left empty, so readers need not wait for the deadline.

        After a cancelled transaction nothing was written, so plain batched puts are safe. After any other
        failure the commit may still have landed, so each tombstone is conditional on the position being
        empty: it can never overwrite an event. Best effort: if this fails, readers fence after the deadline.
        """
        puts = [
            put["Put"]
            for offset in range(allocation.size)
            for put in self._tombstone_puts(allocation, offset)
        ]
        try:
            if committed_maybe:
                for put in puts:
                    try:
                        self._client.put_item(
                            TableName=put["TableName"],
                            Item=put["Item"],
                            ConditionExpression="attribute_not_exists(pk)",
                        )
                    except ClientError as exc:
                        if error_code(exc) != "ConditionalCheckFailedException":
                            raise
                return
            for start in range(0, len(puts), 25):
                self._client.batch_write_item(
                    RequestItems={
                        self._events_table: [
                            {"PutRequest": {"Item": put["Item"]}} for put in puts[start : start + 25]
                        ]
                    }
                )
        except (ClientError, BotoCoreError):
            return

    def _classify_cancellation(
        self,
        exc: ClientError,
        pending: list[EncodedDraft],
        guard: ConnectionGuard | None,
        allocation: Allocation,
    ) -> Cancellation:
        reasons = exc.response.get("CancellationReasons") or []
        roles = item_roles(pending, guard, head=allocation.in_commit)
        return classify_cancellation(reasons, roles)

    def _claimed_ids(self, draft: EventDraft, old_item: Item) -> list[str]:
        """The event ids an earlier delivery of `draft` was stored under."""
        if not old_item and draft.delivery_id is not None:
            with storage_errors():
                old_item = self._client.get_item(
                    TableName=self._events_table,
                    Key={"pk": s(dedupe_key(draft.connection_id, draft.delivery_id)), "sk": n(0)},
                    ConsistentRead=True,
                ).get("Item", {})
        return [value["S"] for value in old_item.get("event_ids", {}).get("L", [])]

    # -- reading ------------------------------------------------------------------------------------
