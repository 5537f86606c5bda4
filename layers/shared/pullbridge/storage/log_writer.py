"""Writing the log: one transaction per chunk of events, whose positions come from the logs' heads.

The protocol (docs/architecture.md, "How the log is ordered"): each log (the tenant's, and each
connection's) has a head item of fixed size. A writer that knows a head moves it inside its commit,
conditional on `seq` being what it knew, so a commit that lands allocated exactly what it wrote and one
that fails allocated nothing. Under contention a writer takes its tenant positions with one atomic `ADD`
instead, and holds them until it commits or releases them. The connection's head is always moved in the
commit, and only past the tenant position of the connection's last event (`tseq`): both logs keep one
order. The pure decisions are in `planning`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.errors import StorageUnavailable
from pullbridge.ids import new_event_id
from pullbridge.storage.attributes import Item, encode_document, n, readable_text, s, text
from pullbridge.storage.client import error_code, storage_error, storage_errors
from pullbridge.storage.keys import (
    CONNECTION_SK,
    connection_log,
    connection_pk,
    dedupe_key,
    tenant_log,
)
from pullbridge.storage.log_heads import MAX_BACKOFF_SECONDS, LogHeads
from pullbridge.storage.model import AppendResult, ConnectionChanged, ConnectionGuard, EventDraft
from pullbridge.storage.planning import (
    Allocation,
    Cancellation,
    EncodedDraft,
    KnownHead,
    Take,
    chunk_drafts,
    classify_cancellation,
    head_after,
    item_roles,
    planned_take,
)
from pullbridge.storage.records import record_write
from pullbridge.storage.snapshots import snapshot_write

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
else:
    TransactWriteItemTypeDef = Any

MAX_COMMIT_ATTEMPTS = 12
CONTENTION_BUDGET_DEADLINES = 2
"""A writer keeps trying past `MAX_COMMIT_ATTEMPTS` for this many write deadlines (at least 2 s): under
contention a webhook is answered later, rather than 503."""
MAX_HEAD_GUESSES = 2
"""Commits that move the tenant's head themselves, per chunk, before a writer falls back to `ADD`."""
HEAD_CONTENTION_SECONDS = 1.0
"""After its view goes stale that often, a writer takes tenant positions by `ADD` for this long: a tenant
that many instances write at once would otherwise cost a cancelled transaction per webhook."""
MAX_READABLE_ID_BYTES = 4_096  # the original of a hashed delivery id, kept beside its claim


@dataclass
class _ChunkState:
    """One chunk's way to its commit, across attempts."""

    pending: list[EncodedDraft]
    connection_key: str
    held: Take | None = None
    """Tenant positions taken by `ADD` for this chunk, until committed or released."""
    lease: str | None = None
    """Our lease on the connection's head, once we lost races for it."""
    misses: int = 0
    connection_misses: int = 0
    attempt: int = 0
    waits_end: float = 0.0
    """Until when it keeps trying, whatever the attempts so far."""


