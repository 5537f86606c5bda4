"""Transactions on the embedded DynamoDB that cost what they touch, not what the tables hold.

moto's `TransactWriteItems` backs up each table it touches with a deep copy, once per transaction item,
so that it can roll back. A transaction therefore costs O(items x table size): on a log of 10,000
events every webhook took seconds, and a backfill slowed down quadratically. DynamoDB has no such cost.

This keeps moto's own transaction code and its semantics (conditions, cancellation reasons, rollback)
and makes only the backup cheap: a new table object that shares every partition the transaction does not
name, with copies of the partitions and the items it names. That suffices because moto's `Put`
and `Delete` replace or remove index entries, and only `Update` changes an item object in place.

It also keeps `ClientRequestToken`, which moto ignores: as on DynamoDB, a `TransactWriteItems` that
repeats a token of the last 10 minutes' successful transactions succeeds again without writing anything
(with other parameters, it is refused with `IdempotentParameterMismatchException`). botocore sends the
same token with each retry of one call, so a retry after a timeout whose transaction landed (the fault
switch's `dynamodb.timeout`) succeeds, as it does on DynamoDB, instead of failing its own conditions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict, defaultdict
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

_prepared = threading.local()
_original_transact_write_items = DynamoDBBackend.transact_write_items
_original_transact_write_items_action = DynamoHandler.transact_write_items
_TOKEN_SECONDS = 600
_tokens: OrderedDict[str, tuple[float, str]] = OrderedDict()
"""Each successful transaction's token: when it completed, and a digest of its parameters."""
_tokens_lock = threading.Lock()


class IdempotentParameterMismatchException(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
            message="The request uses the same client token as a previous, but non-identical request.",
        )


class _BackupAwareCopy:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a deep copy of a table that a
    running transaction prepared a backup for returns that backup; anything else is deep-copied."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        backups: dict[int, Table] | None = getattr(_prepared, "backups", None)
        if backups and isinstance(value, Table) and id(value) in backups:
            return backups[id(value)]
        return copy.deepcopy(value, memo)


def _named_keys(table: Table, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    keys = []
    for operation in transact_items:
        request = next(iter(operation.values()))
        if request.get("TableName") != table.name:
            continue
        attributes = request.get("Key") or request.get("Item") or {}
        if table.hash_key_attr not in attributes:
            continue  # moto rejects it itself
        range_value = attributes.get(table.range_key_attr) if table.range_key_attr else None
        keys.append(
            (DynamoType(attributes[table.hash_key_attr]), DynamoType(range_value) if range_value else None)
        )
    return keys


def _backup(table: Table, transact_items: list[dict[str, Any]]) -> Table:
    """A table object to roll back to: the partition index copied (references, not partitions), and
    copies of just the partitions and items the transaction names, which are all it can change. Made
    without `copy.copy`, which would register the object in moto's instance list and keep every backup
    alive: the cost stays per transaction, not per table size or per transaction ever run."""
    backup = object.__new__(type(table))
    backup.__dict__.update(table.__dict__)
    items: defaultdict[Any, Any] = defaultdict(dict, table.items)
    for hash_value, range_value in _named_keys(table, transact_items):
        named = items.get(hash_value)
        if range_value is None:
            if named is not None and not isinstance(named, dict):
                items[hash_value] = copy.deepcopy(named)
        elif isinstance(named, dict):
            if named is table.items.get(hash_value):  # still shared with the live table: copy it first
                named = items[hash_value] = dict(named)
            if range_value in named:
                named[range_value] = copy.deepcopy(named[range_value])
    backup.items = items
    return backup


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    backups: dict[int, Table] = {}
    for operation in transact_items:
        table = self.tables.get(next(iter(operation.values())).get("TableName"))
        if table is not None and id(table) not in backups:
            backups[id(table)] = _backup(table, transact_items)
    _prepared.backups = backups
    try:
        _original_transact_write_items(self, transact_items)
    finally:
        _prepared.backups = None


def _idempotent_transact_write_items(self: DynamoHandler) -> Any:
    token = self.body.get("ClientRequestToken")
    if not token:
        return _original_transact_write_items_action(self)
    parameters = {name: value for name, value in self.body.items() if name != "ClientRequestToken"}
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=repr).encode()).hexdigest()
    with _tokens_lock:
        now = time.monotonic()
        while _tokens and next(iter(_tokens.values()))[0] < now - _TOKEN_SECONDS:
            _tokens.popitem(last=False)
        seen = _tokens.get(token)
    if seen is not None:
        if seen[1] != digest:
            raise IdempotentParameterMismatchException
        # What a successful transaction answers, without writing again.
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    result = _original_transact_write_items_action(self)
    with _tokens_lock:
        _tokens[token] = (time.monotonic(), digest)
    return result


def install() -> None:
    """Idempotent; every embedded DynamoDB server calls it before it serves."""
    if DynamoDBBackend.transact_write_items is _transact_write_items:
        return
    dynamodb_models.copy = _BackupAwareCopy()  # type: ignore[attr-defined,assignment]
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    DynamoHandler.transact_write_items = _idempotent_transact_write_items  # type: ignore[method-assign]
