"""Ack ids: opaque, signed, and bound to one consumer, one event and one lease of it.

An ack id is a cursor token (`pullbridge.cursors`: HMAC-signed, bound to the tenant) whose scope is the
consumer and whose position is `[event position, lease_seq]`, and the lease group's first position when
the lease was given in one (`[position, lease_seq, group]`). So a forged one, another tenant's or
another consumer's is refused (400) before anything is read, and one of an earlier lease of the same
event no longer matches the event's `lease_seq`: it settles nothing, and is reported as expired.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullbridge.cursors import Cursor, CursorCodec, scope_of
from pullbridge.errors import InvalidCursor, ValidationFailed


@dataclass(frozen=True)
class AckId:
    position: int
    lease_seq: int
    group: int | None = None
    """The lease group the lease was given in (`InFlight.group`), if any."""


def _scope(consumer_id: str) -> str:
    return scope_of("ack", {"consumer": consumer_id})


def encode_ack_id(codec: CursorCodec, tenant_id: str, consumer_id: str, ack: AckId, at: float) -> str:
    parts = [ack.position, ack.lease_seq] + ([] if ack.group is None else [ack.group])
    return codec.encode(Cursor(tenant_id, _scope(consumer_id), parts, at))


def decode_ack_ids(codec: CursorCodec, tenant_id: str, consumer_id: str, tokens: list[str]) -> list[AckId]:
    """Every ack id, or `ValidationFailed` naming the first that is not this consumer's."""
    decoded: list[AckId] = []
    for index, token in enumerate(tokens):
        try:
            cursor = codec.decode(token, tenant_id=tenant_id, scope=_scope(consumer_id))
        except InvalidCursor as exc:
            raise _invalid(index) from exc
        position = cursor.position
        if (
            not isinstance(position, list)
            or len(position) not in (2, 3)
            or not all(isinstance(part, int) and not isinstance(part, bool) and part > 0 for part in position)
        ):
            raise _invalid(index)
        decoded.append(AckId(position[0], position[1], position[2] if len(position) == 3 else None))
    return decoded


def _invalid(index: int) -> ValidationFailed:
    return ValidationFailed(
        f"ack_ids.{index}: not an ack id of this consumer",
        key="invalid_ack_id",
        data={"field": f"ack_ids.{index}"},
    )
