"""The consumers' workers: they receive, ack, nack, extend, term, ack too late, and die (abandoning what
they hold), each call recorded with its outcome (`bench.soak.consumer_check` reads them).

A settlement (ack, nack, extend, term) holds its consumer's lock from before it is sent until it is
recorded, and a receive takes that lock to record its answer: a settlement the server handled before a
receive is therefore always recorded before that receive, so the history's order is one the server could
have seen. A settlement whose answer is lost is sent again, unchanged, until one comes (an ack is
idempotent; a nack or term that landed answers `expired` on the retry, which the checker knows); one that
is never answered ends its worker.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from bench.soak.actors import Context, backoff
from bench.soak.history import HttpRecorder, send
from bench.soak.world import ACK_WAIT_SECONDS, ATTEMPTS

BATCH = 20
RECEIVE_WAIT_SECONDS = 2
DIE = 0.05
"""Per batch: the worker dies holding it (and each worker's third batch, so every run has deaths)."""
DIES_AT_BATCH = 3
FATES = (("ack", 0.82), ("nack", 0.08), ("extend", 0.05), ("term", 0.05))
"""Per delivery, of a batch handled in time."""
EXTEND_SECONDS = 6


class Worker:
    def __init__(
        self,
        context: Context,
        consumer: dict[str, Any],
        name: str,
        lock: threading.Lock,
        *,
        http: tuple[HttpRecorder, httpx.Client] | None = None,
    ) -> None:
        self.context = context
        self.consumer = consumer
        self.base = name
        self.generation = 1
        self.lock = lock
        self.recorder, self.http = http or context.http(name)
        self.rng = context.rng(name)
        self.path = f"/consumers/{consumer['id']}"
        self.batches = 0

    @property
    def name(self) -> str:
        return f"{self.base}.{self.generation}"

    def receive(self, wait: int, batch: int = BATCH) -> list[dict[str, Any]] | None:
        at = time.time()
        response = send(
            self.recorder,
            self.http,
            "POST",
            f"{self.path}/receive",
            json={"max_batch_size": batch, "wait": wait},
            timeout=wait + 60,
        )
        until = time.time()
        data = response.json()["data"] if response is not None and response.status_code == 200 else None
        with self.lock:
            self.context.history.record(
                "receive",
                self.name,
                consumer=self.consumer["id"],
                worker=self.name,
                status=None if response is None else response.status_code,
                deliveries=[
                    {
                        "event_id": item["event"]["id"],
                        "ack_id": item["ack_id"],
                        "delivery_count": item["delivery_count"],
                        "lease_expires_at": item["lease_expires_at"],
                    }
                    for item in data or []
                ],
                at=at,
                until=until,
            )
        if response is not None and response.status_code < 500 and response.status_code != 200:
            raise RuntimeError(f"{self.name}: receive answered {response.status_code}: {response.text}")
        return data

    def settle(self, op: str, ack_ids: list[str], **parameters: Any) -> dict[str, Any] | None:
        """Sends until answered; the answer, or None (the worker must then die)."""
        statuses: list[int | None] = []
        answer: dict[str, Any] | None = None
        with self.lock:
            at = time.time()
            for attempt in range(ATTEMPTS):
                response = send(
                    self.recorder,
                    self.http,
                    "POST",
                    f"{self.path}/{op}",
                    json={"ack_ids": ack_ids, **parameters},
                )
                statuses.append(None if response is None else response.status_code)
                if response is not None and response.status_code == 200:
                    answer = response.json()
                    break
                if response is not None and response.status_code < 500 and response.status_code != 429:
                    raise RuntimeError(f"{self.name}: {op} answered {response.status_code}: {response.text}")
                time.sleep(backoff(attempt, cap=1.0))
            self.context.history.record(
                "settle",
                self.name,
                consumer=self.consumer["id"],
                worker=self.name,
                op=op,
                ack_ids=ack_ids,
                ok=answer is not None,
                ambiguous=any(status is None or status >= 500 for status in statuses[:-1]),
                statuses=statuses,
                expired=(answer or {}).get("expired", []),
                lease_expires_at=(answer or {}).get("lease_expires_at"),
                at=at,
                until=time.time(),
                **parameters,
            )
        return answer

    def die(self) -> None:
        self.context.history.record(
            "death", self.name, consumer=self.consumer["id"], worker=self.name, at=time.time()
        )
        self.generation += 1

    def run(self) -> None:
        failures = 0
        while not self.context.stop.is_set():
            deliveries = self.receive(RECEIVE_WAIT_SECONDS)
            if deliveries is None:
                failures += 1
                self.context.pause(backoff(failures))
                continue
            failures = 0
            if deliveries:
                self.handle(deliveries)

    def handle(self, deliveries: list[dict[str, Any]]) -> None:
        draw = self.rng.random()
        ack_ids = [item["ack_id"] for item in deliveries]
        self.batches += 1
        if draw < DIE or self.batches == DIES_AT_BATCH:
            self.die()
            return
        if draw < DIE + self.context.late_acks:
            self.context.pause(ACK_WAIT_SECONDS + 1.0)
            if self.settle("ack", ack_ids) is None:
                self.die()
            return
        fates: dict[str, list[str]] = {fate: [] for fate, _ in FATES}
        for ack_id in ack_ids:
            fates[self.rng.choices([f for f, _ in FATES], [w for _, w in FATES])[0]].append(ack_id)
        answers = []
        if fates["extend"]:
            extended = self.settle("extend", fates["extend"], seconds=EXTEND_SECONDS)
            answers.append(extended)
            expired = set((extended or {}).get("expired", []))
            fates["ack"] += [ack_id for ack_id in fates["extend"] if ack_id not in expired]
        if fates["nack"]:
            answers.append(self.settle("nack", fates["nack"], delay_seconds=self.rng.choice([0, 1])))
        if fates["term"]:
            answers.append(self.settle("term", fates["term"], reason="soak"))
        if fates["ack"]:
            answers.append(self.settle("ack", fates["ack"]))
        if any(answer is None for answer in answers):
            self.die()

    def drain(self, *, not_before: float, give_up_after: float = 90.0) -> None:
        """At the end (on the fault-free stack): receives and acks until the consumer has nothing in
        flight, nothing waiting and nothing pending, once `not_before` passed (the log's gaps are
        resolved); then lists its dead letters."""
        deadline = time.monotonic() + give_up_after
        while time.monotonic() < deadline:
            deliveries = self.receive(0, batch=100)
            if deliveries:
                if self.settle("ack", [item["ack_id"] for item in deliveries]) is None:
                    raise RuntimeError(f"{self.name}: an ack on the fault-free stack was never answered")
                continue
            counts = send(self.recorder, self.http, "GET", self.path)
            if counts is not None and counts.status_code == 200:
                state = counts.json()
                idle = state["num_pending"] == state["num_ack_pending"] == state["num_waiting"] == 0
                if idle and time.time() >= not_before:
                    self.dead_letters()
                    self.context.history.record(
                        "drained", self.name, consumer=self.consumer["id"], worker=self.name, at=time.time()
                    )
                    return
            time.sleep(0.3)  # leases and nack delays still running out
        raise RuntimeError(f"consumer {self.consumer['name']} could not be drained in {give_up_after} s")

    def dead_letters(self) -> None:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        at = time.time()
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            response = send(self.recorder, self.http, "GET", f"{self.path}/dead-letters", params=params)
            if response is None or response.status_code != 200:
                raise RuntimeError(f"{self.name}: dead letters could not be listed")
            page = response.json()
            rows += [
                {
                    "event_id": row["event_id"],
                    "delivery_count": row["delivery_count"],
                    "reason": row["reason"],
                }
                for row in page["data"]
            ]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        self.context.history.record(
            "dead_letters",
            self.name,
            consumer=self.consumer["id"],
            worker=self.name,
            rows=rows,
            at=at,
            until=time.time(),
        )
