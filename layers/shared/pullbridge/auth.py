"""Tenants and API keys. Keys are random 240-bit tokens stored only as SHA-256 hashes.

A fast hash is the right tool here: the keys are high-entropy secrets, not passwords, so there is no
dictionary to slow down, and every API call must look its key up in one consistent read.
"""

from __future__ import annotations

import hashlib
import secrets

from pullbridge.clock import Clock, system_clock, to_iso
from pullbridge.errors import Conflict, NotFound, Unauthorized
from pullbridge.storage import Store, keys

KEY_PREFIX = "pb_"


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def issue_api_key(
    store: Store,
    tenant_id: str,
    *,
    key: str | None = None,
    name: str = "default",
    clock: Clock = system_clock,
) -> str:
    """Create the tenant if needed and bind a key to it. Re-issuing the same key to the same tenant is a
    no-op, so the local stack can reuse a fixed `PULLBRIDGE_API_KEY` across restarts."""
    api_key = key or new_api_key()
    if len(api_key) < 20:
        raise ValueError("an API key must be at least 20 characters")
    now = to_iso(clock())
    key_hash = hash_api_key(api_key)
    store.put_control(
        keys.tenant_pk(tenant_id), keys.TENANT_SK, {"id": tenant_id, "created_at": now}, only_if_new=True
    )
    created = store.put_control(
        keys.api_key_pk(key_hash),
        keys.API_KEY_SK,
        {"tenant_id": tenant_id, "name": name, "created_at": now},
        index=(keys.api_keys_index(tenant_id), f"{now}#{key_hash[:12]}"),
        only_if_new=True,
    )
    if not created:
        existing = store.get_control(keys.api_key_pk(key_hash), keys.API_KEY_SK)
        if not existing or existing.get("tenant_id") != tenant_id:
            raise Conflict("this API key already belongs to another tenant", key="api_key_taken")
    return api_key


def authenticate(store: Store, authorization: str | None) -> str:
    """The tenant of a `Bearer` API key, or `Unauthorized`."""
    scheme, _, api_key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not api_key.strip():
        raise Unauthorized("send 'Authorization: Bearer <api key>'", key="missing_api_key")
    record = store.get_control(keys.api_key_pk(hash_api_key(api_key.strip())), keys.API_KEY_SK)
    if record is None or record.get("revoked_at"):
        raise Unauthorized("the API key is not valid")
    return str(record["tenant_id"])


def revoke_api_key(store: Store, api_key_or_hash: str, *, clock: Clock = system_clock) -> str:
    """Revoke a key, given the key itself or its SHA-256 hash; returns its tenant. Takes effect at once:
    every call looks its key up with a consistent read."""
    key_hash = api_key_or_hash if _is_sha256_hex(api_key_or_hash) else hash_api_key(api_key_or_hash)
    record = store.get_control(keys.api_key_pk(key_hash), keys.API_KEY_SK)
    if record is None:
        raise NotFound("no such API key", key="api_key_not_found")
    if not record.get("revoked_at"):
        record["revoked_at"] = to_iso(clock())
        store.put_control(
            keys.api_key_pk(key_hash),
            keys.API_KEY_SK,
            record,
            index=(keys.api_keys_index(record["tenant_id"]), f"{record['created_at']}#{key_hash[:12]}"),
        )
    return str(record["tenant_id"])


def _is_sha256_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