class LogWriter(LogHeads):
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
        state = _ChunkState(list(chunk), connection_log(tenant_id, connection_id))
        state.waits_end = self._clock() + max(CONTENTION_BUDGET_DEADLINES * self._deadline_ms / 1000, 2.0)
        allocation: Allocation | None = None
        try:
            while state.attempt < MAX_COMMIT_ATTEMPTS or self._clock() < state.waits_end:
                if not state.pending:
                    if state.held:
                        self._release(state.held)
                    return
                if state.lease is None and state.connection_misses >= MAX_HEAD_GUESSES:
                    state.lease = self._lease_head(state.connection_key)
                    if state.lease is None:  # another writer holds it: its commit is on its way
                        time.sleep(random.uniform(0, self._deadline_ms / 4000))  # noqa: S311
                        state.connection_misses -= 1  # ask for the lease again after one more try
                        continue
                state.attempt += 1
                allocation = self._plan(tenant_id, connection_id, len(state.pending), state.held, state.lease)
                state.held = allocation.tenant if not allocation.tenant.planned else None
                items, event_ids = self._commit_items(allocation, state.pending, guard)
                try:
                    self._client.transact_write_items(TransactItems=items)
                except ClientError as exc:
                    if error_code(exc) != "TransactionCanceledException":
                        self._abandon(allocation, committed_maybe=True)
                        raise storage_error(exc) from exc
                    self._after_cancellation(exc, state, allocation, guard, result)
                    continue
                except BotoCoreError as exc:
                    # Unknown outcome (e.g. a timeout): the commit may have landed, so release conditionally.
                    # A redelivery then finds the claim if it did, and is stored anew if it did not.
                    self._abandon(allocation, committed_maybe=True)
                    raise storage_error(exc) from exc
                state.lease = None  # the commit gave it back
                for take in allocation.takes:
                    if take.planned:
                        self._remember(take.log_key, head_after(take))
                result.event_ids.extend(event_ids)
                return
            if allocation:
                self._abandon(allocation)
            raise StorageUnavailable("the log is too contended; retry later", key="storage_contention")
        finally:
            if state.lease is not None:
                self._release_lease(state.connection_key, state.lease)

    def _after_cancellation(
        self,
        exc: ClientError,
        state: _ChunkState,
        allocation: Allocation,
        guard: ConnectionGuard | None,
        result: AppendResult,
    ) -> None:
        """Act on what a cancelled commit said, for the next attempt; raise when there is none."""
        outcome = self._classify_cancellation(exc, state.pending, guard, allocation)
        if outcome.guard_failed or outcome.unexpected:
            self._abandon(allocation)
            if outcome.guard_failed:
                raise ConnectionChanged(allocation.connection_id) from exc
            raise storage_error(exc) from exc
        for index in outcome.stale:
            # The record holds a newer version than this delivery's object: the event is logged all the
            # same, marked stale, and changes neither the record nor the snapshot.
            draft = state.pending[index][0]
            stale = replace(draft, document={**draft.document, "stale": True}, record=None, snapshot=None)
            state.pending[index] = (stale, *encode_document(stale.document))
        for index in sorted(outcome.duplicates, reverse=True):
            draft = state.pending.pop(index)[0]
            result.duplicates += 1
            result.duplicate_event_ids.extend(self._claimed_ids(draft, outcome.duplicates[index]))
        state.misses = self._learn_from_cancellation(outcome, allocation, state.misses)
        if state.held and (outcome.fenced or outcome.overtaken):
            # A reader gave up on positions of ours, or a later writer got to the connection's log
            # first: release them and take new ones.
            self._release(state.held)
            state.held = None
        connection_head = outcome.current_heads.get(state.connection_key)
        if connection_head is not None:
            state.connection_misses += 1
            if state.lease and text(connection_head, "lease_owner") != state.lease:
                state.lease = None  # it ran out and went to another writer, who gave it back
            if self._leased_by_another(connection_head, state.lease):
                # Not a race lost: the lease holder goes first.
                time.sleep(random.uniform(0, self._deadline_ms / 4000))  # noqa: S311
                return
        if outcome.conflict or (outcome.current_heads and state.lease is None):
            time.sleep(random.uniform(0, min(0.005 * 2**state.attempt, MAX_BACKOFF_SECONDS)))  # noqa: S311

    def _plan(
        self, tenant_id: str, connection_id: str, size: int, held: Take | None, lease: str | None = None
    ) -> Allocation:
        """The positions of the next commit attempt.

        Tenant log: positions already held stay held; under contention they are taken by `ADD`; otherwise
        the commit moves the head itself. Connection log: always moved in the commit. Heads this instance
        has never seen are read first, both in one request.
        """
        now = self._clock()
        tenant_key, connection_key = tenant_log(tenant_id), connection_log(tenant_id, connection_id)
        by_add = held is None and self._contended_until.get(tenant_key, 0.0) > now
        unknown = [
            key
            for key, needed in ((tenant_key, held is None and not by_add), (connection_key, True))
            if needed and key not in self._heads
        ]
        if unknown:
            self._read_heads(unknown)
        if by_add:
            held = self._take_by_add(tenant_key, size)
        tenant = held or planned_take(self._heads[tenant_key], tenant_key, size, now)
        connection = planned_take(self._heads[connection_key], connection_key, size, now, lease)
        return Allocation(tenant_id, connection_id, tenant, connection)

    def _allocate(self, tenant_id: str, connection_id: str, size: int) -> Allocation:
        """Tenant positions taken by `ADD` (held until committed or released), and the connection's
        planned from its head: what a writer has between its `ADD` and its commit."""
        return self._plan(tenant_id, connection_id, size, self._take_by_add(tenant_log(tenant_id), size))

    def _learn_from_cancellation(self, outcome: Cancellation, allocation: Allocation, misses: int) -> int:
        """A cancelled commit that moved heads took nothing. A head found moved by someone else is learned
        from the cancellation. A stale or busy view of the tenant's head counts as a miss: after
        `MAX_HEAD_GUESSES`, tenant positions are taken by `ADD` for `HEAD_CONTENTION_SECONDS`. Returns the
        misses so far."""
        for key, item in outcome.current_heads.items():
            self._remember(key, KnownHead.from_item(item))
        tenant = allocation.tenant
        if tenant.planned and (tenant.log_key in outcome.current_heads or outcome.conflict):
            misses += 1
            if misses >= MAX_HEAD_GUESSES:
                self._contended_until[tenant.log_key] = self._clock() + HEAD_CONTENTION_SECONDS
        return misses

    def _abandon(self, allocation: Allocation, *, committed_maybe: bool = False) -> None:
        """Give up a commit: held positions are released. A head moved in the commit took nothing; its
        view stays true unless the commit may have landed after all."""
        for take in allocation.takes:
            if take.planned and committed_maybe:
                self._heads.pop(take.log_key, None)
        if not allocation.tenant.planned:
            self._release(allocation.tenant, committed_maybe=committed_maybe)

    def _commit_items(
        self,
        allocation: Allocation,
        pending: list[EncodedDraft],
        guard: ConnectionGuard | None,
    ) -> tuple[list[TransactWriteItemTypeDef], list[str]]:
        tenant, connection = allocation.takes
        from_webhook = any(draft.delivery_id is not None for draft, _, _ in pending)
        items: list[TransactWriteItemTypeDef] = [
            self._head_move(take, tenant, webhook=from_webhook) for take in allocation.takes if take.planned
        ]
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
        expires_at = int(tenant.at_ms / 1000) + self._retention_seconds
        event_ids = []
        for offset, (draft, doc_name, doc_value) in enumerate(pending):
            seq, cseq = tenant.first + offset, connection.first + offset
            event_id = new_event_id(seq)
            event_ids.append(event_id)
            if draft.delivery_id is not None:
                items.append(self._claim_put(draft.connection_id, draft.delivery_id, event_id, expires_at))
            if draft.snapshot is not None:
                items.append(snapshot_write(self._control_table, draft.snapshot))
            if draft.record is not None:
                items.append(
                    record_write(
                        self._control_table,
                        draft.record,
                        event_id=event_id,
                        at=str(draft.document.get("received_at") or ""),
                        tombstone_expires_at=expires_at,
                    )
                )
            row = self._row_attributes(event_id, doc_name, doc_value, expires_at)
            for take, position, other in ((tenant, seq, cseq), (connection, cseq, seq)):
                items.append(
                    {
                        "Put": {
                            "TableName": self._events_table,
                            "Item": {
                                "pk": s(take.log_key),
                                "sk": n(position),
                                "other_position": n(other),
                                "prev_at": n(take.prev_at_ms),
                                **row,
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
        if not tenant.planned:  # held positions the chunk no longer needs (duplicates found)
            items.extend(
                {"Put": {"TableName": self._events_table, "Item": item}}
                for item in self._tombstones(tenant, range(len(pending), tenant.size))
            )
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

    @staticmethod
    def _row_attributes(event_id: str, doc_name: str, doc_value: Any, expires_at: int) -> Item:
        """What a log row holds besides its keys: the event (its filters are read from the document, so
        the row carries no copies of them: DynamoDB bills every byte of it, twice per event)."""
        return {"kind": s("event"), "id": s(event_id), "expires_at": n(expires_at), doc_name: doc_value}

    def _tombstones(self, take: Take, offsets: range) -> list[Item]:
        expires_at = int(take.at_ms / 1000) + self._retention_seconds
        return [
            {
                "pk": s(take.log_key),
                "sk": n(take.first + offset),
                "kind": s("tombstone"),
                "prev_at": n(take.prev_at_ms),
                "expires_at": n(expires_at),
            }
            for offset in offsets
        ]

    def _release(self, take: Take, *, committed_maybe: bool = False) -> None:
        """Tombstone held positions a failed commit left empty, so readers need not wait for the deadline.

        After a cancelled transaction nothing was written, so plain batched puts are safe. After any other
        failure the commit may still have landed, so each tombstone is conditional on the position being
        empty: it can never overwrite an event. Best effort: if this fails, readers fence after the deadline.
        """
        items = self._tombstones(take, range(take.size))
        try:
            if committed_maybe:
                for item in items:
                    try:
                        self._client.put_item(
                            TableName=self._events_table,
                            Item=item,
                            ConditionExpression="attribute_not_exists(pk)",
                        )
                    except ClientError as exc:
                        if error_code(exc) != "ConditionalCheckFailedException":
                            raise
                return
            for start in range(0, len(items), 25):
                self._client.batch_write_item(
                    RequestItems={
                        self._events_table: [
                            {"PutRequest": {"Item": item}} for item in items[start : start + 25]
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
        return classify_cancellation(reasons, item_roles(pending, guard, allocation), allocation)

    def _claimed_ids(self, draft: EventDraft, old_item: Item) -> list[str]:
        """The event ids an earlier delivery of `draft` was stored under."""
        if not old_item and draft.delivery_id is not None:
            return self.logged_as(draft.connection_id, draft.delivery_id)
        return [value["S"] for value in old_item.get("event_ids", {}).get("L", [])]

    def logged_as(self, connection_id: str, delivery_id: str) -> list[str]:
        """The event ids a delivery was logged as (its dedupe claim, read consistently); [] if it was not."""
        with storage_errors():
            item = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": s(dedupe_key(connection_id, delivery_id)), "sk": n(0)},
                ConsistentRead=True,
            ).get("Item", {})
        return [value["S"] for value in item.get("event_ids", {}).get("L", [])]
