"""Ack ids: signed, bound to one consumer, and naming one lease (and its lease group, when it has one)."""

from __future__ import annotations

import pytest

from pullbridge.consumers.ack_ids import AckId, decode_ack_ids, encode_ack_id
from pullbridge.cursors import Cursor, CursorCodec
from pullbridge.errors import ValidationFailed
from tests.conftest import CURSOR_SECRET

CODEC = CursorCodec(CURSOR_SECRET)


@pytest.mark.parametrize("ack", [AckId(7, (3 << 32) + 1), AckId(7, (3 << 32) + 1, group=5)])
def test_an_ack_id_names_its_lease_and_group(ack: AckId) -> None:
    token = encode_ack_id(CODEC, "t_a", "con_1", ack, 1.0)
    assert decode_ack_ids(CODEC, "t_a", "con_1", [token]) == [ack]


def test_another_consumers_or_tenants_ack_id_is_refused() -> None:
    token = encode_ack_id(CODEC, "t_a", "con_1", AckId(7, 9, group=5), 1.0)
    for tenant, consumer in (("t_a", "con_2"), ("t_b", "con_1")):
        with pytest.raises(ValidationFailed) as refused:
            decode_ack_ids(CODEC, tenant, consumer, [token])
        assert refused.value.key == "invalid_ack_id"


@pytest.mark.parametrize("position", [[7], [7, 9, 5, 1], [7, 9, 0], [7, 9, -5], [7, 9, True], [7, "9"], 7])
def test_a_signed_token_of_another_shape_is_not_an_ack_id(position: object) -> None:
    from pullbridge.consumers.ack_ids import _scope

    token = CODEC.encode(Cursor("t_a", _scope("con_1"), position, 1.0))
    with pytest.raises(ValidationFailed):
        decode_ack_ids(CODEC, "t_a", "con_1", [token])
