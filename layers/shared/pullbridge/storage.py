"""The one module that speaks to DynamoDB. Nothing else imports boto3 or botocore.

Two tables (see docs/architecture.md):

EventsTable (pk S, sk N)
    T#<tenant>, 0                 the log head: `seq`, `alloc_at`, and per connection `c_<id>`, `a_<id>`
    T#<tenant>, <seq>             the tenant log: one row per position (an event or a tombstone)
    T#<tenant>#C#<conn>, <cseq>   the connection log: the same events, positioned per connection
    W#<conn>#<delivery>, 0        the dedupe claim of one provider delivery

ControlTable (pk S, sk S; GSI by_tenant on gsi1pk/gsi1sk)
    KEY#<sha256 of api key>, KEY  an API key's tenant
    CONN#<id>, CONN               a connection, listed per tenant through by_tenant

The log protocol: a writer takes positions with one atomic `ADD` on the head (`allocate`), then commits
the rows, the dedupe claim and a connection guard in one transaction whose every row is conditional on
the position still being empty. A reader never passes an empty position: it waits, or, once the
position is older than the write deadline, fences it with a conditional tombstone, so a late writer's
commit fails and retries at a new position instead of landing behind the reader.

The common case takes one request: a writer that knows the head (from its own last write) moves it
inside the commit itself, conditional on `seq` being what it knew. Every allocation moves `seq`, so a
commit that lands allocated exactly what it wrote, and one that fails allocated nothing. A stale view
costs one cancelled transaction, which returns the current head; after a second miss the writer falls
back to the `ADD`, and keeps to it for a while under such contention.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.errors import PayloadTooLarge, StorageUnavailable
from pullbridge.ids import new_event_id
from pullbridge.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef
else:
    DynamoDBClient = Any
    AttributeValueTypeDef = Any
    TransactWriteItemTypeDef = Any

Item = dict[str, Any]

HEAD_POSITION = 0
DUE_PARTITION = "DUE"
MAX_TRANSACTION_ITEMS = 98  # DynamoDB allows 100 items; two are kept for the connection guard and the head
MAX_TRANSACTION_BYTES = 3_500_000  # DynamoDB caps a transaction at 4 MB
MAX_ITEM_BYTES = 390_000  # DynamoDB caps an item at 400 KB
COMPRESS_ABOVE_BYTES = 32_000
MAX_FENCES_PER_READ = 100
MAX_COMMIT_ATTEMPTS = 6
MAX_HEAD_GUESSES = 2
"""Commits that move the head themselves, per chunk, before a writer falls back to `ADD`."""
HEAD_CONTENTION_SECONDS = 1.0
"""After its view goes stale that often, a writer takes positions by `ADD` for this long: a tenant that
many instances write at once would otherwise cost a cancelled transaction per webhook."""
MAX_KNOWN_HEADS = 10_000  # tenants whose head one instance remembers; past it, it starts over
MAX_ADD_ATTEMPTS = 4  # an ADD that meets another instance's commit on the head waits 5, 10, 20 ms
MAX_KEY_PART_BYTES = 512
"""A delivery or record id longer than this (in UTF-8) is keyed by its hash: DynamoDB caps a partition
key at 2,048 bytes and a sort key at 1,024, and a provider's ids are not ours to bound."""
HASHED_KEY_PREFIX = "#sha256:"
MAX_ATTRIBUTE_TEXT_BYTES = 1_024  # the plain copies of an event's fields on its log rows
MAX_READABLE_ID_BYTES = 4_096  # the original of a hashed delivery id, kept beside its claim

_RETRYABLE_CANCELLATIONS = {"TransactionConflict"}
_THROTTLING_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def dynamodb_client(endpoint_url: str | None = None) -> DynamoDBClient:
    """The DynamoDB client a function creates once per cold start and injects everywhere."""
    config = Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "total_max_attempts": 3},
        tcp_keepalive=True,
    )
    # botocore's session, not boto3's: the same client without importing boto3's resources and
    # s3transfer, about 20 ms of every cold start.
    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=endpoint_url, config=config
    )
    return cast("DynamoDBClient", client)


# --- attribute values -------------------------------------------------------------------------------


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": str(value)}


