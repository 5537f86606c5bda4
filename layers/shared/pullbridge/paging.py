"""Newest-first pages of control records through the `by_tenant` index, with signed cursors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pullbridge.clock import Clock, system_clock
from pullbridge.cursors import Cursor, CursorCodec
from pullbridge.errors import InvalidCursor
from pullbridge.storage import Store


@dataclass(frozen=True)
class IndexPage:
    documents: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def page_index(
    store: Store,
    codec: CursorCodec,
    tenant_id: str,
    *,
    partition: str,
    scope: str,
    cursor: str | None,
    limit: int,
    sort_between: tuple[str, str] | None = None,
    equals: Mapping[str, str] | None = None,
    clock: Clock = system_clock,
) -> IndexPage:
    """One page, newest first. The cursor holds the index key of the last record returned."""
    after = None
    if cursor:
        position = codec.decode(cursor, tenant_id=tenant_id, scope=scope).position
        if position is not None:
            if not (
                isinstance(position, list)
                and len(position) == 3
                and all(isinstance(p, str) for p in position)
            ):
                raise InvalidCursor("the cursor is not valid", data={"field": "cursor"})
            after = (position[0], position[1], position[2])
    documents, next_key = store.query_control_index(
        partition, after=after, limit=limit, newest_first=True, sort_between=sort_between, equals=equals
    )
    if next_key is not None:
        next_cursor = codec.encode(Cursor(tenant_id, scope, list(next_key), clock()))
    elif cursor:
        next_cursor = cursor  # nothing further: the cursor that was sent
    else:
        next_cursor = codec.encode(Cursor(tenant_id, scope, list(after) if after else None, clock()))
    return IndexPage(documents, next_cursor, next_key is not None)
