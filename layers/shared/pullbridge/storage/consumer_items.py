"""How a consumer's items look in DynamoDB: the head, one in-flight event, a dead letter's fields, and
the consumer's control record. The one place these attributes are named."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pullbridge.storage.attributes import Item, n, num, s, text
from pullbridge.storage.keys import HEAD_POSITION, group_sort_key
from pullbridge.storage.model import ConsumerHead, InFlight

LEASE_EPOCH_BITS = 32
"""An in-flight event's `seq` names its lease: the epoch of its take from the log (the head's version then)
in the bits above these, and its leases and nacks since, below. An event taken from the log again (after a
seek back) starts a new epoch, so no ack id of an earlier take can ever match a later lease."""


def ms(seconds: float) -> float:
    """Times to the millisecond, rounded down: a nack "due now" must not become due a moment later."""
    return math.floor(seconds * 1000) / 1000


def in_flight_item(partition: str, item: InFlight) -> Item:
    entry: Item = {
        "pk": s(partition),
        "sk": n(item.position),
        "spos": n(item.scope_position),
        "id": s(item.event_id),
        "state": s(item.state),
        "due": n(ms(item.due_at)),
        "dc": n(item.delivery_count),
        "seq": n(item.lease_seq),
        "expires_at": n(item.expires_at),
        "at": n(round(item.received_at, 3)),
    }
    if item.record_key is not None:
        entry["rk"] = s(item.record_key)
    return entry


GROUP_MIN_MEMBERS = 2
"""A take leases its events in one group item when it leases at least this many together."""


def group_item(partition: str, members: Sequence[InFlight]) -> Item:
    """One item for the events of one take leased together: their shared lease (`seq`, `due`, `state`,
    `dc`) once, and each event's own fields in `mem`. Immutable: an ack of all of them deletes it, and any
    other change first gives each its own item (`Transactions._split_groups`)."""
    first = members[0]
    fields = [
        [m.position, m.scope_position, m.event_id, m.record_key, round(m.received_at, 3), m.expires_at]
        for m in members
    ]
    return {
        "pk": s(partition),
        "sk": n(group_sort_key(first.group if first.group is not None else first.position)),
        "mem": s(json.dumps(fields, separators=(",", ":"))),
        "mc": n(len(members)),
        "state": s(first.state),
        "due": n(ms(first.due_at)),
        "dc": n(first.delivery_count),
        "seq": n(first.lease_seq),
        "expires_at": n(max(m.expires_at for m in members)),
    }


def is_group(item: Item) -> bool:
    return "mem" in item


def group_members(item: Item) -> list[InFlight]:
    group = -num(item, "sk")
    state, due_at = item["state"]["S"], float(item["due"]["N"])
    delivery_count, lease_seq = num(item, "dc"), num(item, "seq")
    return [
        InFlight(
            position=position,
            scope_position=scope_position,
            event_id=event_id,
            record_key=record_key,
            state=state,
            due_at=due_at,
            delivery_count=delivery_count,
            lease_seq=lease_seq,
            expires_at=expires_at,
            received_at=received_at,
            group=group,
        )
        for position, scope_position, event_id, record_key, received_at, expires_at in json.loads(
            item["mem"]["S"]
        )
    ]


def in_flight_entries(item: Item) -> list[InFlight]:
    """The in-flight events an item of the consumer's partition holds: a group's, or its own."""
    return group_members(item) if is_group(item) else [in_flight(item)]


def in_flight(item: Item) -> InFlight:
    return InFlight(
        position=num(item, "sk"),
        scope_position=num(item, "spos"),
        event_id=item["id"]["S"],
        record_key=text(item, "rk"),
        state=item["state"]["S"],
        due_at=float(item["due"]["N"]),
        delivery_count=num(item, "dc"),
        lease_seq=num(item, "seq"),
        expires_at=num(item, "expires_at"),
        received_at=float(item.get("at", {}).get("N", "0")),
    )


def head_of(item: Item) -> ConsumerHead:
    return ConsumerHead(
        position=num(item, "pos"),
        version=num(item, "ver"),
        counted_to=num(item, "counted"),
        pending=num(item, "pending"),
    )


def head_item(partition: str, head: ConsumerHead) -> Item:
    """A new head: no stretch of the log handed out yet (`ahead` and `fin` at its position)."""
    return {
        "pk": s(partition),
        "sk": n(HEAD_POSITION),
        "pos": n(head.position),
        "ver": n(head.version),
        "counted": n(head.counted_to),
        "pending": n(head.pending),
        "ahead": n(head.position),
        "fin": n(head.position),
    }


def decided_of(item: Item) -> int:
    """How far the stretches handed out are done with (`fin`); a head without stretches has none open."""
    return num(item, "fin") if "fin" in item else NO_OPEN_STRETCH


NO_OPEN_STRETCH = 2**62


def control_item(pk: str, sk: str, document: Mapping[str, Any], index: tuple[str, str] | None) -> Item:
    item: Item = {"pk": s(pk), "sk": s(sk), "doc": s(json.dumps(document, separators=(",", ":")))}
    if index is not None:
        item["gsi1pk"], item["gsi1sk"] = s(index[0]), s(index[1])
    if "version" in document:
        item["version"] = n(document["version"])
    return item
