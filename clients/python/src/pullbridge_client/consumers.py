"""The consumer routes, as methods of `Client` (this mixin): consumers, leases, dead letters, seek.

Every method takes the consumer's id (`cns_...`) or its name. `consume` (the worker loop on top of
`receive`, `ack`, `nack` and `extend`) is `pullbridge_client.consume`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pullbridge_client._params import given, timestamp
from pullbridge_client._params import path as _path
from pullbridge_client.consumer_models import (
    AckResult,
    Consumer,
    ConsumeSummary,
    DeadLetter,
    Delivery,
    ExtendResult,
    NackResult,
    RedriveResult,
    TermResult,
)
from pullbridge_client.errors import PullbridgeAPIError
from pullbridge_client.models import Event, Page

__all__ = ["MAX_ACK_IDS", "ConsumerMethods", "Start", "Unlimited"]

MAX_ACK_IDS = 1000
"""The most ack ids one request takes; the methods send more in several requests."""

Start = Literal["all", "new"] | datetime | Mapping[str, Any]
"""Where a new consumer starts: `"all"` (the log's start), `"new"` (its end), a `datetime`, or the API's
own `{"cursor": c}` (a `GET /events` cursor made with the consumer's filters) or `{"time": t}`."""

Unlimited = Literal["unlimited"]
"""`max_deliveries="unlimited"`: no limit (the API's null); None leaves the API's default or the value."""

T = TypeVar("T")
AckRef = str | Delivery


class ConsumerMethods:
    """What `Client` gets for consumers. It uses the client's `request`, `_page`, `timeout` and backoff."""

    if TYPE_CHECKING:
        timeout: float
        backoff: float
        max_backoff: float

        def request(
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, Any] | None = None,
            json_body: Any = None,
            timeout: float | None = None,
        ) -> Any: ...

        def _page(self, path: str, params: Mapping[str, Any]) -> Page[dict[str, Any]]: ...

    # -- consumers --

    def create_consumer(
        self,
        name: str,
        *,
        connection_id: str | None = None,
        provider: str | None = None,
        collection: str | None = None,
        type: str | None = None,
        source: str | None = None,
        start: Start | None = None,
        ack_wait_seconds: int | None = None,
        max_deliveries: int | Unlimited | None = None,
        max_ack_pending: int | None = None,
        ordering: Literal["record", "none"] | None = None,
    ) -> Consumer:
        """Creates a consumer (`Conflict` if the name is taken). Arguments left None take the API's
        defaults: start `"all"`, 30 s leases, 10 deliveries, 1,000 in flight, ordering `"record"`."""
        filters = given(
            connection_id=connection_id, provider=provider, collection=collection, type=type, source=source
        )
        body = given(
            name=name,
            filters=filters or None,
            start=_start(start),
            ack_wait_seconds=ack_wait_seconds,
            max_ack_pending=max_ack_pending,
            ordering=ordering,
        )
        if max_deliveries is not None:
            body["max_deliveries"] = None if max_deliveries == "unlimited" else max_deliveries
        return _one(Consumer.from_dict, self.request("POST", "/consumers", json_body=body))

    def list_consumers(self, cursor: str | None = None, *, limit: int = 20) -> Page[Consumer]:
        """One page of consumers, newest first (`limit` 1-100)."""
        page = self._page("/consumers", {"cursor": cursor, "limit": limit})
        return Page(_many(Consumer.from_dict, page.data), page.next_cursor, page.has_more)

    def iter_consumers(self, *, limit: int = 100) -> Iterator[Consumer]:
        """Every consumer, newest first."""
        return self._follow(lambda cursor: self.list_consumers(cursor, limit=limit))

    def get_consumer(self, consumer: str) -> Consumer:
        return _one(Consumer.from_dict, self.request("GET", _path("consumers", consumer)))

    def update_consumer(
        self,
        consumer: str,
        *,
        ack_wait_seconds: int | None = None,
        max_deliveries: int | Unlimited | None = None,
        max_ack_pending: int | None = None,
    ) -> Consumer:
        """Changes the limits given; None keeps one. `max_deliveries="unlimited"` removes the limit."""
        body = given(ack_wait_seconds=ack_wait_seconds, max_ack_pending=max_ack_pending)
        if max_deliveries is not None:
            body["max_deliveries"] = None if max_deliveries == "unlimited" else max_deliveries
        return _one(Consumer.from_dict, self.request("PATCH", _path("consumers", consumer), json_body=body))

    def delete_consumer(self, consumer: str) -> None:
        """Deletes the consumer, its leases and its dead letters."""
        self.request("DELETE", _path("consumers", consumer))

    def seek(
        self,
        consumer: str,
        *,
        cursor: str | None = None,
        time: datetime | str | None = None,
        position: Literal["new", "all"] | None = None,
    ) -> Consumer:
        """Moves the position to exactly one of: after a `GET /events` cursor, a time (a naive datetime
        is UTC), or `position` `"new"` (the log's end) or `"all"` (its start). What is in flight is
        dropped; what lies before the position is no longer delivered."""
        if sum(value is not None for value in (cursor, time, position)) != 1:
            raise ValueError("give exactly one of cursor, time and position")
        body = given(cursor=cursor, time=timestamp(time), position=position)
        return _one(
            Consumer.from_dict, self.request("POST", _path("consumers", consumer, "seek"), json_body=body)
        )

    # -- leases --

    def receive(self, consumer: str, *, max_batch_size: int = 10, wait: float = 0) -> list[Delivery]:
        """Leases up to `max_batch_size` events (1-1,000). With `wait` (0-20 s) the request is held until
        one can be delivered or the wait ends; the answer may be empty. Each delivery must be settled
        (`ack`, `nack`, `term`) before its lease ends, or extended; otherwise it is delivered again."""
        body = {"max_batch_size": max_batch_size, "wait": wait}
        answer = self.request(
            "POST",
            _path("consumers", consumer, "receive"),
            json_body=body,
            timeout=max(self.timeout, wait + 10) if wait else None,
        )
        return _many(Delivery.from_dict, _data(answer))

    def ack(self, consumer: str, ack_ids: Iterable[AckRef]) -> AckResult:
        """Settles deliveries (ack ids or `Delivery`s). Ids whose lease ran out first are in `expired`:
        those events will be delivered again."""
        answers = self._settle(consumer, "ack", ack_ids, {}, AckResult.from_dict)
        return AckResult(sum(a.acked for a in answers), tuple(i for a in answers for i in a.expired))

    def nack(self, consumer: str, ack_ids: Iterable[AckRef], *, delay_seconds: int = 0) -> NackResult:
        """Gives deliveries back, to be delivered again (to any worker) after `delay_seconds`."""
        body = {"delay_seconds": delay_seconds}
        answers = self._settle(consumer, "nack", ack_ids, body, NackResult.from_dict)
        return NackResult(sum(a.nacked for a in answers), tuple(i for a in answers for i in a.expired))

    def extend(self, consumer: str, ack_ids: Iterable[AckRef], *, seconds: int) -> ExtendResult:
        """Makes each lease run until `seconds` (1-43,200) from now: a heartbeat for long work. The
        delivery count does not change."""
        answers = self._settle(consumer, "extend", ack_ids, {"seconds": seconds}, ExtendResult.from_dict)
        return ExtendResult(
            sum(a.extended for a in answers),
            max((a.lease_expires_at for a in answers), default=""),
            tuple(i for a in answers for i in a.expired),
        )

    def term(self, consumer: str, ack_ids: Iterable[AckRef], *, reason: str = "") -> TermResult:
        """Never delivers these again: they become dead letters, with `reason`."""
        answers = self._settle(consumer, "term", ack_ids, {"reason": reason}, TermResult.from_dict)
        return TermResult(sum(a.termed for a in answers), tuple(i for a in answers for i in a.expired))

    def _settle(
        self,
        consumer: str,
        action: str,
        ack_ids: Iterable[AckRef],
        body: Mapping[str, Any],
        parse: Callable[[Any], T],
    ) -> list[T]:
        ids = [item.ack_id if isinstance(item, Delivery) else item for item in ack_ids]
        if not ids:
            raise ValueError("no ack ids")
        path = _path("consumers", consumer, action)
        return [
            _one(parse, self.request("POST", path, json_body={**body, "ack_ids": ids[at : at + MAX_ACK_IDS]}))
            for at in range(0, len(ids), MAX_ACK_IDS)
        ]

    # -- dead letters --

    def dead_letters(self, consumer: str, cursor: str | None = None, *, limit: int = 100) -> Page[DeadLetter]:
        """One page of the consumer's dead letters, oldest event first (`limit` 1-500)."""
        page = self._page(_path("consumers", consumer, "dead-letters"), {"cursor": cursor, "limit": limit})
        return Page(_many(DeadLetter.from_dict, page.data), page.next_cursor, page.has_more)

    def iter_dead_letters(self, consumer: str, *, limit: int = 100) -> Iterator[DeadLetter]:
        """Every dead letter of the consumer, oldest event first."""
        return self._follow(lambda cursor: self.dead_letters(consumer, cursor, limit=limit))

    def redrive(
        self, consumer: str, event_ids: Iterable[str] | None = None, *, all: bool = False
    ) -> RedriveResult:
        """Puts dead letters back into rotation (`event_ids`, or `all=True`), as new deliveries.

        One call redrives at most what the consumer has room for in flight (`max_ack_pending`);
        `remaining` says how many are still dead: call again once workers have acked some.
        """
        if (event_ids is None) == (not all):
            raise ValueError("give either event_ids or all=True")
        body: dict[str, Any] = {"all": True} if all else {"event_ids": list(event_ids or [])}
        path = _path("consumers", consumer, "dead-letters", "redrive")
        return _one(RedriveResult.from_dict, self.request("POST", path, json_body=body))

    def discard_dead_letter(self, consumer: str, event_id: str) -> None:
        """Deletes one dead letter for good (`NotFound` if the consumer has no such dead letter)."""
        self.request("DELETE", _path("consumers", consumer, "dead-letters", event_id))

    def _follow(self, page_at: Callable[[str | None], Page[T]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = page_at(cursor)
            yield from page.data
            if not page.has_more:
                return
            cursor = page.next_cursor

    # -- the worker loop --

    def consume(
        self,
        consumer: str,
        handler: Callable[[Event], object],
        *,
        batch_size: int = 10,
        concurrency: int = 1,
        wait: float = 20,
        stop: threading.Event | None = None,
        max_events: int | None = None,
        retry_backoff: float = 1.0,
        max_retry_delay: float = 300.0,
        clock: Callable[[], float] | None = None,
    ) -> ConsumeSummary:
        """Receives the consumer's events and calls `handler(event)` for each, on `concurrency` threads:
        an ack when it returns, a nack when it raises (delivered again after a backoff that grows with
        the delivery count, capped at `max_retry_delay`). Leases are extended while the handler runs.

        At least once: an event may be handled more than once (a crash before the ack, a lease lost),
        so the handler must be idempotent. Runs until `stop` is set (noticed within `wait` seconds),
        `max_events` events were handled, or Ctrl-C; then it lets the running handlers finish, gives
        back what it had received but not started, and returns a `ConsumeSummary`.
        See `pullbridge_client.consume`.
        """
        from pullbridge_client.consume import ConsumeLoop

        loop = ConsumeLoop(
            self,
            consumer,
            handler,
            batch_size=batch_size,
            concurrency=concurrency,
            wait=wait,
            stop=stop,
            max_events=max_events,
            retry_backoff=retry_backoff,
            max_retry_delay=max_retry_delay,
            clock=clock,
        )
        return loop.run()


def _start(start: Start | None) -> Any:
    if isinstance(start, datetime):
        return {"time": timestamp(start)}
    if isinstance(start, Mapping):
        return {key: timestamp(item) if isinstance(item, datetime) else item for key, item in start.items()}
    return start


def _data(answer: Any) -> Any:
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        raise PullbridgeAPIError(200, "bad_response", "the answer has no data list", "bad_response")
    return answer["data"]


def _one(parse: Callable[[Any], T], value: Any) -> T:
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise PullbridgeAPIError(200, "bad_response", f"unexpected answer: {exc}", "bad_response") from None


def _many(parse: Callable[[Any], T], items: Any) -> list[T]:
    return [_one(parse, item) for item in items]
