"""A connection as stored, and its lookup by id: all the webhook path needs of connections.

The API's side (create, update, archive, list, the public model) is `pullbridge.connections`; keeping
it apart keeps the API's models off the webhook path's imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pullbridge.storage import Store, keys

if TYPE_CHECKING:
    from pullbridge.models import Connection, ConnectionHealth


@dataclass(frozen=True)
class StoredConnection:
    id: str
    tenant_id: str
    provider: str
    name: str
    created_at: str
    updated_at: str
    version: int = 1
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_base_url: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    archived_at: str | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> StoredConnection:
        return cls(
            **{**document, "webhook_secrets": tuple(document.get("webhook_secrets", ()))},
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "provider": self.provider,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
            "webhook_secrets": list(self.webhook_secrets),
            "credentials": dict(self.credentials),
            "api_base_url": self.api_base_url,
            "settings": dict(self.settings),
            "metadata": dict(self.metadata),
            "archived_at": self.archived_at,
        }

    def public(self, webhook_base_url: str, health: ConnectionHealth | None = None) -> Connection:
        from pullbridge.models import Connection, ConnectionHealth  # only the API shows connections

        return Connection(
            health=health or ConnectionHealth(),
            id=self.id,
            provider=self.provider,
            name=self.name,
            status="archived" if self.archived_at else "active",
            webhook_url=f"{webhook_base_url.rstrip('/')}/webhooks/{self.id}",
            webhook_secrets_count=len(self.webhook_secrets),
            credentials_set=bool(self.credentials),
            api_base_url=self.api_base_url,
            settings=dict(self.settings),
            metadata=dict(self.metadata),
            created_at=self.created_at,
            updated_at=self.updated_at,
            archived_at=self.archived_at,
        )


def index_partition(tenant_id: str, *, archived: bool) -> str:
    return keys.connections_index(tenant_id, archived=archived)


def save_connection(store: Store, connection: StoredConnection, *, expected_version: int | None) -> bool:
    return store.put_control(
        keys.connection_pk(connection.id),
        keys.CONNECTION_SK,
        connection.to_document(),
        index=(
            index_partition(connection.tenant_id, archived=connection.archived_at is not None),
            f"{connection.created_at}#{connection.id}",
        ),
        attributes={"version": connection.version, "archived": connection.archived_at is not None},
        only_if_new=expected_version is None,
        expected_version=expected_version,
    )


def load_connection(store: Store, connection_id: str) -> StoredConnection | None:
    """Any tenant's connection by id: for the webhook path, which the signature authenticates."""
    document = store.get_control(keys.connection_pk(connection_id), keys.CONNECTION_SK)
    return StoredConnection.from_document(document) if document else None
