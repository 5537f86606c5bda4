"""`GET /records`: the latest state of each upstream record of one connection's collection, in record id
order, paged by a signed cursor; `GET /records/{connection_id}/{collection}/{record_id}`: one record."""

from __future__ import annotations

from pullbridge.connections import get_connection
from pullbridge.cursors import Cursor, CursorCodec, scope_of
from pullbridge.errors import InvalidCursor, NotFound
from pullbridge.models import Record, RecordPage
from pullbridge.storage import Store, StoredRecord


def _public(record: StoredRecord, provider: str) -> Record:
    return Record.model_validate(
        {
            "connection_id": record.connection_id,
            "provider": provider,
            "collection": record.collection,
            "record_id": record.record_id,
            "data": record.data,
            "deleted": record.deleted,
            "first_seen_at": record.first_seen_at,
            "changed_at": record.changed_at,
            "upstream_updated_at": record.upstream_updated_at,
            "last_event_id": record.last_event_id,
        }
    )


def list_records(
    store: Store,
    codec: CursorCodec,
    tenant_id: str,
    *,
    connection_id: str,
    collection: str,
    cursor: str | None,
    limit: int,
    include_deleted: bool,
    now: float,
) -> RecordPage:
    """One page; another tenant's connection is as unknown as a missing one (404)."""
    connection = get_connection(store, tenant_id, connection_id)
    scope = scope_of(
        "records", {"connection_id": connection_id, "collection": collection, "deleted": include_deleted}
    )
    after: str | None = None
    if cursor:
        position = codec.decode(cursor, tenant_id=tenant_id, scope=scope).position
        if not isinstance(position, str):
            raise InvalidCursor("the cursor is not valid", data={"field": "cursor"})
        after = position or None
    records, last_key = store.records_page(
        connection_id, collection, after=after, limit=limit, include_deleted=include_deleted
    )
    # Past the last key read (a page cut short by tombstones goes on from there), or where it began.
    go_on = last_key if last_key is not None else after
    return RecordPage(
        data=[_public(record, connection.provider) for record in records],
        next_cursor=codec.encode(Cursor(tenant_id, scope, go_on or "", now)),
        has_more=last_key is not None,
    )


def get_record(store: Store, tenant_id: str, connection_id: str, collection: str, record_id: str) -> Record:
    connection = get_connection(store, tenant_id, connection_id)
    record = store.get_record(connection_id, collection, record_id)
    if record is None:
        raise NotFound(f"no record {record_id} in {collection}", key="record_not_found")
    return _public(record, connection.provider)
