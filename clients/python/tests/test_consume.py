"""`Client.consume`, the worker loop, against an in-memory consumer on httpx.MockTransport: acks, nacks with
a backoff, lease extensions for slow handlers, parallel handlers, and each way it stops."""

from __future__ import annotations

import _thread
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from consumer_payloads import API_KEY, BASE_URL, consumer_json, event_json

from pullbridge_client import Client, Event, NotFound
from pullbridge_client.consume import LeaseKeeper

Handler = Callable[[Event], object]


class FakeConsumer:
    """One consumer over `events`: receive leases what is ready (new, or given back: a nack's delay is
    recorded, not waited), ack settles, extend records. Thread-safe: workers call it at once."""

    def __init__(self, events: int, *, ack_wait_seconds: int = 30) -> None:
        self.consumer = consumer_json("billing", ack_wait_seconds=ack_wait_seconds)
        self.ready: list[tuple[int, int]] = [(number, 1) for number in range(1, events + 1)]  # (event, count)
        self.leased: dict[str, tuple[int, int]] = {}
        self.acked: list[int] = []
        self.nacks: list[tuple[int, int, int]] = []  # (event, delivery count, delay)
        self.extends: list[dict[str, Any]] = []
        self.receives: list[dict[str, Any]] = []
        self.extended = threading.Event()
        self.failures: list[httpx.Response] = []  # answered to the next receives, in turn
        self.on_receive: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if (request.method, path) in (("GET", "/consumers/billing"), ("GET", "/consumers/cns_billing")):
            return httpx.Response(200, json=self.consumer)
        body = json.loads(request.content) if request.content else {}
        action = path.removeprefix("/consumers/cns_billing/")
        with self._lock:
            if action == "receive":
                return self._receive(body)
            if action == "ack":
                return self._settle(body, lambda number, count: self.acked.append(number), "acked")
            if action == "nack":
                return self._settle(body, lambda n, c: self._nack(n, c, body["delay_seconds"]), "nacked")
            if action == "extend":
                self.extends.append(body)
                self.extended.set()
                expired = [ack_id for ack_id in body["ack_ids"] if ack_id not in self.leased]
                held = len(body["ack_ids"]) - len(expired)
                answer = {"extended": held, "lease_expires_at": "2026-01-01T00:01:00Z", "expired": expired}
                return httpx.Response(200, json=answer)
        return httpx.Response(404, json={"error": {"type": "not_found", "message": f"no route {path}"}})

    def _receive(self, body: dict[str, Any]) -> httpx.Response:
        self.receives.append(body)
        if self.on_receive is not None:
            self.on_receive()
        if self.failures:
            return self.failures.pop(0)
        taken, self.ready = self.ready[: body["max_batch_size"]], self.ready[body["max_batch_size"] :]
        data = []
        for number, count in taken:
            ack_id = f"ack_{number}_{count}"
            self.leased[ack_id] = (number, count)
            data.append(
                {
                    "ack_id": ack_id,
                    "delivery_count": count,
                    "lease_expires_at": "2026",
                    "event": event_json(number),
                }
            )
        if not data and body["wait"]:
            time.sleep(0.01)  # a long poll that found nothing
        return httpx.Response(200, json={"data": data})

    def _nack(self, number: int, count: int, delay: int) -> None:
        self.nacks.append((number, count, delay))
        self.ready.append((number, count + 1))

    def _settle(self, body: dict[str, Any], settle: Callable[[int, int], None], name: str) -> httpx.Response:
        expired = []
        for ack_id in body["ack_ids"]:
            held = self.leased.pop(ack_id, None)
            if held is None:
                expired.append(ack_id)
            else:
                settle(*held)
        return httpx.Response(200, json={name: len(body["ack_ids"]) - len(expired), "expired": expired})


def make_client(api: FakeConsumer) -> Iterator[Client]:
    http = httpx.Client(transport=httpx.MockTransport(api))
    with http, Client(BASE_URL, API_KEY, http=http, sleep=lambda _: None, backoff=0.001) as client:
        yield client


@pytest.fixture
def api() -> FakeConsumer:
    return FakeConsumer(5)


@pytest.fixture
def client(api: FakeConsumer) -> Iterator[Client]:
    yield from make_client(api)


def _numbers(events: list[Event]) -> list[int]:
    return sorted(int(event.id.removeprefix("evt_")) for event in events)


