"""Freshness over real HTTP on the local stack: from a webhook's 200 to its event arriving at a client
long-polling `GET /events?wait=20` (the functions run in their own worker processes, as on Lambda)."""

from __future__ import annotations

import json
import random
import threading
import time

import httpx

from bench.bench_common import Rig, figure, log, median, percentile
from pullbridge_local.quickstart import StandardConnection, create_standard_connection
from pullbridge_local.server import LocalStack
from tests.e2e.test_local_stack import _send_webhook

WEBHOOKS = 120
WAIT_SECONDS = 20
GIVE_UP_SECONDS = 10.0


class Poller(threading.Thread):
    """Follows `next_cursor` with long polls and notes when each event id first arrives."""

    def __init__(self, url: str, api_key: str, connection_id: str) -> None:
        super().__init__(name="bench-poller", daemon=True)
        self._client = httpx.Client(
            base_url=url, timeout=WAIT_SECONDS + 10, headers={"authorization": f"Bearer {api_key}"}
        )
        self._connection_id = connection_id
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self.errors: list[str] = []
        self.changed = threading.Condition()
        self.stopping = threading.Event()

    def run(self) -> None:
        cursor = None
        while not self.stopping.is_set():
            params = {"wait": str(WAIT_SECONDS), "connection_id": self._connection_id}
            if cursor:
                params["cursor"] = cursor
            try:
                response = self._client.get("/events", params=params)
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc))
                continue
            now = time.perf_counter()
            if response.status_code != 200:
                self.errors.append(f"{response.status_code} {response.text[:200]}")
                time.sleep(0.1)
                continue
            page = response.json()
            cursor = page["next_cursor"]
            with self.changed:
                for event in page["data"]:
                    if event["id"] in self.arrived:
                        self.duplicates += 1
                    self.arrived.setdefault(event["id"], now)
                self.changed.notify_all()
        self._client.close()

    def wait_for(self, event_id: str, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        with self.changed:
            while event_id not in self.arrived:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.changed.wait(left)
            return self.arrived[event_id]


def _send(client: httpx.Client, connection: StandardConnection, n: int) -> str:
    """One signed Standard Webhooks delivery; returns its event id once it is answered 200."""
    body = json.dumps(
        {"type": "invoice.paid", "timestamp": "2026-11-24T00:00:00Z", "data": {"id": f"inv_{n}"}}
    ).encode()
    response = _send_webhook(client, connection, body)
    assert response.status_code == 200, response.text
    (event_id,) = response.json()["event_ids"]
    return str(event_id)


def run(rig: Rig) -> None:
    rng = random.Random(7)
    with LocalStack(port=0, run_schedules=False) as stack:
        connection = create_standard_connection(stack.url, stack.api_key, name="bench")
        log(f"local stack on {stack.url}")
        poller = Poller(stack.url, stack.api_key, connection.id)
        poller.start()
        latencies_ms: list[float] = []
        missing = 0
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            for n in range(WEBHOOKS):
                time.sleep(rng.uniform(0, 0.15))  # arrivals fall anywhere in the poll's cycle
                event_id = _send(client, connection, n)
                answered = time.perf_counter()
                arrived = poller.wait_for(event_id, GIVE_UP_SECONDS)
                if arrived is None:
                    missing += 1
                    continue
                # The poller may hold the event before the sender has read its 200: that is 0 ms late
                latencies_ms.append(max(0.0, arrived - answered) * 1000)
            poller.stopping.set()
            _send(client, connection, WEBHOOKS)  # ends the poller's last long poll
            poller.join(timeout=WAIT_SECONDS)
        log(
            f"freshness: {len(latencies_ms)} delivered, {missing} not within {GIVE_UP_SECONDS} s, "
            f"{poller.duplicates} duplicates, poller errors {poller.errors[:3]}"
        )
    figure("freshness_ms_p50", median(latencies_ms))
    figure("freshness_ms_p99", percentile(latencies_ms, 0.99))
    figure("freshness_ms_max", max(latencies_ms))
    figure("freshness_webhooks", f"{len(latencies_ms)} delivered, {missing} missing")
