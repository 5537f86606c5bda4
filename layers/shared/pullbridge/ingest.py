"""The webhook path: verify over the raw bytes, normalize, and log each event once per delivery.

Budget: one DynamoDB request per warm webhook (one transaction, which moves the log head itself). The
connection is cached per Lambda instance, and the commit carries a guard on the connection's version,
so a cached copy can never let through a webhook that the current connection would reject.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullbridge.clock import Clock, system_clock, to_iso
from pullbridge.connection_records import StoredConnection, load_connection
from pullbridge.errors import NotFound, PayloadTooLarge, StorageUnavailable
from pullbridge.hashing import content_hash
from pullbridge.providers import get_provider
from pullbridge.providers.base import NormalizedEvent, Provider, WebhookRequest
from pullbridge.storage import (
    AppendResult,
    ConnectionChanged,
    ConnectionGuard,
    EventDraft,
    RecordChange,
    SnapshotChange,
    Store,
)

MAX_BODY_BYTES = 1024 * 1024
CONNECTION_CACHE_SECONDS = 300.0
MAX_SNAPSHOT_ID_CHARS = 8_192
"""A record id longer than any provider issues: its event is logged, but it keeps no snapshot (which
must fit one DynamoDB item beside the commit), so the next scan reports it again."""


class ConnectionCache:
    """Connections by id, for `CONNECTION_CACHE_SECONDS`. Unknown ids are never cached, so a connection
    created a moment ago works at once; stale entries are caught by the commit's guard."""

    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self._store = store
        self._clock = clock
        self._entries: dict[str, tuple[float, StoredConnection]] = {}

    def get(self, connection_id: str, *, fresh: bool = False) -> StoredConnection | None:
        now = self._clock()
        entry = self._entries.get(connection_id)
        if entry and not fresh and now - entry[0] < CONNECTION_CACHE_SECONDS:
            return entry[1]
        connection = load_connection(self._store, connection_id)
        if connection is None:
            self._entries.pop(connection_id, None)
        else:
            self._entries[connection_id] = (now, connection)
        return connection


@dataclass(frozen=True)
class WebhookOutcome:
    event_ids: list[str]
    duplicates: int


def _document(connection: StoredConnection, event: NormalizedEvent, received_at: str) -> dict[str, object]:
    return {
        "connection_id": connection.id,
        "provider": connection.provider,
        "collection": event.collection,
        "type": event.type,
        "action": event.action,
        "record_id": event.record_id,
        "source": "webhook",
        "pull_id": None,
        "occurred_at": to_iso(event.occurred_at) if event.occurred_at is not None else None,
        "received_at": received_at,
        "data": event.data,
    }


def _snapshot_change(connection: StoredConnection, event: NormalizedEvent) -> SnapshotChange | None:
    """The record as the webhook shows it is the record as the list API shows it (Stripe, Shopify): the
    next full scan then finds it unchanged instead of announcing the same change again."""
    if event.collection is None or event.record_id is None or len(event.record_id) > MAX_SNAPSHOT_ID_CHARS:
        return None
    digest = None if event.action == "deleted" else content_hash(event.data)
    return SnapshotChange(connection.id, event.collection, event.record_id, digest)


def _record_change(
    connection: StoredConnection, provider: Provider, event: NormalizedEvent
) -> RecordChange | None:
    """A webhook that carries the whole object makes it the record's latest state (a delete keeps the
    record as a tombstone), unless the record already holds a newer version (a stale delivery). One
    without the object, but with a version, is only checked against the record's."""
    if event.collection is None or event.record_id is None or len(event.record_id) > MAX_SNAPSHOT_ID_CHARS:
        return None
    if not provider.webhook_carries_records:
        # No object (HubSpot's property changes): its version is still checked, so an older one is stale.
        if event.version is None:
            return None
        return RecordChange(
            connection.id, event.collection, event.record_id, None, version=event.version, check_only=True
        )
    updated = provider.record_version(event.data)
    return RecordChange(
        connection.id,
        event.collection,
        event.record_id,
        event.data,
        deleted=event.action == "deleted",
        upstream_updated_at=to_iso(updated) if updated is not None else None,
        version=event.version,
    )


def handle_webhook(
    store: Store,
    connections: ConnectionCache,
    connection_id: str,
    request: WebhookRequest,
    *,
    clock: Clock = system_clock,
) -> WebhookOutcome:
    """Verify and log one delivery. Raises the contract's errors; nothing is stored unless it returns."""
    if len(request.body) > MAX_BODY_BYTES:
        raise PayloadTooLarge("the body is over 1 MiB", data={"limit_bytes": MAX_BODY_BYTES})
    fresh = False
    for _ in range(2):
        connection = connections.get(connection_id, fresh=fresh)
        if connection is None or connection.archived_at:
            raise NotFound(f"no connection {connection_id}", key="connection_not_found")
        provider = get_provider(connection.provider)
        now = clock()
        provider.verify(request, connection.webhook_secrets, connection.settings, now)
        received_at = to_iso(now)
        refreshes_snapshot = provider.webhook_matches_list_representation
        drafts = [
            EventDraft(
                connection.id,
                _document(connection, event, received_at),
                delivery_id=event.delivery_id,
                snapshot=_snapshot_change(connection, event) if refreshes_snapshot else None,
                record=_record_change(connection, provider, event)
                if provider.webhook_carries_records
                else None,
            )
            for event in provider.normalize(request, connection.settings)
        ]
        try:
            result: AppendResult = store.append(
                connection.tenant_id,
                connection.id,
                drafts,
                guard=ConnectionGuard(connection.id, connection.version),
            )
        except ConnectionChanged:
            fresh = True  # edited or archived since it was cached: verify again against the current one
            continue
        return WebhookOutcome(
            event_ids=result.event_ids + result.duplicate_event_ids, duplicates=result.duplicates
        )
    raise StorageUnavailable("the connection is changing; retry", key="connection_changing")
