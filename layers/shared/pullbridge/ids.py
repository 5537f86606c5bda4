"""Unguessable random ids.

An event id also carries its position in the tenant log, so `GET /events/{id}` is one consistent
`GetItem` with no index: `evt_<position base36, 1 char of length>_<random>`. The random part is what
makes it unguessable; the position alone never finds an event, because the stored id must match too.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
_BASE36 = string.digits + string.ascii_lowercase


_UNBIASED_BELOW = 256 - 256 % len(_ALPHABET)  # bytes past this would favour some characters


def random_token(length: int = 24) -> str:
    """`length` characters of `[a-z0-9]`, uniform: one read of the OS's random source, not one a character."""
    chosen: list[str] = []
    while len(chosen) < length:
        chosen.extend(
            _ALPHABET[byte % len(_ALPHABET)]
            for byte in secrets.token_bytes(2 * length)
            if byte < _UNBIASED_BELOW
        )
    return "".join(chosen[:length])


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_token()}"


def _to_base36(number: int) -> str:
    digits = []
    while True:
        number, remainder = divmod(number, 36)
        digits.append(_BASE36[remainder])
        if number == 0:
            return "".join(reversed(digits))


def new_event_id(position: int) -> str:
    encoded = _to_base36(position)
    return f"evt_{_BASE36[len(encoded)]}{encoded}{random_token(20)}"


def event_position(event_id: str) -> int | None:
    """The tenant-log position an event id claims, or None when it is not an event id at all."""
    if not event_id.startswith("evt_") or len(event_id) < 6:
        return None
    body = event_id[4:]
    length = _BASE36.find(body[0])
    encoded = body[1 : 1 + length]
    if length < 1 or len(encoded) != length or any(c not in _BASE36 for c in encoded):
        return None
    return int(encoded, 36)
