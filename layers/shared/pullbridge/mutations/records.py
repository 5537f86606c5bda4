"""Mutations as stored: one control record each, listed newest first per tenant, and the pointer from an
`Idempotency-Key` to the mutation it started."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pullbridge.clock import to_iso
from pullbridge.models import ErrorDetail
from pullbridge.mutations.models import Mutation
from pullbridge.storage import Store, keys

IDEMPOTENCY_WINDOW_SECONDS = 86_400
"""How long an `Idempotency-Key` names one mutation (24 h, as Stripe's)."""
MAX_STORED_RECORD_BYTES = 200_000
"""A record larger than this is not kept in the mutation (it is in the event and `GET /records`): the
mutation's item stays well inside DynamoDB's 400 KB."""


@dataclass
class StoredMutation:
    id: str
    tenant_id: str
    connection_id: str
    provider: str
    collection: str
    kind: str
    record_id: str | None
    created_at: float
    updated_at: float
    status: str = "pending"
    record: Any = None
    event_id: str | None = None
    error: dict[str, Any] | None = None
    attempts: int = 0

    def public(self) -> Mutation:
        return Mutation(
            id=self.id,
            connection_id=self.connection_id,
            collection=self.collection,
            kind=self.kind,
            record_id=self.record_id,
            status=self.status,
            record=self.record,
            event_id=self.event_id,
            error=ErrorDetail.model_validate(self.error) if self.error else None,
            created_at=to_iso(self.created_at),
            updated_at=to_iso(self.updated_at),
        )


def load_mutation(store: Store, tenant_id: str, mutation_id: str) -> StoredMutation | None:
    """The tenant's mutation; None when there is none, or it is another tenant's."""
    document = store.get_control(keys.mutation_pk(mutation_id), keys.MUTATION_SK)
    if document is None or document.get("tenant_id") != tenant_id:
        return None
    return StoredMutation(**document)


def save_mutation(store: Store, mutation: StoredMutation) -> None:
    document = dict(mutation.__dict__)
    if len(json.dumps(document["record"], separators=(",", ":"), default=str)) > MAX_STORED_RECORD_BYTES:
        document["record"] = None
    store.put_control(
        keys.mutation_pk(mutation.id),
        keys.MUTATION_SK,
        document,
        index=(keys.mutations_index(mutation.tenant_id), f"{to_iso(mutation.created_at)}#{mutation.id}"),
        attributes={
            "connection_id": mutation.connection_id,
            "status": mutation.status,
            "expires_at": int(mutation.created_at) + store.retention_seconds,
        },
    )


def mutation_for_key(store: Store, tenant_id: str, idempotency_key: str, now: float) -> str | None:
    """The id of the mutation `idempotency_key` started within the last 24 h, or None."""
    pointer = store.get_control(keys.mutation_key_pk(tenant_id, idempotency_key), keys.MUTATION_KEY_SK)
    if pointer is None or now - float(pointer["created_at"]) >= IDEMPOTENCY_WINDOW_SECONDS:
        return None
    return str(pointer["mutation_id"])


def point_key(store: Store, tenant_id: str, idempotency_key: str, mutation: StoredMutation) -> None:
    """Remember which mutation the key started (replacing one older than the window)."""
    store.put_control(
        keys.mutation_key_pk(tenant_id, idempotency_key),
        keys.MUTATION_KEY_SK,
        {"mutation_id": mutation.id, "created_at": mutation.created_at},
        attributes={"expires_at": int(mutation.created_at) + IDEMPOTENCY_WINDOW_SECONDS},
    )


def stored_error(document: Mapping[str, Any]) -> dict[str, Any]:
    """An error object as a mutation keeps it."""
    return {key: document[key] for key in ("type", "message", "key", "data")}