# --- settling --------------------------------------------------------------------------------------


def test_each_event_handled_is_acked(api: FakeConsumer, client: Client) -> None:
    handled: list[Event] = []

    summary = client.consume("billing", handled.append, max_events=5)

    assert _numbers(handled) == [1, 2, 3, 4, 5]
    assert sorted(api.acked) == [1, 2, 3, 4, 5]
    assert (summary.processed, summary.failed, summary.expired, summary.interrupted) == (5, 0, 0, False)
    assert api.nacks == []


def test_an_event_the_handler_raises_on_is_nacked_with_a_delay_and_comes_again(
    api: FakeConsumer, client: Client
) -> None:
    seen: list[tuple[int, int]] = []

    def handle(event: Event) -> None:
        number = int(event.id.removeprefix("evt_"))
        seen.append((number, len([n for n, _ in seen if n == number]) + 1))
        if number == 3 and seen[-1][1] == 1:
            raise RuntimeError("flaky")

    summary = client.consume("billing", handle, max_events=6)

    assert [(number, count) for number, count, _ in api.nacks] == [(3, 1)]
    assert api.nacks[0][2] == 1  # the first retry waits retry_backoff (1 s), jittered and rounded up
    assert sorted(api.acked) == [1, 2, 3, 4, 5]
    assert (summary.processed, summary.failed) == (5, 1)


def test_the_nack_delay_grows_with_the_delivery_count_up_to_its_cap() -> None:
    def fail(event: Event) -> None:
        raise ValueError("poison")

    api = FakeConsumer(1)
    for client in make_client(api):
        summary = client.consume(
            "billing", fail, batch_size=1, max_events=4, retry_backoff=10, max_retry_delay=40
        )

    delays = {(number, count): delay for number, count, delay in api.nacks}
    assert 5 <= delays[1, 1] <= 10
    assert 10 <= delays[1, 2] <= 20
    assert 20 <= delays[1, 3] <= 40
    assert 20 <= delays[1, 4] <= 40  # capped at max_retry_delay
    assert (summary.processed, summary.failed) == (0, 4)


def test_an_ack_that_comes_after_the_lease_is_counted_as_expired(api: FakeConsumer, client: Client) -> None:
    def lose_the_lease(event: Event) -> None:
        api.leased.clear()  # as if the lease had run out while the handler ran

    summary = client.consume("billing", lose_the_lease, batch_size=1, max_events=1)

    assert (summary.processed, summary.expired) == (1, 1)


# --- leases ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_handlers_lease_is_extended_before_it_runs_out() -> None:
    # Given a 1 s lease (heartbeat every 0.25 s) and a handler whose work takes 0.6 s of the clock
    api = FakeConsumer(1, ack_wait_seconds=1)
    clock = FakeClock()
    extended_while_running: list[bool] = []

    def slow(event: Event) -> None:
        clock.now += 0.6
        extended_while_running.append(api.extended.wait(timeout=5))

    # When
    for client in make_client(api):
        summary = client.consume("billing", slow, max_events=1, clock=clock)

    # Then
    assert extended_while_running == [True]
    assert api.extends[0] == {"seconds": 1, "ack_ids": ["ack_1_1"]}
    assert summary.processed == 1


def test_a_fast_handlers_lease_is_not_extended(api: FakeConsumer, client: Client) -> None:
    summary = client.consume("billing", lambda event: None, max_events=5, clock=FakeClock())

    assert summary.processed == 5
    assert api.extends == []


def test_the_lease_keeper_extends_only_what_is_due_and_drops_what_expired(
    api: FakeConsumer, client: Client
) -> None:
    clock = FakeClock()
    keeper = LeaseKeeper(client, "cns_billing", 30, clock)
    api.leased["ack_held"] = (1, 1)
    keeper.hold(["ack_held", "ack_gone"], clock.now)

    clock.now += 14.9
    keeper.beat()
    assert api.extends == []

    clock.now += 0.1
    keeper.beat()
    assert api.extends == [{"seconds": 30, "ack_ids": ["ack_held", "ack_gone"]}]
    assert keeper.held() == ["ack_held"]
    assert keeper.lost == 1

    clock.now += 10
    keeper.beat()  # extended 10 s ago: not due again before 15 s
    assert len(api.extends) == 1


# --- concurrency -----------------------------------------------------------------------------------


