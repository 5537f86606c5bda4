"""An upstream collection of a fake provider: records in memory that tests create, change and delete
underneath the pulls, each change at a time (the server's clock, or the time a test gives)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

Stamp = Callable[[dict[str, Any], float], None]
"""Writes a change's time into the record's own update fields (`updated_at`, `updatedAt`, ...)."""

ChangeLog = Callable[[str, dict[str, Any], dict[str, Any], float], None]
"""Told of each change: its kind (`created`, `updated`, `deleted`), the record after it (for a delete,
as it was), the previous values of the changed fields, and its time. Stripe's fake keeps its events so."""


class Dataset:
    """One upstream collection. Ids are compared as strings (`update(450789469)` and `update("450789469")`
    name the same record); records go out in the provider's list order.

    `seed` makes history: records as of long ago (created at `BASE_TIME + 60 n`), with no change logged.
    `add`, `update` and `delete` are changes made now, or at `changed_at`: they stamp the record's update
    time (a record added with its own id is stored exactly as given) and are logged as the provider would
    report them."""

    def __init__(
        self,
        provider: str,
        collection: str,
        *,
        id_field: str,
        factory: Callable[[int], dict[str, Any]],
        sort_key: Callable[[dict[str, Any], int], Any],
        sequence: Iterator[int],
        lock: threading.RLock,
        clock: Callable[[], float],
        stamp: Stamp | None = None,
        claim: Callable[[Any], None] | None = None,
    ) -> None:
        self.provider = provider
        self.collection = collection
        self.id_field = id_field
        self._factory = factory
        self._sort_key = sort_key
        self._sequence = sequence
        self._lock = lock
        self._clock = clock
        self._stamp = stamp
        self._claim = claim
        self._rows: dict[str, tuple[int, dict[str, Any]]] = {}
        self.change_log: ChangeLog | None = None
        self.on_clear: Callable[[], None] | None = None

    def add(self, record: dict[str, Any] | None = None, *, changed_at: float | None = None) -> dict[str, Any]:
        """Store `record`. Without its id it is completed from the fixture template (new id, its update
        time now); with one it is stored exactly as given. Returns a copy of what is stored."""
        with self._lock:
            at = self._now(changed_at)
            stored = self._insert(record, at if record is None or self.id_field not in record else None)
            self._log("created", stored, {}, at)
            return copy.deepcopy(stored)

    def seed(self, count: int) -> list[dict[str, Any]]:
        """`count` records from the fixture template, with unique ids and increasing created times, as they
        were long ago: no change is logged for them."""
        with self._lock:
            return [copy.deepcopy(self._insert(None, None)) for _ in range(count)]

    def update(
        self, record_id: str | int, *, changed_at: float | None = None, **changes: Any
    ) -> dict[str, Any]:
        with self._lock:
            record = self._rows[str(record_id)][1]
            previous = {name: copy.deepcopy(record.get(name)) for name in changes}
            record.update(copy.deepcopy(changes))
            at = self._now(changed_at)
            if self._stamp is not None:
                self._stamp(record, at)
            self._log("updated", record, previous, at)
            return copy.deepcopy(record)

    def delete(self, record_id: str | int, *, changed_at: float | None = None) -> dict[str, Any]:
        with self._lock:
            record = self._rows.pop(str(record_id))[1]
            self._log("deleted", record, {}, self._now(changed_at))
            return record

    def get(self, record_id: str | int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._rows[str(record_id)][1])

    def clear(self) -> None:
        """Forget every record, and every change logged for them: a fresh, empty collection."""
        with self._lock:
            self._rows.clear()
            if self.on_clear is not None:
                self.on_clear()

    def records(self) -> list[dict[str, Any]]:
        """Copies of the records in list order."""
        return [copy.deepcopy(record) for _, record in self.ordered()]

    def ids(self) -> list[str]:
        """The record ids (as strings) in list order."""
        return [str(record[self.id_field]) for _, record in self.ordered()]

    def __len__(self) -> int:
        return len(self._rows)

    def ordered(self) -> list[tuple[int, dict[str, Any]]]:
        """(seq, record) in list order; the records are the live ones: copy before handing them out."""
        with self._lock:
            rows = list(self._rows.values())
        return sorted(rows, key=lambda row: self._sort_key(row[1], row[0]))

    def _insert(self, record: dict[str, Any] | None, stamp_at: float | None) -> dict[str, Any]:
        seq = next(self._sequence)
        record = copy.deepcopy(record or {})
        if self.id_field not in record:
            record = {**self._factory(seq), **record}
            if stamp_at is not None and self._stamp is not None:
                self._stamp(record, stamp_at)
        elif self._claim is not None:
            self._claim(record[self.id_field])
        key = str(record[self.id_field])
        if key in self._rows:
            raise ValueError(f"{self.provider} {self.collection} already has {key}")
        self._rows[key] = (seq, record)
        return record

    def _now(self, changed_at: float | None) -> float:
        return self._clock() if changed_at is None else changed_at

    def _log(self, kind: str, record: dict[str, Any], previous: dict[str, Any], at: float) -> None:
        if self.change_log is not None:
            self.change_log(kind, copy.deepcopy(record), previous, at)
