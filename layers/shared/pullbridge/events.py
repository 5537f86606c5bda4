"""Reading the log: `GET /events` pages, long polling, and `GET /events/{id}`.

The guarantee (see docs/architecture.md): a client that starts without a cursor and follows
`next_cursor` receives every matching event exactly once, in log order. A cursor is a log position; the
storage layer never passes an unresolved position, so a cursor can only ever point behind a prefix
of the log that is complete and will not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pullbridge.clock import Clock, system_clock
from pullbridge.cursors import Cursor, CursorCodec, scope_of
from pullbridge.errors import Gone, InvalidCursor, NotFound
from pullbridge.ids import event_position
from pullbridge.storage import LoggedEvent, Store

# How often a long poll probes the log head. The budget is 60 read units a minute for one client
# waiting on an idle tenant with `wait=20`, so 3 requests a minute. Each request costs the API key's
# consistent GetItem (1 unit) and one consistent Query of the log (1 unit, it reads nothing), then
# ceil(20 / 0.65) = 31 eventually consistent probes of the head item at 0.5 unit (while that item is at
# most 4 KB): 3 x (2 + 15.5) = 52.5 units a minute, 12% under the budget. (At 0.5 s it would be 66.) An
# event waits at most one interval for the probe that sees it, so freshness stays well under 1 s.
POLL_INTERVAL_SECONDS = 0.65
# A filter that needs the tenant log (anything but connection_id alone) reads at most this many log
# rows per request, then answers with what it found and a cursor past what it read.
FILTERED_SCAN_BUDGET = 1000


@dataclass(frozen=True)
class EventFilters:
    connection_id: str | None = None
    provider: str | None = None
    collection: str | None = None
    type: str | None = None
    source: str | None = None
    record_id: str | None = None
    """The events of one upstream record (its history), read from the log like the other filters."""

    def scope(self) -> str:
        return scope_of("events", asdict(self))

    def matches(self, event: dict[str, Any]) -> bool:
        return all(value is None or event.get(name) == value for name, value in asdict(self).items())

    @property
    def needs_scan(self) -> bool:
        """True when rows outside the filter must be read (no index serves it)."""
        return any(value is not None for name, value in asdict(self).items() if name != "connection_id")


@dataclass(frozen=True)
class EventPage:
    data: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class EventReader:
    def __init__(
        self,
        store: Store,
        codec: CursorCodec,
        *,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
        write_deadline_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._codec = codec
        self._clock = clock
        self._sleep = sleep
        self._expiry_margin = write_deadline_seconds

    def list_events(
        self, tenant_id: str, filters: EventFilters, *, cursor: str | None, limit: int, wait: float = 0
    ) -> EventPage:
        scope = filters.scope()
        position, at = 0, self._clock()
        if cursor:
            decoded = self._codec.decode(cursor, tenant_id=tenant_id, scope=scope)
            if not isinstance(decoded.position, int) or decoded.position < 0:
                raise InvalidCursor("the cursor is not valid", data={"field": "cursor"})
            position, at = decoded.position, decoded.at
            # Events after the cursor were received no earlier than `at` (less the write deadline), so
            # while `at` is inside retention none of them can have expired unseen.
            if at + self._store.retention_seconds - self._expiry_margin < self._clock():
                raise Gone(
                    "the cursor is older than the retention period; start again without a cursor",
                    data={"field": "cursor"},
                )
        deadline = self._clock() + wait
        while True:
            logged, new_position, new_at, has_more = self.collect(tenant_id, filters, position, at, limit)
            events = [entry.document for entry in logged]
            moved = new_position != position
            position, at = new_position, new_at
            if events or has_more or self._clock() >= deadline:
                break
            if not self._await_news(tenant_id, filters.connection_id, position, deadline):
                break  # the deadline, with nothing new: the page just read stands (see _await_news)
        if not moved and cursor and not events:
            next_cursor = cursor  # nothing new: the cursor that was sent
        else:
            next_cursor = self._codec.encode(Cursor(tenant_id, scope, position, at))
        return EventPage(data=events, next_cursor=next_cursor, has_more=has_more)

    def collect(
        self, tenant_id: str, filters: EventFilters, position: int, at: float, limit: int
    ) -> tuple[list[LoggedEvent], int, float, bool]:
        """Up to `limit` matching events after `position` in the filters' log, each with its position
        there; the position read up to (never past an unresolved one) and its time; whether more may
        follow. Consumers read the log through this too: there is one way to find the next event."""
        collected: list[LoggedEvent] = []
        budget = FILTERED_SCAN_BUDGET if filters.needs_scan else limit + 1
        while budget > 0:
            read = self._store.read_log(tenant_id, filters.connection_id, position, min(budget, limit + 1))
            budget -= max(read.position - position, 1)  # positions are contiguous: this counts rows read
            for logged in read.events:
                if filters.matches(logged.document):
                    if len(collected) == limit:
                        return collected, position, at, True
                    collected.append(logged)
                position, at = logged.position, _epoch(logged.document["received_at"])
            position = read.position
            if read.exhausted:
                return collected, position, at, False
        return collected, position, at, True

    def _await_news(self, tenant_id: str, connection_id: str | None, position: int, deadline: float) -> bool:
        """Hold until the log's head moves past `position` (True) or the deadline passes (False), with
        one eventually consistent read of the head item every `POLL_INTERVAL_SECONDS`.

        Correctness never rests on the probe, which may lag a write by a moment. A "yes" only leads to
        the strongly consistent read of the log itself (`read_log`), which alone decides what is served
        and never passes an unresolved position. A "no" only delays: the head is asked again one
        interval later, and at the deadline the request answers with the page its last consistent read
        produced, whose cursor lies behind anything the probe missed, so the next request reads it.
        """
        while self._clock() < deadline:
            self._sleep(min(POLL_INTERVAL_SECONDS, max(deadline - self._clock(), 0)))
            if self._store.log_head(tenant_id, connection_id, consistent=False) > position:
                return True
        return False

    def get_event(self, tenant_id: str, event_id: str) -> dict[str, Any]:
        position = event_position(event_id)
        event = self._store.get_event(tenant_id, position) if position is not None else None
        if event is None or event.get("id") != event_id:
            raise NotFound(f"no event {event_id}", key="event_not_found")
        return event
