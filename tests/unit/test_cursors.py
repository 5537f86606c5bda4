from __future__ import annotations

import pytest

from pullbridge.cursors import Cursor, CursorCodec, scope_of
from pullbridge.errors import InvalidCursor

SECRET = "s" * 40
SCOPE = scope_of("events", {"connection_id": "conn_1"})


def test_a_cursor_round_trips_for_its_tenant_and_scope() -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(Cursor("t1", SCOPE, 42, 1700000000.5))
    assert codec.decode(token, tenant_id="t1", scope=SCOPE) == Cursor("t1", SCOPE, 42, 1700000000.5)


def test_a_cursor_is_opaque_url_safe_text() -> None:
    token = CursorCodec(SECRET).encode(Cursor("t1", SCOPE, 42, 0))
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.def", "a.b.c", "!!!.???"])
def test_malformed_cursors_are_rejected(token: str) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec(SECRET).decode(token, tenant_id="t1", scope=SCOPE)


def test_a_cursor_signed_with_another_secret_is_rejected() -> None:
    token = CursorCodec("o" * 40).encode(Cursor("t1", SCOPE, 1, 0))
    with pytest.raises(InvalidCursor):
        CursorCodec(SECRET).decode(token, tenant_id="t1", scope=SCOPE)


def test_a_tampered_position_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    _, mac = codec.encode(Cursor("t1", SCOPE, 1, 0)).split(".")
    forged_payload = CursorCodec("x" * 40).encode(Cursor("t1", SCOPE, 999, 0)).split(".")[0]
    with pytest.raises(InvalidCursor):
        codec.decode(f"{forged_payload}.{mac}", tenant_id="t1", scope=SCOPE)


def test_another_tenants_cursor_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    with pytest.raises(InvalidCursor) as raised:
        codec.decode(codec.encode(Cursor("t2", SCOPE, 1, 0)), tenant_id="t1", scope=SCOPE)
    assert raised.value.key == "invalid_cursor"


def test_a_cursor_made_for_other_filters_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    with pytest.raises(InvalidCursor) as raised:
        codec.decode(codec.encode(Cursor("t1", SCOPE, 1, 0)), tenant_id="t1", scope=scope_of("events", {}))
    assert raised.value.key == "cursor_filters_mismatch"


def test_scopes_ignore_unset_filters_but_not_set_ones() -> None:
    assert scope_of("events", {"type": None}) == scope_of("events", {})
    assert scope_of("events", {"type": "a"}) != scope_of("events", {"type": "b"})
    assert scope_of("events", {}) != scope_of("connections", {})


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CursorCodec("short")
