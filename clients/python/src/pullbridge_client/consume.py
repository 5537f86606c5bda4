"""`Client.consume`: a worker on a consumer. It receives, runs a handler per event on a thread pool, acks
what the handler finished, nacks what it raised on, and keeps the leases alive while handlers run.

- **Receiving.** Long polls (`wait`) for at most `batch_size` events, and never holds more than
  `max(batch_size, concurrency)` unsettled deliveries: it receives again as handlers finish. A receive
  that fails for a passing reason (a 5xx, a 429, the network) is retried after the client's backoff.
- **Settling.** Each delivery is settled by the thread that handled it, as soon as the handler returns:
  an ack, or on an exception a nack whose delay grows with the delivery count
  (`retry.backoff_seconds(delivery_count - 1, base=retry_backoff, cap=max_retry_delay)`, rounded up to
  whole seconds). The exception is logged (logger `pullbridge_client.consume`) and not raised.
- **Heartbeat.** A thread (`LeaseKeeper`) extends every delivery still held once half of its lease
  (the consumer's `ack_wait_seconds`) has gone, so a slow handler keeps its lease.
- **Stopping.** After `max_events` deliveries it receives no more, and returns once they are all handled.
  On `stop` or KeyboardInterrupt it receives no more; handlers already running finish and settle, and
  received deliveries not yet started are nacked without delay, so another worker gets them at once.
  Any other error (401, 404: the consumer was deleted) stops the same way and is raised.

At least once: a handler may see an event again (a crash before its ack, a lease that ran out). Make it
idempotent, e.g. keyed on `event.id`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from time import monotonic
from typing import TYPE_CHECKING

import httpx

from pullbridge_client.consumer_models import ConsumeSummary, Delivery
from pullbridge_client.errors import PullbridgeClientError, RateLimited, ServerError
from pullbridge_client.models import Event
from pullbridge_client.retry import backoff_seconds

if TYPE_CHECKING:
    from pullbridge_client.consumers import ConsumerMethods

__all__ = ["ConsumeLoop", "LeaseKeeper"]

logger = logging.getLogger("pullbridge_client.consume")

MAX_BATCH_SIZE = 1000
MAX_WAIT_SECONDS = 20
MAX_NACK_DELAY = 43_200
CAPACITY_POLL_SECONDS = 0.5
"""How often a worker with no room left looks at `stop` while it waits for a handler to finish."""

_PASSING = (httpx.TransportError, ServerError, RateLimited)
_SETTLE_FAILURES = (PullbridgeClientError, httpx.HTTPError)


class LeaseKeeper:
    """The leases a worker holds, extended halfway through: `hold` them when received, `release` them when
    settled. `beat()` extends the ones due; the thread started by `start()` calls it every `tick`."""

    def __init__(
        self, client: ConsumerMethods, consumer_id: str, lease_seconds: int, clock: Callable[[], float]
    ) -> None:
        self.lease_seconds = lease_seconds
        self.tick = min(1.0, lease_seconds / 4)
        self.lost = 0
        self._client = client
        self._consumer_id = consumer_id
        self._clock = clock
        self._since: dict[str, float] = {}  # ack id -> when its lease last began, by `clock`
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pullbridge-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join()

    def hold(self, ack_ids: list[str], since: float) -> None:
        with self._lock:
            self._since.update(dict.fromkeys(ack_ids, since))

    def release(self, ack_id: str) -> None:
        with self._lock:
            self._since.pop(ack_id, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._since)

    def due(self, now: float) -> list[str]:
        with self._lock:
            return [ack_id for ack_id, since in self._since.items() if now - since >= self.lease_seconds / 2]

    def beat(self) -> None:
        now = self._clock()
        due = self.due(now)
        if not due:
            return
        try:
            result = self._client.extend(self._consumer_id, due, seconds=self.lease_seconds)
        except _SETTLE_FAILURES as exc:
            logger.warning("could not extend %d leases (tried again in %.2f s): %s", len(due), self.tick, exc)
            return
        expired = set(result.expired)
        with self._lock:
            for ack_id in due:
                if ack_id not in self._since:
                    continue  # settled meanwhile
                if ack_id in expired:
                    del self._since[ack_id]  # the lease ran out first: the event will come again
                    self.lost += 1
                else:
                    self._since[ack_id] = now

    def _run(self) -> None:
        while not self._closed.wait(self.tick):
            self.beat()


class ConsumeLoop:
    """One run of `Client.consume` (whose docstring, and this module's, say what it does)."""

    def __init__(
        self,
        client: ConsumerMethods,
        consumer: str,
        handler: Callable[[Event], object],
        *,
        batch_size: int,
        concurrency: int,
        wait: float,
        stop: threading.Event | None,
        max_events: int | None,
        retry_backoff: float,
        max_retry_delay: float,
        clock: Callable[[], float] | None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH_SIZE}")
        if concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait must be 0-{MAX_WAIT_SECONDS} seconds")
        if max_events is not None and max_events < 1:
            raise ValueError("max_events must be 1 or more")
        self._client = client
        self._consumer = consumer
        self._handler = handler
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._wait = wait
        self._stop = stop if stop is not None else threading.Event()
        self._max_events = max_events
        self._retry_backoff = retry_backoff
        self._max_retry_delay = min(max_retry_delay, MAX_NACK_DELAY)
        self._clock = clock or monotonic
        self._received = 0
        self._summary = ConsumeSummary()
        self._lock = threading.Lock()

    def run(self) -> ConsumeSummary:
        found = self._client.get_consumer(self._consumer)
        self._consumer = found.id
        keeper = LeaseKeeper(self._client, found.id, found.ack_wait_seconds, self._clock)
        pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="pullbridge-consume")
        started: dict[Future[None], Delivery] = {}
        keeper.start()
        try:
            try:
                self._receive_until_stopped(pool, started, keeper)
            except KeyboardInterrupt:
                self._count(interrupted=True)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                self._give_back([delivery for future, delivery in started.items() if future.cancelled()])
        finally:
            keeper.close()
        return self._summary

    def _stopped(self) -> bool:
        return self._stop.is_set() or (self._max_events is not None and self._received >= self._max_events)

    def _receive_until_stopped(
        self, pool: ThreadPoolExecutor, started: dict[Future[None], Delivery], keeper: LeaseKeeper
    ) -> None:
        capacity = max(self._batch_size, self._concurrency)
        failures = 0
        while not self._stopped():
            for future in [future for future in started if future.done()]:
                del started[future]
            if len(started) >= capacity:
                futures.wait(started, timeout=CAPACITY_POLL_SECONDS, return_when=futures.FIRST_COMPLETED)
                continue
            wanted = min(self._batch_size, capacity - len(started))
            if self._max_events is not None:
                wanted = min(wanted, self._max_events - self._received)
            try:
                deliveries = self._client.receive(self._consumer, max_batch_size=wanted, wait=self._wait)
            except _PASSING as exc:
                delay = self._receive_delay(exc, failures)
                logger.warning("receive failed (retried in %.2f s): %s", delay, exc)
                failures += 1
                self._stop.wait(delay)
                continue
            failures = 0
            keeper.hold([delivery.ack_id for delivery in deliveries], self._clock())
            self._received += len(deliveries)
            for delivery in deliveries:
                started[pool.submit(self._handle, delivery, keeper)] = delivery
        # max_events: what was received counts, so it is all handled (unless stop is set meanwhile)
        while not self._stop.is_set() and not all(future.done() for future in started):
            futures.wait(started, timeout=CAPACITY_POLL_SECONDS, return_when=futures.ALL_COMPLETED)

    def _receive_delay(self, exc: Exception, failures: int) -> float:
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        client = self._client
        return backoff_seconds(failures, base=client.backoff, cap=client.max_backoff, random=random.random)

    def _handle(self, delivery: Delivery, keeper: LeaseKeeper) -> None:
        try:
            self._handler(delivery.event)
        except Exception:
            delay = self._nack_delay(delivery.delivery_count)
            logger.exception(
                "the handler raised on event %s (delivery %d): delivered again in %d s",
                delivery.event.id,
                delivery.delivery_count,
                delay,
            )
            self._settle(delivery, nack_delay=delay)
            self._count(failed=1)
        else:
            self._settle(delivery, nack_delay=None)
            self._count(processed=1)
        finally:
            keeper.release(delivery.ack_id)

    def _nack_delay(self, delivery_count: int) -> int:
        attempt = max(0, delivery_count - 1)
        seconds = backoff_seconds(
            attempt, base=self._retry_backoff, cap=self._max_retry_delay, random=random.random
        )
        return min(MAX_NACK_DELAY, math.ceil(seconds))

    def _settle(self, delivery: Delivery, *, nack_delay: int | None) -> None:
        try:
            if nack_delay is None:
                expired = self._client.ack(self._consumer, [delivery.ack_id]).expired
            else:
                expired = self._client.nack(
                    self._consumer, [delivery.ack_id], delay_seconds=nack_delay
                ).expired
        except _SETTLE_FAILURES as exc:
            logger.warning(
                "could not settle event %s (it will be delivered again): %s", delivery.event.id, exc
            )
            expired = (delivery.ack_id,)
        if expired:
            self._count(expired=1)

    def _give_back(self, deliveries: list[Delivery]) -> None:
        """Received but never started (stopped first): back to the consumer at once, for any worker."""
        if not deliveries:
            return
        try:
            self._client.nack(self._consumer, deliveries)
        except _SETTLE_FAILURES as exc:
            logger.warning("could not give back %d events (delivered again later): %s", len(deliveries), exc)

    def _count(
        self, *, processed: int = 0, failed: int = 0, expired: int = 0, interrupted: bool = False
    ) -> None:
        with self._lock:
            summary = self._summary
            self._summary = replace(
                summary,
                processed=summary.processed + processed,
                failed=summary.failed + failed,
                expired=summary.expired + expired,
                interrupted=summary.interrupted or interrupted,
            )