def test_handlers_run_in_parallel_with_a_concurrency_above_one(api: FakeConsumer, client: Client) -> None:
    both_running = threading.Barrier(2, timeout=5)
    threads: set[str] = set()

    def handle(event: Event) -> None:
        threads.add(threading.current_thread().name)
        both_running.wait()  # passes only when two handlers are running at once

    summary = client.consume("billing", handle, batch_size=2, concurrency=2, max_events=4)

    assert (summary.processed, summary.failed) == (4, 0)
    assert len(threads) == 2


def test_handlers_run_one_at_a_time_with_a_concurrency_of_one(api: FakeConsumer, client: Client) -> None:
    both_running = threading.Barrier(2, timeout=0.2)

    summary = client.consume("billing", lambda event: both_running.wait(), batch_size=2, max_events=2)

    assert (summary.processed, summary.failed) == (0, 2)  # the barrier broke: never two at once


def test_no_more_is_received_than_the_workers_can_hold(api: FakeConsumer, client: Client) -> None:
    client.consume("billing", lambda event: None, batch_size=2, concurrency=3, max_events=5)

    assert all(receive["max_batch_size"] <= 2 for receive in api.receives)
    assert [receive["max_batch_size"] for receive in api.receives][-1] == 1  # only what max_events leaves


# --- stopping --------------------------------------------------------------------------------------


def test_setting_stop_ends_the_loop_after_the_running_handlers(api: FakeConsumer, client: Client) -> None:
    stop = threading.Event()
    handled: list[Event] = []

    def handle(event: Event) -> None:
        handled.append(event)
        if len(handled) == 2:
            stop.set()

    summary = client.consume("billing", handle, batch_size=1, stop=stop)

    assert _numbers(handled) == [1, 2]
    assert summary.processed == 2
    assert len(api.receives) == 2


def test_a_stop_set_before_the_start_receives_nothing(api: FakeConsumer, client: Client) -> None:
    stop = threading.Event()
    stop.set()

    summary = client.consume("billing", lambda event: None, stop=stop)

    assert summary.processed == 0
    assert api.receives == []


def test_max_events_bounds_what_is_received(api: FakeConsumer, client: Client) -> None:
    summary = client.consume("billing", lambda event: None, batch_size=10, max_events=3)

    assert [receive["max_batch_size"] for receive in api.receives] == [3]
    assert summary.processed == 3
    assert len(api.ready) == 2


def test_ctrl_c_lets_the_running_handler_finish_and_gives_back_what_had_not_started(
    api: FakeConsumer, client: Client, request: pytest.FixtureRequest
) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Ctrl-C is delivered to the main thread, and this test runs in another")
    # Python's own Ctrl-C handler, even where this run was started with SIGINT ignored (a background job
    # of a non-interactive shell): `interrupt_main` does nothing then.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def handle(event: Event) -> None:
        if event.id == "evt_0001":
            time.sleep(0.2)  # the loop now waits for room: three deliveries held, one running
            _thread.interrupt_main()  # Ctrl-C, while this handler runs and two deliveries wait
            time.sleep(1)

    summary = client.consume("billing", handle, batch_size=3)

    assert summary.interrupted
    assert (summary.processed, api.acked) == (1, [1])
    assert sorted(api.nacks) == [(2, 1, 0), (3, 1, 0)]  # given back without delay, for any worker


def test_a_receive_that_fails_for_a_passing_reason_is_retried(api: FakeConsumer, client: Client) -> None:
    api.failures = [
        httpx.Response(503, json={"error": {"type": "internal", "message": "storage unavailable"}}),
        httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"type": "rate_limited"}}),
    ]

    summary = client.consume("billing", lambda event: None, max_events=5)

    assert summary.processed == 5


def test_an_error_that_will_not_pass_stops_the_loop_and_is_raised(api: FakeConsumer, client: Client) -> None:
    api.failures = [httpx.Response(404, json={"error": {"type": "not_found", "message": "no consumer"}})]

    with pytest.raises(NotFound):
        client.consume("billing", lambda event: None)


@pytest.mark.parametrize(
    "arguments",
    [{"batch_size": 0}, {"batch_size": 1001}, {"concurrency": 0}, {"wait": 21}, {"max_events": 0}],
)
def test_bad_arguments_are_refused_before_any_request(
    api: FakeConsumer, client: Client, arguments: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="must be"):
        client.consume("billing", lambda event: None, **arguments)
    assert api.receives == []
