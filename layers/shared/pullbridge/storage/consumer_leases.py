"""A consumer's leases on its in-flight events: leased again when they fall due (`relet`), acked,
nacked or extended (`settle`), each only at the `lease_seq` its ack id names and while that lease still
runs, so a lease is exclusive and a stale ack changes nothing. An ack leaves a receipt of the lease it
settled, kept a day, so that a second ack of it is told apart from an ack of a lease that ran out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from pullbridge.storage.attributes import n, num, s
from pullbridge.storage.consumer_items import LEASE_EPOCH_BITS, in_flight_item, ms
from pullbridge.storage.keys import consumer_partition, group_sort_key, receipt_partition
from pullbridge.storage.model import InFlight
from pullbridge.storage.transactions import MAX_CONFLICT_RETRIES, MAX_TRANSACTION_ITEMS, Transactions, chunks

RECEIPT_SECONDS = 86_400
Settled = Literal["done", "expired", "gone"]
"""What became of one ack id: settled; its lease had run out (or it was nacked) first; or nothing holds it
(acked already, dead-lettered, or dropped by a seek)."""


class ConsumerLeases(Transactions):
    def relet(
        self,
        tenant_id: str,
        consumer_id: str,
        changes: Sequence[tuple[InFlight, InFlight]],
        *,
        now: float,
    ) -> list[InFlight]:
        """Lease again in-flight events that fell due (`before` -> `after`), each only if still at
        `before.lease_seq` and still due at `now`: an extension keeps the lease's `seq` but moves its `due`,
        so the `seq` alone would let a receive that read the lease before it was extended take it from its
        holder. Returns the `after`s that landed: a lease is never given twice."""
        partition = consumer_partition(tenant_id, consumer_id)
        self._split_groups(partition, {before.group for before, _ in changes if before.group is not None})

        def action(before: InFlight, after: InFlight) -> dict[str, Any]:
            return {
                "Put": {
                    "TableName": self._events_table,
                    "Item": in_flight_item(partition, after),
                    "ConditionExpression": "seq = :seq AND due <= :now",
                    "ExpressionAttributeValues": {":seq": n(before.lease_seq), ":now": n(ms(now))},
                }
            }

        landed: list[InFlight] = []
        for chunk in chunks(changes, MAX_TRANSACTION_ITEMS):
            landed += [after for _, after in self._transact_each(chunk, lambda change: [action(*change)])]
        return landed

    def settle(
        self,
        tenant_id: str,
        consumer_id: str,
        held: Sequence[tuple[int, int]],
        *,
        now: float,
        after: Mapping[int, InFlight] | None = None,
        clock: Callable[[], float] | None = None,
        groups: Mapping[int, int] | None = None,
    ) -> dict[int, Settled]:
        """Ack or change (`after[position]`: a nack or an extension) the events held at
        `(position, lease_seq)`, each only while that lease is still running at `now`, one lease per
        position. An ack deletes the event and leaves a receipt of its lease for a day, so a second ack
        of it is told "done", and an ack of an earlier lease, whose event another worker acked since or
        which became a dead letter, is told it expired.

        Receipts go one item per lease epoch (the head's version when the events were taken, `seq`'s high
        bits), a set of `position:lease` the acks add to: the events of one receive share an epoch, so an
        ack of a batch is one transaction of its deletes and one receipt, not a receipt per event.

        `clock`: the time of each try after the first. A try refused for some leases (another receive took
        them once they ran out) settles the rest only while they still run then, so that the answer holds
        at one moment: no lease answered done ran out before one answered expired with the same end.

        `groups`: the lease group of each position that has one. An ack of every event of a group deletes
        the group's one item, under the same conditions on its lease; any other settling of a group's
        events first gives each its own item (`_split_groups`)."""
        partition = consumer_partition(tenant_id, consumer_id)
        receipts = receipt_partition(tenant_id, consumer_id)
        changes = after or {}
        condition = "seq = :seq AND #state = :leased AND due > :now"
        moment = [now]

        def later() -> None:
            if clock is not None:
                moment[0] = max(moment[0], clock())

        def actions(entry: tuple[int, int]) -> list[Any]:
            position, seq = entry
            guard = {
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {
                    ":seq": n(seq),
                    ":leased": s("leased"),
                    ":now": n(ms(moment[0])),
                },
                "ExpressionAttributeNames": {"#state": "state"},
            }
            table = {"TableName": self._events_table}
            if position in changes:
                return [{"Put": table | {"Item": in_flight_item(partition, changes[position])} | guard}]
            return [{"Delete": table | {"Key": {"pk": s(partition), "sk": n(position)}} | guard}]

        def receipted(entries: Sequence[tuple[int, int]]) -> list[Any]:
            by_epoch: dict[int, list[str]] = {}
            for position, seq in entries:
                if position not in changes:
                    by_epoch.setdefault(lease_epoch(seq), []).append(receipt_entry(position, seq))
            return [
                {
                    "Update": {
                        "TableName": self._events_table,
                        "Key": {"pk": s(receipts), "sk": n(epoch)},
                        "UpdateExpression": "ADD #acked :acked SET expires_at = :expires",
                        "ExpressionAttributeNames": {"#acked": "acked"},
                        "ExpressionAttributeValues": {
                            ":acked": {"SS": sorted(acked)},
                            ":expires": n(int(now) + RECEIPT_SECONDS),
                        },
                    }
                }
                for epoch, acked in sorted(by_epoch.items())
            ]

        in_group = groups or {}
        outcome = self._ack_whole_groups(partition, held, changes, in_group, moment[0], receipted)
        held = [entry for entry in held if entry[0] not in outcome]
        self._split_groups(partition, {in_group[position] for position, _ in held if position in in_group})
        for chunk in _settle_chunks(held, changes):
            done = {entry[0] for entry in self._transact_each(chunk, actions, receipted, before_retry=later)}
            refused = [entry for entry in chunk if entry[0] not in done]
            present = self._in_flight_at(partition, [position for position, _ in refused])
            acked = self._receipted(
                receipts, [entry for entry in refused if entry[0] not in present and entry[0] not in changes]
            )
            outcome.update(dict.fromkeys(done, "done"))
            for position, seq in refused:
                if position in present:
                    outcome[position] = "expired"
                else:
                    outcome[position] = "done" if (position, seq) in acked else "gone"
        return outcome

    def _receipted(self, receipts: str, entries: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of these `(position, lease_seq)` were acked: one read of their epochs' receipts."""
        if not entries:
            return set()
        found: set[str] = set()
        for item in self._batch_get(receipts, [lease_epoch(seq) for _, seq in entries]):
            found.update(item.get("acked", {}).get("SS", []))
        return {entry for entry in entries if receipt_entry(*entry) in found}

    def _ack_whole_groups(
        self,
        partition: str,
        held: Sequence[tuple[int, int]],
        changes: Mapping[int, InFlight],
        groups: Mapping[int, int],
        now: float,
        receipted: Callable[[Sequence[tuple[int, int]]], list[Any]],
    ) -> dict[int, Settled]:
        """The acks (not changes) of lease groups, a group at a time by its one item (`_ack_group`);
        "done" for each event of a group that went so."""
        whole: dict[int, list[tuple[int, int]]] = {}
        for entry in held:
            if entry[0] in groups and entry[0] not in changes:
                whole.setdefault(groups[entry[0]], []).append(entry)
        outcome: dict[int, Settled] = {}
        for group, entries in whole.items():
            if self._ack_group(partition, group, entries, now, receipted(entries)):
                outcome.update(dict.fromkeys((position for position, _ in entries), "done"))
        return outcome

    def _ack_group(
        self, partition: str, group: int, entries: Sequence[tuple[int, int]], now: float, receipt: list[Any]
    ) -> bool:
        """Ack every event of one lease group at once: delete its item while its lease runs, if these
        are all its events (`mc`), with their receipt. False when that does not hold (or another request
        changed the group first): the caller settles them one by one."""
        seqs = {seq for _, seq in entries}
        if len(seqs) != 1:
            return False
        actions: list[Any] = [
            {
                "Delete": {
                    "TableName": self._events_table,
                    "Key": {"pk": s(partition), "sk": n(group_sort_key(group))},
                    "ConditionExpression": "seq = :seq AND due > :now AND mc = :count",
                    "ExpressionAttributeValues": {
                        ":seq": n(seqs.pop()),
                        ":now": n(ms(now)),
                        ":count": n(len(entries)),
                    },
                }
            },
            *receipt,
        ]
        for _ in range(MAX_CONFLICT_RETRIES + 1):
            refused = self._transact(actions)
            if refused is not None and not refused:
                continue  # a conflicting transaction: nothing landed, try again
            return refused is None
        return False

    # --- plumbing ---------------------------------------------------------------------------------------

    def _in_flight_at(self, partition: str, positions: Sequence[int]) -> set[int]:
        return {num(item, "sk") for item in self._batch_get(partition, positions)}


def lease_epoch(seq: int) -> int:
    """The epoch of a lease: the head's version when its event was taken from the log (`seq`'s high bits)."""
    return seq >> LEASE_EPOCH_BITS


def receipt_entry(position: int, seq: int) -> str:
    """A receipt's record of one acked lease, in its epoch's set: the position and the lease within it."""
    return f"{position}:{seq & ((1 << LEASE_EPOCH_BITS) - 1)}"


def _settle_chunks(
    held: Sequence[tuple[int, int]], changes: Mapping[int, InFlight]
) -> Iterator[list[tuple[int, int]]]:
    """The entries in transactions of at most 100 items: one per entry, and one receipt per lease epoch
    of the acks among them."""
    chunk: list[tuple[int, int]] = []
    epochs: set[int] = set()
    for entry in held:
        epoch = None if entry[0] in changes else lease_epoch(entry[1])
        new_epoch = epoch is not None and epoch not in epochs
        if chunk and len(chunk) + len(epochs) + 1 + new_epoch > MAX_TRANSACTION_ITEMS:
            yield chunk
            chunk, epochs = [], set()
        chunk.append(entry)
        if epoch is not None:
            epochs.add(epoch)
    if chunk:
        yield chunk
