"""Queries on the embedded DynamoDB that cost what their partition holds, not what the table holds.

moto answers a table `Query` by listing every item of the table, sorting them all, and keeping those of
the partition the key condition names: each `Query` costs O(n log n) in the table's size. On a table
with a tenant's 4,000-event log, a query of a consumer's few in-flight events took as long as a page of
the log, and every other tenant's data slowed every tenant's reads. DynamoDB finds a partition by its
key and reads only from it.

This keeps moto's own query code and its semantics (conditions, `Limit`, `ExclusiveStartKey`, the
1 MB page, filters, projections) and changes only the items it starts from: while a table's `Query`
without an index runs, the table's `all_items` lists the items of the queried partition only, which are
the only ones moto's query would keep. Index queries and scans are untouched.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.models.table import Table

_querying = threading.local()
_original_query = Table.query
_original_all_items = Table.all_items


def _query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name or hash_key is None or not self.range_key_attr:
        return _original_query(self, hash_key, *args, **kwargs)
    _querying.partition = (self, hash_key)
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        _querying.partition = None


def _all_items(self: Table) -> list[Any]:
    partition = getattr(_querying, "partition", None)
    if partition is None or partition[0] is not self:
        return _original_all_items(self)
    items = self.items.get(partition[1])
    return list(items.values()) if isinstance(items, dict) else []


def install() -> None:
    """Idempotent; every embedded DynamoDB server calls it before it serves."""
    if Table.query is _query:
        return
    Table.query = _query  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