def _num(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value else default


def _str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value else None


def _tenant_log(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def _connection_log(tenant_id: str, connection_id: str) -> str:
    return f"T#{tenant_id}#C#{connection_id}"


def _snapshot_partition(connection_id: str, collection: str) -> str:
    return f"SNAP#{connection_id}#{collection}"


def _dedupe_key(connection_id: str, delivery_id: str) -> str:
    return f"W#{connection_id}#{key_part(delivery_id)}"


def key_part(value: str) -> str:
    """`value` as it may stand in a key: itself when it is short, valid UTF-8, else its SHA-256.

    Keys that look hashed are hashed again, so a provider's id can never collide with another's hash.
    """
    try:
        encoded = value.encode()
    except UnicodeEncodeError:  # a lone surrogate: DynamoDB strings must be valid UTF-8
        encoded = value.encode("utf-8", "surrogatepass")
    else:
        if len(encoded) <= MAX_KEY_PART_BYTES and not value.startswith(HASHED_KEY_PREFIX):
            return value
    return HASHED_KEY_PREFIX + hashlib.sha256(encoded).hexdigest()


def _readable_text(value: str, max_bytes: int) -> str:
    """`value` as a DynamoDB string for people to read: lone surrogates escaped as JSON escapes them,
    and cut to `max_bytes`. Only for copies; the event's own document keeps everything."""
    try:
        value.encode()
    except UnicodeEncodeError:
        value = json.dumps(value)[1:-1]
    if len(value) * 4 <= max_bytes:  # the common case: no need to measure
        return value
    return value.encode()[:max_bytes].decode(errors="ignore")


def _json_text(document: Mapping[str, Any]) -> tuple[str, bytes]:
    """The document as compact JSON text and its UTF-8 bytes.

    JSON may carry lone surrogates (`"\\ud83d"`, a truncated emoji) that UTF-8 cannot: such a document
    is written with every non-ASCII character escaped, the same JSON to any reader."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    try:
        return text, text.encode()
    except UnicodeEncodeError:
        text = json.dumps(document, separators=(",", ":"))
        return text, text.encode()


def _encode_document(document: Mapping[str, Any]) -> tuple[str, AttributeValueTypeDef]:
    text, encoded = _json_text(document)
    if len(encoded) <= COMPRESS_ABOVE_BYTES:
        return "doc", _s(text)
    packed = zlib.compress(encoded, 6)
    if len(packed) > MAX_ITEM_BYTES - 10_000:
        raise PayloadTooLarge("the event does not fit in the log even compressed", key="event_too_large")
    return "docz", {"B": packed}


def _decode_document(item: Item) -> dict[str, Any]:
    if "docz" in item:
        return json.loads(zlib.decompress(item["docz"]["B"]))  # type: ignore[no-any-return]
    return json.loads(item["doc"]["S"])  # type: ignore[no-any-return]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _storage_error(exc: Exception) -> StorageUnavailable:
    code = _error_code(exc) if isinstance(exc, ClientError) else ""
    kind = "throttled" if code in _THROTTLING_CODES else "failed"
    return StorageUnavailable(f"storage {kind}; retry later", data={"code": code} if code else {})


# --- the log -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotChange:
    """The full-scan snapshot of one record: its content hash, or None once it is deleted."""

    connection_id: str
    collection: str
    record_id: str
    content_hash: str | None


@dataclass(frozen=True)
class EventDraft:
    """An event ready to be logged; the log gives it an id and positions."""

    connection_id: str
    document: Mapping[str, Any]
    """The public event object without `id`."""
    delivery_id: str | None = None
    """Provider delivery id; events sharing one are stored once. None for pull events."""
    snapshot: SnapshotChange | None = None
    """Written in the same transaction as the event, so the snapshot never runs ahead of the log."""

    @property
    def transaction_items(self) -> int:
        return 2 + (self.delivery_id is not None) + (self.snapshot is not None)


@dataclass(frozen=True)
class LoggedEvent:
    position: int
    document: dict[str, Any]


@dataclass
class AppendResult:
    event_ids: list[str] = field(default_factory=list)
    duplicate_event_ids: list[str] = field(default_factory=list)
    duplicates: int = 0


@dataclass(frozen=True)
class ConnectionGuard:
    """The connection state a webhook was verified against; the commit fails if it has changed since."""

    connection_id: str
    version: int


class ConnectionChanged(Exception):
    """The guarded connection was archived or edited between verification and commit."""


@dataclass(frozen=True)
class _Allocation:
    tenant_id: str
    connection_id: str
    first_seq: int
    first_cseq: int
    size: int
    at_ms: int
    prev_at_ms: int
    prev_connection_at_ms: int
    expected_seq: int | None = None
    """Set when the commit itself moves the head, from this `seq`: nothing is taken until it lands."""

    @property
    def in_commit(self) -> bool:
        return self.expected_seq is not None


@dataclass
class _KnownHead:
    """A tenant's log head as this instance last saw it. `seq` versions the whole item: every allocation
    moves it, so while `seq` is unchanged, so are `alloc_at` and every connection's `c_`/`a_` pair."""

    seq: int
    alloc_at_ms: int
    connections: dict[str, tuple[int, int]] = field(default_factory=dict)
    """connection id -> (`c_<id>`, `a_<id>`)"""

    @classmethod
    def from_item(cls, item: Item) -> _KnownHead:
        connections = {
            name[2:]: (_num(item, name), _num(item, f"a_{name[2:]}"))
            for name in item
            if name.startswith("c_")
        }
        return cls(_num(item, "seq"), _num(item, "alloc_at"), connections)


@dataclass
class LogRead:
    events: list[LoggedEvent]
    position: int
    """Every position up to here is resolved: committed, tombstoned or expired."""
    exhausted: bool
    """True when nothing more is readable now (the end of the log, or a write still in flight)."""


@dataclass(frozen=True)
class LogRow:
    position: int
    kind: str
    prev_at_ms: int
    expires_at: int
    item: Item


class Store:
    """Every DynamoDB operation of pullbridge, over an injected client."""

    def __init__(self, client: DynamoDBClient, settings: Settings, *, clock: Any = time.time) -> None:
        self._client = client
        self._events_table = settings.events_table
        self._control_table = settings.control_table
        self._retention_seconds = settings.retention_days * 86_400
        self._deadline_ms = int(settings.write_deadline_seconds * 1000)
        self._clock = clock
        self._heads: dict[str, _KnownHead] = {}
        self._contended_until: dict[str, float] = {}

    @property
    def retention_seconds(self) -> int:
        return self._retention_seconds

    # -- writing ------------------------------------------------------------------------------------

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

    def _chunks(self, drafts: Sequence[EventDraft]) -> Iterator[list[tuple[EventDraft, str, Any]]]:
        chunk: list[tuple[EventDraft, str, Any]] = []
        size = 0
        for draft in drafts:
            name, value = _encode_document(draft.document)
            weight = 2 * len(value.get("S", value.get("B", b""))) + 1_000
            # A position a retry no longer needs becomes a 2-item tombstone: never more than its event.
            items = sum(d.transaction_items for d, _, _ in chunk) + draft.transaction_items
            if chunk and (items > MAX_TRANSACTION_ITEMS or size + weight > MAX_TRANSACTION_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append((draft, name, value))
            size += weight
        if chunk:
            yield chunk

    def _append_chunk(
        self,
        tenant_id: str,
        connection_id: str,
        chunk: list[tuple[EventDraft, str, Any]],
        guard: ConnectionGuard | None,
        result: AppendResult,
    ) -> None:
        pending = list(chunk)
        allocation: _Allocation | None = None
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
                if _error_code(exc) != "TransactionCanceledException":
                    self._abandon(allocation, committed_maybe=True)
                    raise _storage_error(exc) from exc
                outcome = self._classify_cancellation(exc, pending, guard, allocation)
                if outcome.guard_failed:
                    self._abandon(allocation)
                    raise ConnectionChanged(connection_id) from exc
                if outcome.unexpected:
                    self._abandon(allocation)
                    raise _storage_error(exc) from exc
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
                raise _storage_error(exc) from exc
            if allocation.in_commit:
                self._learn_allocation(allocation)
            result.event_ids.extend(event_ids)
            return
        if allocation:
            self._abandon(allocation)
        raise StorageUnavailable("the log is too contended; retry later", key="storage_contention")

    def _after_cancelled_head_move(
        self, tenant_id: str, outcome: Store._Cancellation, head_guesses: int
    ) -> int:
        """A commit that moved the head took nothing: learn the head the cancellation returned, if it
        moved, and count the miss. Returns the guesses left for this chunk."""
        if outcome.current_head is not None:
            self._heads[tenant_id] = _KnownHead.from_item(outcome.current_head)
        elif outcome.fenced:
            # Cannot happen while the view holds: trust it no more.
            self._heads.pop(tenant_id, None)
        if outcome.current_head is None and not outcome.conflict and not outcome.fenced:
            return head_guesses  # only duplicates: plan again for the rest
        if head_guesses <= 1:
            self._contended_until[tenant_id] = self._clock() + HEAD_CONTENTION_SECONDS
        return head_guesses - 1

    def _abandon(self, allocation: _Allocation, *, committed_maybe: bool = False) -> None:
        """Give up a commit: an `ADD` allocation is released. A head moved in the commit took nothing;
        its view stays true unless the commit may have landed after all."""
        if allocation.in_commit:
            if committed_maybe:
                self._heads.pop(allocation.tenant_id, None)
        else:
            self._release(allocation, committed_maybe=committed_maybe)

    def _allocate_in_commit(self, tenant_id: str, connection_id: str, size: int) -> _Allocation | None:
        """Positions the commit takes itself, from the head this instance knows; None if it knows none."""
        head = self._heads.get(tenant_id)
        if head is None or connection_id not in head.connections:
            return None
        now = self._clock()
        if self._contended_until.get(tenant_id, 0.0) > now:
            return None
        cseq, connection_at_ms = head.connections[connection_id]
        return _Allocation(
            tenant_id=tenant_id,
            connection_id=connection_id,
            first_seq=head.seq + 1,
            first_cseq=cseq + 1,
            size=size,
            at_ms=int(now * 1000),
            prev_at_ms=head.alloc_at_ms,
            prev_connection_at_ms=connection_at_ms,
            expected_seq=head.seq,
        )

    def _learn_allocation(self, allocation: _Allocation) -> None:
        """The head as an allocation left it: an `ADD` once it returns, a move in a commit once it lands."""
        head = self._heads.get(allocation.tenant_id)
        if head is None or head.seq != allocation.first_seq - 1:
            # Someone else allocated since this view: only what this allocation moved is known.
            if len(self._heads) >= MAX_KNOWN_HEADS:
                self._heads.clear()
                self._contended_until.clear()
            head = self._heads[allocation.tenant_id] = _KnownHead(0, 0)
        head.seq = allocation.first_seq + allocation.size - 1
        head.alloc_at_ms = allocation.at_ms
        head.connections[allocation.connection_id] = (
            allocation.first_cseq + allocation.size - 1,
            allocation.at_ms,
        )

    def _allocate(self, tenant_id: str, connection_id: str, size: int) -> _Allocation:
        for attempt in range(MAX_ADD_ATTEMPTS):
            now_ms = int(self._clock() * 1000)
            try:
                response = self._client.update_item(
                    TableName=self._events_table,
                    Key={"pk": _s(_tenant_log(tenant_id)), "sk": _n(HEAD_POSITION)},
                    UpdateExpression="ADD #seq :size, #cseq :size SET #at = :now, #cat = :now",
                    ExpressionAttributeNames={
                        "#seq": "seq",
                        "#cseq": f"c_{connection_id}",
                        "#at": "alloc_at",
                        "#cat": f"a_{connection_id}",
                    },
                    ExpressionAttributeValues={":size": _n(size), ":now": _n(now_ms)},
                    ReturnValues="UPDATED_OLD",
                )
                break
            except ClientError as exc:
                # Another instance's commit is moving the head right now; DynamoDB refuses a plain write
                # to an item in a transaction, and botocore does not retry that. It is over in milliseconds.
                if _error_code(exc) == "TransactionConflictException" and attempt + 1 < MAX_ADD_ATTEMPTS:
                    time.sleep(0.005 * 2**attempt)
                    continue
                raise _storage_error(exc) from exc
            except BotoCoreError as exc:
                raise _storage_error(exc) from exc
        old = response.get("Attributes", {})
        allocation = _Allocation(
            tenant_id=tenant_id,
            connection_id=connection_id,
            first_seq=_num(old, "seq") + 1,
            first_cseq=_num(old, f"c_{connection_id}") + 1,
            size=size,
            at_ms=now_ms,
            prev_at_ms=_num(old, "alloc_at"),
            prev_connection_at_ms=_num(old, f"a_{connection_id}"),
        )
        self._learn_allocation(allocation)  # the `ADD` itself moved the head, whatever the commit does
        return allocation

    def _commit_items(
        self,
        allocation: _Allocation,
        pending: list[tuple[EventDraft, str, Any]],
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
                        "Key": {"pk": _s(f"CONN#{guard.connection_id}"), "sk": _s("CONN")},
                        "ConditionExpression": "#v = :v AND #archived = :no",
                        "ExpressionAttributeNames": {"#v": "version", "#archived": "archived"},
                        "ExpressionAttributeValues": {":v": _n(guard.version), ":no": {"BOOL": False}},
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
                items.append(self._snapshot_write(draft.snapshot))
            row = self._row_attributes(draft, event_id, doc_name, doc_value, expires_at)
            for log_key, position, other, prev_at in (
                (_tenant_log(allocation.tenant_id), seq, cseq, allocation.prev_at_ms),
                (
                    _connection_log(allocation.tenant_id, allocation.connection_id),
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
                                "pk": _s(log_key),
                                "sk": _n(position),
                                "other_position": _n(other),
                                "prev_at": _n(prev_at),
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
        pk = _dedupe_key(connection_id, delivery_id)
        item: Item = {
            "pk": _s(pk),
            "sk": _n(0),
            "event_ids": {"L": [_s(event_id)]},
            "expires_at": _n(expires_at),
        }
        if not pk.endswith(delivery_id):  # keyed by its hash: keep the id itself for whoever looks
            item["delivery_id"] = _s(_readable_text(delivery_id, MAX_READABLE_ID_BYTES))
        return {
            "Put": {
                "TableName": self._events_table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _head_move(self, allocation: _Allocation) -> TransactWriteItemTypeDef:
        return {
            "Update": {
                "TableName": self._events_table,
                "Key": {"pk": _s(_tenant_log(allocation.tenant_id)), "sk": _n(HEAD_POSITION)},
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
                    ":seq": _n(allocation.first_seq + allocation.size - 1),
                    ":cseq": _n(allocation.first_cseq + allocation.size - 1),
                    ":now": _n(allocation.at_ms),
                    ":expected": _n(allocation.expected_seq or 0),
                    ":cexpected": _n(allocation.first_cseq - 1),
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
            "kind": _s("event"),
            "id": _s(event_id),
            "connection_id": _s(draft.connection_id),
            "provider": _s(str(document.get("provider"))),
            "type": _s(_readable_text(str(document.get("type")), MAX_ATTRIBUTE_TEXT_BYTES)),
            "source": _s(str(document.get("source"))),
            "expires_at": _n(expires_at),
            doc_name: doc_value,
        }
        if document.get("collection"):
            row["collection"] = _s(_readable_text(str(document["collection"]), MAX_ATTRIBUTE_TEXT_BYTES))
        return row

    def _tombstone_puts(self, allocation: _Allocation, offset: int) -> list[TransactWriteItemTypeDef]:
        expires_at = int(allocation.at_ms / 1000) + self._retention_seconds
        puts: list[TransactWriteItemTypeDef] = []
        for log_key, position, prev_at in (
            (_tenant_log(allocation.tenant_id), allocation.first_seq + offset, allocation.prev_at_ms),
            (
                _connection_log(allocation.tenant_id, allocation.connection_id),
                allocation.first_cseq + offset,
                allocation.prev_connection_at_ms,
            ),
        ):
            puts.append(
                {
                    "Put": {
                        "TableName": self._events_table,
                        "Item": {
                            "pk": _s(log_key),
                            "sk": _n(position),
                            "kind": _s("tombstone"),
                            "prev_at": _n(prev_at),
                            "expires_at": _n(expires_at),
                        },
                    }
                }
            )
        return puts

    def _release(self, allocation: _Allocation, *, committed_maybe: bool = False) -> None:
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
                        if _error_code(exc) != "ConditionalCheckFailedException":
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

    @dataclass
    class _Cancellation:
        duplicates: dict[int, Item] = field(default_factory=dict)
        current_head: Item | None = None
        """The head, when a commit that moved it found it moved by someone else."""
        guard_failed: bool = False
        fenced: bool = False
        conflict: bool = False
        unexpected: bool = False

    def _classify_cancellation(
        self,
        exc: ClientError,
        pending: list[tuple[EventDraft, str, Any]],
        guard: ConnectionGuard | None,
        allocation: _Allocation,
    ) -> Store._Cancellation:
        reasons = exc.response.get("CancellationReasons") or []
        outcome = Store._Cancellation()
        roles = self._item_roles(pending, guard, head=allocation.in_commit)
        for index, reason in enumerate(reasons):
            code = reason.get("Code", "None")
            if code in ("None", None):
                continue
            role, draft_index = roles[index] if index < len(roles) else ("tombstone", -1)
            if code == "ConditionalCheckFailed":
                if role == "head":
                    outcome.current_head = dict(reason.get("Item", {}))
                elif role == "guard":
                    outcome.guard_failed = True
                elif role == "claim":
                    outcome.duplicates[draft_index] = dict(reason.get("Item", {}))
                elif role == "row":
                    outcome.fenced = True
                else:
                    outcome.unexpected = True
            elif code in _RETRYABLE_CANCELLATIONS:
                outcome.conflict = True
            else:
                outcome.unexpected = True
        if not reasons:
            outcome.unexpected = True
        return outcome

    @staticmethod
    def _item_roles(
        pending: list[tuple[EventDraft, str, Any]], guard: ConnectionGuard | None, *, head: bool
    ) -> list[tuple[str, int]]:
        roles: list[tuple[str, int]] = [("head", -1)] if head else []
        if guard is not None:
            roles.append(("guard", -1))
        for index, (draft, _, _) in enumerate(pending):
            if draft.delivery_id is not None:
                roles.append(("claim", index))
            if draft.snapshot is not None:
                roles.append(("snapshot", index))
            roles.extend([("row", index), ("row", index)])
        return roles

    def _claimed_ids(self, draft: EventDraft, old_item: Item) -> list[str]:
        """The event ids an earlier delivery of `draft` was stored under."""
        if not old_item and draft.delivery_id is not None:
            try:
                old_item = self._client.get_item(
                    TableName=self._events_table,
                    Key={"pk": _s(_dedupe_key(draft.connection_id, draft.delivery_id)), "sk": _n(0)},
                    ConsistentRead=True,
                ).get("Item", {})
            except (ClientError, BotoCoreError) as exc:
                raise _storage_error(exc) from exc
        return [value["S"] for value in old_item.get("event_ids", {}).get("L", [])]

    # -- reading ------------------------------------------------------------------------------------

    def read_log(self, tenant_id: str, connection_id: str | None, after: int, max_rows: int) -> LogRead:
        """Read up to `max_rows` positions after `after`, never passing an unresolved one.

        `connection_id` selects that connection's log; None, the tenant log.
        """
        log_key = (
            _tenant_log(tenant_id) if connection_id is None else _connection_log(tenant_id, connection_id)
        )
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
                    document = _decode_document(row.item)
                    document["id"] = row.item["id"]["S"]
                    events.append(LoggedEvent(row.position, document))
                position = row.position
            else:
                if not more_stored:
                    return LogRead(events, position, exhausted=True)
        return LogRead(events, position, exhausted=False)

    def _query_rows(self, log_key: str, after: int, limit: int) -> tuple[list[LogRow], bool]:
        try:
            response = self._client.query(
                TableName=self._events_table,
                KeyConditionExpression="pk = :pk AND sk > :after",
                ExpressionAttributeValues={":pk": _s(log_key), ":after": _n(after)},
                ConsistentRead=True,
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
        rows = [
            LogRow(
                position=_num(item, "sk"),
                kind=_str(item, "kind") or "event",
                prev_at_ms=_num(item, "prev_at"),
                expires_at=_num(item, "expires_at"),
                item=item,
            )
            for item in response.get("Items", [])
        ]
        return rows, "LastEvaluatedKey" in response

    def _judge_gap(self, log_key: str, first_missing: int, successor: LogRow, fences_left: int) -> str:
        """Decide what the empty positions before `successor` mean: "wait", "skip" or "raced".

        Every missing position was allocated no later than `successor.prev_at_ms`, because allocations
        are serialised by the atomic `ADD` and a transaction commits its whole allocation or nothing.
        """
        now_ms = int(self._clock() * 1000)
        age_ms = now_ms - successor.prev_at_ms
        if age_ms > self._retention_seconds * 1000:
            return "skip"  # allocated before the retention window: expired and deleted, or never written
        if age_ms <= self._deadline_ms:
            return "wait"  # a writer may still be committing
        missing = range(first_missing, successor.position)
        if len(missing) > fences_left:
            return "wait"
        expires_at = int(successor.prev_at_ms / 1000) + self._retention_seconds
        for position in missing:
            try:
                self._client.put_item(
                    TableName=self._events_table,
                    Item={
                        "pk": _s(log_key),
                        "sk": _n(position),
                        "kind": _s("tombstone"),
                        "prev_at": _n(successor.prev_at_ms),
                        "expires_at": _n(expires_at),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                # Either a commit filled the position first, or one is filling it right now (DynamoDB
                # refuses a plain write to an item in a transaction): read again from here.
                if _error_code(exc) in ("ConditionalCheckFailedException", "TransactionConflictException"):
                    return "raced"
                raise _storage_error(exc) from exc
            except BotoCoreError as exc:
                raise _storage_error(exc) from exc
        return "skip"

    def log_head(self, tenant_id: str, connection_id: str | None, *, consistent: bool = True) -> int:
        """The last position allocated in a log (committed or not): a cheap "anything new?" probe.

        `consistent=False` costs half a read unit and may lag a write by a moment: right for a probe whose
        "yes" is followed by a consistent read of the log itself, and whose "no" is asked again soon."""
        attribute = "seq" if connection_id is None else f"c_{connection_id}"
        try:
            response = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": _s(_tenant_log(tenant_id)), "sk": _n(HEAD_POSITION)},
                ProjectionExpression="#a",
                ExpressionAttributeNames={"#a": attribute},
                ConsistentRead=consistent,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
        return _num(response.get("Item", {}), attribute)

    def get_event(self, tenant_id: str, position: int) -> dict[str, Any] | None:
        try:
            item = self._client.get_item(
                TableName=self._events_table,
                Key={"pk": _s(_tenant_log(tenant_id)), "sk": _n(position)},
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
        if not item or _str(item, "kind") != "event" or _num(item, "expires_at") <= self._clock():
            return None
        document = _decode_document(item)
        document["id"] = item["id"]["S"]
        return document

    def check_reachable(self) -> None:
        """One strongly consistent read of a key that never exists: `StorageUnavailable` unless
        DynamoDB answers (readiness, `GET /health?deep=true`)."""
        self.get_control("HEALTH", "HEALTH")

    # -- control records ------------------------------------------------------------------------------

    def get_control(self, pk: str, sk: str) -> dict[str, Any] | None:
        """A control record's JSON document, or None."""
        try:
            item = self._client.get_item(
                TableName=self._control_table, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
        return _control_document(item) if item else None

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
        item: Item = {"pk": _s(pk), "sk": _s(sk), "doc": _s(json.dumps(document, separators=(",", ":")))}
        if index is not None:
            item["gsi1pk"], item["gsi1sk"] = _s(index[0]), _s(index[1])
        if due_at is not None:
            item["gsi2pk"], item["gsi2sk"] = _s(DUE_PARTITION), _s(due_at)
        for name, value in (attributes or {}).items():
            item[name] = _plain_attribute(value)
        request: dict[str, Any] = {"TableName": self._control_table, "Item": item}
        if only_if_new:
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        elif expected_version is not None:
            request["ConditionExpression"] = "#v = :v"
            request["ExpressionAttributeNames"] = {"#v": "version"}
            request["ExpressionAttributeValues"] = {":v": _n(expected_version)}
        try:
            self._client.put_item(**request)
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _storage_error(exc) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc) from exc
        return True

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
        values: dict[str, Any] = {":p": _s(partition)}
        if sort_between is not None:
            condition += " AND gsi1sk BETWEEN :low AND :high"
            values[":low"], values[":high"] = _s(sort_between[0]), _s(sort_between[1])
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
            values.update({f":f{i}": _s(value) for i, value in enumerate(equals.values())})
        if after is not None:
            request["ExclusiveStartKey"] = {
                "pk": _s(after[0]),
                "sk": _s(after[1]),
                "gsi1pk": _s(partition),
                "gsi1sk": _s(after[2]),
            }
        try:
            response = self._client.query(**request)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
        items = response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        next_key = (last["pk"]["S"], last["sk"]["S"], last["gsi1sk"]["S"]) if last and items else None
        return [_control_document(item) for item in items], next_key

    def delete_control(self, pk: str, sk: str) -> None:
        try:
            self._client.delete_item(TableName=self._control_table, Key={"pk": _s(pk), "sk": _s(sk)})
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc

    def query_due(self, until: str, *, limit: int) -> list[str]:
        """Partition keys of the records in the sparse `by_due` index due at or before `until`."""
        try:
            response = self._client.query(
                TableName=self._control_table,
                IndexName="by_due",
                KeyConditionExpression="gsi2pk = :due AND gsi2sk <= :until",
                ExpressionAttributeValues={":due": _s(DUE_PARTITION), ":until": _s(until)},
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
        return [item["pk"]["S"] for item in response.get("Items", [])]

    # -- full-scan snapshots --------------------------------------------------------------------------

    def _snapshot_write(self, change: SnapshotChange) -> TransactWriteItemTypeDef:
        sort_key = key_part(change.record_id)
        key = {
            "pk": _s(_snapshot_partition(change.connection_id, key_part(change.collection))),
            "sk": _s(sort_key),
        }
        if change.content_hash is None:
            return {"Delete": {"TableName": self._control_table, "Key": key}}
        item = {**key, "h": _s(change.content_hash)}
        if sort_key != change.record_id:  # keyed by its hash: the id itself, for the scan's delete check
            item["rid"] = _s(json.dumps(change.record_id))
        return {"Put": {"TableName": self._control_table, "Item": item}}

    def load_snapshot(self, connection_id: str, collection: str) -> dict[str, str]:
        """Every record's content hash for one collection of a connection: record id -> hash."""
        snapshot: dict[str, str] = {}
        request: dict[str, Any] = {
            "TableName": self._control_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {
                ":pk": _s(_snapshot_partition(connection_id, key_part(collection)))
            },
            "ProjectionExpression": "sk, h, rid",
            "ConsistentRead": True,
        }
        try:
            while True:
                response = self._client.query(**request)
                for item in response.get("Items", []):
                    record_id = json.loads(item["rid"]["S"]) if "rid" in item else item["sk"]["S"]
                    snapshot[record_id] = item["h"]["S"]
                if "LastEvaluatedKey" not in response:
                    return snapshot
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc

    def write_snapshots(self, changes: Sequence[SnapshotChange]) -> None:
        """Snapshot changes that come with no event (a silent baseline), 25 to a request."""
        requests = []
        for change in changes:
            write = self._snapshot_write(change)
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
            try:
                response = self._client.batch_write_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as exc:
                raise _storage_error(exc) from exc
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise StorageUnavailable("storage kept throttling a batch write; retry later")

    # -- blobs: a pull's seen-set across invocations ------------------------------------------------------

    def save_blob(self, pk: str, name: str, data: bytes) -> None:
        """Store `data` compressed under `pk`, in as many items as it takes."""
        packed = zlib.compress(data, 6)
        chunk = MAX_ITEM_BYTES - 10_000
        parts = [packed[start : start + chunk] for start in range(0, len(packed), chunk)] or [b""]
        for index, part in enumerate(parts):
            try:
                self._client.put_item(
                    TableName=self._control_table,
                    Item={
                        "pk": _s(pk),
                        "sk": _s(f"{name}#{index:05d}"),
                        "b": {"B": part},
                        # Only a scan in progress needs it; TTL clears what a finished scan left behind.
                        "expires_at": _n(int(self._clock()) + self._retention_seconds),
                    },
                )
            except (ClientError, BotoCoreError) as exc:
                raise _storage_error(exc) from exc

    def load_blob(self, pk: str, name: str) -> bytes | None:
        request: dict[str, Any] = {
            "TableName": self._control_table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :name)",
            "ExpressionAttributeValues": {":pk": _s(pk), ":name": _s(f"{name}#")},
            "ConsistentRead": True,
        }
        parts: list[bytes] = []
        try:
            while True:
                response = self._client.query(**request)
                parts.extend(item["b"]["B"] for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
        return zlib.decompress(b"".join(parts)) if parts else None


def _plain_attribute(value: Any) -> AttributeValueTypeDef:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return _n(value)
    return _s(str(value))


def _control_document(item: Item) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(item["doc"]["S"])
    return document
