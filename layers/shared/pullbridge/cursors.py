"""Opaque, tamper-evident cursors, bound to a tenant and to the filters they were made with.

A cursor is `base64url(json payload) "." base64url(HMAC-SHA256(secret, payload))`. The payload holds the
tenant, a fingerprint of the filters (its "scope"), the log position and `at`: the time of the newest
event it covers, which decides when it is older than retention (410).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pullbridge.errors import InvalidCursor

_VERSION = 1
_MAC_BYTES = 20


@dataclass(frozen=True)
class Cursor:
    tenant_id: str
    scope: str
    position: Any
    at: float


def scope_of(kind: str, filters: Mapping[str, object]) -> str:
    """A short fingerprint of what a cursor lists: the resource and its filters, in canonical form."""
    canonical = json.dumps(
        {"kind": kind, **{k: v for k, v in filters.items() if v is not None}}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 32:
            raise ValueError("the cursor secret must be at least 32 bytes")
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, cursor: Cursor) -> str:
        payload = json.dumps(
            [_VERSION, cursor.tenant_id, cursor.scope, cursor.position, round(cursor.at, 3)],
            separators=(",", ":"),
        ).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._mac(payload))}"

    def decode(self, token: str, *, tenant_id: str, scope: str) -> Cursor:
        """The cursor, or `InvalidCursor` when it is malformed, forged, foreign or made for other filters."""
        try:
            payload_part, mac_part = token.split(".")
            payload = _b64decode(payload_part)
            mac = _b64decode(mac_part)
        except (ValueError, binascii.Error) as exc:
            raise InvalidCursor("the cursor is malformed", data={"field": "cursor"}) from exc
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor("the cursor is not valid", data={"field": "cursor"})
        version, cursor_tenant, cursor_scope, position, at = json.loads(payload)
        # A cursor of another tenant is indistinguishable from a forged one, by design.
        if version != _VERSION or cursor_tenant != tenant_id:
            raise InvalidCursor("the cursor is not valid", data={"field": "cursor"})
        if cursor_scope != scope:
            raise InvalidCursor(
                "the cursor was made for other filters; send the same filters with it",
                key="cursor_filters_mismatch",
                data={"field": "cursor"},
            )
        return Cursor(tenant_id=cursor_tenant, scope=cursor_scope, position=position, at=float(at))
