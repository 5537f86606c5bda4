"""Connections: one provider account each, with write-only secrets and credentials."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pullbridge.clock import Clock, system_clock, to_iso
from pullbridge.connection_records import StoredConnection, index_partition, load_connection, save_connection
from pullbridge.cursors import CursorCodec, scope_of
from pullbridge.errors import Conflict, NotFound, ValidationFailed
from pullbridge.health import healths
from pullbridge.ids import new_id
from pullbridge.models import Connection, ConnectionCreate, ConnectionPage, ConnectionUpdate
from pullbridge.paging import page_index
from pullbridge.providers import get_provider
from pullbridge.settings import OutboundSettings
from pullbridge.storage import Store
from pullbridge.urls import validate_base_url

__all__ = ["StoredConnection", "load_connection"]  # re-exported: the API's callers find them here too
_UPDATE_ATTEMPTS = 3


def _check_secrets(provider_name: str, secrets: list[str]) -> None:
    provider = get_provider(provider_name)
    for index, secret in enumerate(secrets):
        try:
            provider.validate_secret(secret)
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"webhook_secrets.{index}: {exc.message}",
                key=exc.key,
                data={"field": f"webhook_secrets.{index}"},
            ) from exc


def _check_settings(provider_name: str, settings: dict[str, Any]) -> dict[str, Any]:
    return get_provider(provider_name).validate_settings(settings)


def get_connection(store: Store, tenant_id: str, connection_id: str) -> StoredConnection:
    connection = load_connection(store, connection_id)
    if connection is None or connection.tenant_id != tenant_id:
        raise NotFound(f"no connection {connection_id}", key="connection_not_found")
    return connection


def public(store: Store, connection: StoredConnection, webhook_base_url: str) -> Connection:
    """The connection as the API shows it, with its health."""
    found = healths(store, connection.tenant_id, [connection.id])
    return connection.public(webhook_base_url, found[connection.id])


def create_connection(
    store: Store,
    settings: OutboundSettings,
    tenant_id: str,
    request: ConnectionCreate,
    *,
    clock: Clock = system_clock,
) -> StoredConnection:
    try:
        get_provider(request.provider)
    except KeyError as exc:
        raise ValidationFailed(
            f"provider: '{request.provider}' is not available in this deployment", data={"field": "provider"}
        ) from exc
    secrets = [secret.get_secret_value() for secret in request.webhook_secrets]
    _check_secrets(request.provider, secrets)
    now = to_iso(clock())
    connection = StoredConnection(
        id=new_id("conn"),
        tenant_id=tenant_id,
        provider=request.provider,
        name=request.name,
        created_at=now,
        updated_at=now,
        webhook_secrets=tuple(secrets),
        credentials={k: v.get_secret_value() for k, v in request.credentials.items()},
        api_base_url=(
            validate_base_url(request.api_base_url, allow_private=settings.allow_private_urls)
            if request.api_base_url
            else None
        ),
        settings=_check_settings(request.provider, request.settings),
        metadata=request.metadata,
    )
    if not save_connection(store, connection, expected_version=None):
        raise Conflict("a connection with this id already exists; retry", key="id_collision")
    return connection


def update_connection(
    store: Store,
    settings: OutboundSettings,
    tenant_id: str,
    connection_id: str,
    request: ConnectionUpdate,
    *,
    clock: Clock = system_clock,
) -> StoredConnection:
    """Rename, rotate secrets, change credentials, settings or metadata. Optimistic on `version`."""
    changes: dict[str, Any] = {}
    if request.name is not None:
        changes["name"] = request.name
    if request.metadata is not None:
        changes["metadata"] = request.metadata
    if request.credentials is not None:
        changes["credentials"] = {k: v.get_secret_value() for k, v in request.credentials.items()}
    if request.api_base_url is not None:
        changes["api_base_url"] = validate_base_url(
            request.api_base_url, allow_private=settings.allow_private_urls
        )
    for _ in range(_UPDATE_ATTEMPTS):
        current = get_connection(store, tenant_id, connection_id)
        if current.archived_at:
            raise Conflict("an archived connection cannot be changed", key="connection_archived")
        staged = dict(changes)
        if request.webhook_secrets is not None:
            secrets = [secret.get_secret_value() for secret in request.webhook_secrets]
            _check_secrets(current.provider, secrets)
            staged["webhook_secrets"] = tuple(secrets)
        if request.settings is not None:
            staged["settings"] = _check_settings(current.provider, request.settings)
        updated = replace(current, **staged, version=current.version + 1, updated_at=to_iso(clock()))
        if save_connection(store, updated, expected_version=current.version):
            return updated
    raise Conflict("the connection changed concurrently; retry", key="concurrent_update")


def archive_connection(
    store: Store, tenant_id: str, connection_id: str, *, clock: Clock = system_clock
) -> StoredConnection:
    """Archive: its webhooks get 404 from now on and its pulls stop; its events stay until they expire."""
    for _ in range(_UPDATE_ATTEMPTS):
        current = get_connection(store, tenant_id, connection_id)
        if current.archived_at:
            return current
        now = to_iso(clock())
        archived = replace(current, archived_at=now, updated_at=now, version=current.version + 1)
        if save_connection(store, archived, expected_version=current.version):
            return archived
    raise Conflict("the connection changed concurrently; retry", key="concurrent_update")


def list_connections(
    store: Store,
    codec: CursorCodec,
    tenant_id: str,
    *,
    cursor: str | None,
    limit: int,
    webhook_base_url: str,
    clock: Clock = system_clock,
) -> ConnectionPage:
    """Active connections, newest first."""
    page = page_index(
        store,
        codec,
        tenant_id,
        partition=index_partition(tenant_id, archived=False),
        scope=scope_of("connections", {}),
        cursor=cursor,
        limit=limit,
        clock=clock,
    )
    connections = [StoredConnection.from_document(document) for document in page.documents]
    found = healths(store, tenant_id, [connection.id for connection in connections])
    return ConnectionPage(
        data=[connection.public(webhook_base_url, found[connection.id]) for connection in connections],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )
