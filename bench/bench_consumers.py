"""Consumers over real HTTP on the local stack (the API in its own worker processes, as on Lambda):

- `consumer_events_per_s`: 4 worker threads on one consumer, each receiving batches of 100 and acking
  each batch, over a pre-written log; against `events_paging_per_s`, one client paging the same log
  through `GET /events?limit=100`, interleaved round by round; `consumer_throughput_ratio` is the first
  over the second. `consumer_one_worker_*`: one worker alone, for what the contention costs.
- `consumer_requests_per_event`: the DynamoDB requests the API made during those consumer runs, per event
  delivered and acked. They are counted at the DynamoDB endpoint, a moto server in a process of its own
  behind a counting WSGI layer (`CountingApp`): the functions run in other processes, where no botocore
  hook can reach. Every request that arrives counts, a retried one each time, a refused one too. The
  `Query`s and `GetItem`s are also told apart by what they read (`read_kind`: the log, a consumer's own
  items, its record, an API key).
- `consumer_redelivery_ms_p50`/`_p99`: from a lease's expiry (`lease_expires_at`, `ack_wait_seconds=1`) to
  the event's redelivery reaching a worker blocked in `receive` with `wait=20`. Webhooks arrive at random
  moments; a waiting worker takes each and leaves it unacked, and its lease runs out while both workers
  wait again.
"""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import queue
import random
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import httpx

from bench.bench_common import Rig, figure, log, median, percentile
from bench.bench_freshness import _send as send_webhook
from bench.bench_list import seed_log
from pullbridge.settings import StorageSettings
from pullbridge.storage import Store, dynamodb_client
from pullbridge_local.quickstart import StandardConnection, create_standard_connection
from pullbridge_local.server import LOCAL_TENANT_ID, LocalStack
from pullbridge_local.template import create_tables, load_template

LOG_EVENTS = 4_000
WORKERS = 4
BATCH = 100
ROUNDS = 2
"""Paging and consumer runs alternate, each round a new consumer from the start of the log."""
RECEIVE_WAIT = 1
"""The throughput workers' `wait`: the log is full, so a receive waits only once it is drained."""
ONE_WORKER_BATCHES = 5

REDELIVERY_SAMPLES = 60
REDELIVERY_WAITERS = 2
REDELIVERY_WAIT = 20
ARRIVAL_GAP_SECONDS = (0.2, 0.7)
"""Between two webhooks to the redelivery consumer's connection: each is taken as it arrives, and its
lease runs out 1 s later, at a moment of its own."""
REDELIVERY_GIVE_UP_SECONDS = 120.0

COUNTS_PATH = "/__bench/requests"


# --- counting the DynamoDB requests, at the DynamoDB server ----------------------------------------------


def operation_of(environ: WSGIEnvironment) -> str:
    """The DynamoDB operation of a request: `X-Amz-Target: DynamoDB_20120810.Query` is `Query`."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.rpartition(".")[2] or "other"


def read_kind(environ: WSGIEnvironment) -> str:
    """What a `Query` or a `GetItem` reads, by its partition: "log" (a tenant's or a connection's log),
    "consumer" (a consumer's head, state, dead letters or receipts), "consumer record", "API key", or
    "other". The body is read and put back for the application."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = json.loads(body)
        partition = (request.get("Key") or {}).get("pk") or request["ExpressionAttributeValues"][":pk"]
        partition = partition["S"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return "other"
    if partition.startswith("T#"):
        return "consumer" if "#K#" in partition else "log"
    if partition.startswith("CONSUMER#"):
        return "consumer record"
    return "API key" if partition.startswith("KEY#") else "other"


@dataclass
class RequestCounts:
    """What the DynamoDB server was asked, by operation: requests, those it refused (a 4xx or 5xx: a
    cancelled transaction, a failed condition), the items its reads read (a Query's `ScannedCount`, a
    GetItem's item, a BatchGetItem's items), and the seconds it spent answering them."""

    requests: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    items_read: Counter[str] = field(default_factory=Counter)
    queries: Counter[str] = field(default_factory=Counter)
    """The `Query`s and `GetItem`s by what they read (`Query log`, `GetItem API key`: `read_kind`);
    `query_seconds` and `query_returned` (the items in their answers, after any filter) likewise."""
    query_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    query_returned: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def add(self, other: RequestCounts) -> None:
        self.requests.update(other.requests)
        self.refused.update(other.refused)
        self.items_read.update(other.items_read)
        self.queries.update(other.queries)
        self.query_returned.update(other.query_returned)
        for kind, seconds in other.query_seconds.items():
            self.query_seconds[kind] += seconds
        for name, seconds in other.seconds.items():
            self.seconds[name] += seconds

    def to_json(self) -> dict[str, dict[str, float]]:
        return {
            "requests": dict(self.requests),
            "refused": dict(self.refused),
            "seconds": dict(self.seconds),
            "items_read": dict(self.items_read),
            "queries": dict(self.queries),
            "query_seconds": dict(self.query_seconds),
            "query_returned": dict(self.query_returned),
        }

    @classmethod
    def from_json(cls, document: dict[str, dict[str, float]]) -> RequestCounts:
        return cls(
            Counter({name: int(count) for name, count in document["requests"].items()}),
            Counter({name: int(count) for name, count in document["refused"].items()}),
            defaultdict(float, document["seconds"]),
            Counter({name: int(count) for name, count in document["items_read"].items()}),
            Counter({name: int(count) for name, count in document.get("queries", {}).items()}),
            defaultdict(float, document.get("query_seconds", {})),
            Counter({name: int(count) for name, count in document.get("query_returned", {}).items()}),
        )

    def describe(self) -> str:
        """`Query 3 (250 items, 12 ms), TransactWriteItems 2 (1 refused, 30 ms)`, most requested first."""
        parts = []
        for name, count in self.requests.most_common():
            items = f"{self.items_read[name]} items, " if self.items_read[name] else ""
            refused = f"{self.refused[name]} refused, " if self.refused[name] else ""
            kinds = "".join(
                f"{n} {kind.partition(' ')[2]} ({self.query_returned[kind]} returned, "
                f"{self.query_seconds[kind] * 1000:.0f} ms), "
                for kind, n in sorted(self.queries.items())
                if kind.startswith(f"{name} ")
            )

            parts.append(f"{name} {count} ({kinds}{items}{refused}{self.seconds[name] * 1000:.0f} ms)")
        return ", ".join(parts) or "none"


class CountingApp:
    """WSGI middleware in front of moto's server: counts and times every request by operation. `GET
    COUNTS_PATH` answers the counts so far as JSON, and with `?reset=1` starts them again. The server is
    single-threaded, so no lock is needed and the times do not overlap."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self.counts = RequestCounts()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            body = json.dumps(self.counts.to_json()).encode()
            if parse_qs(str(environ.get("QUERY_STRING", ""))).get("reset"):
                self.counts = RequestCounts()
            start_response("200 OK", [("content-type", "application/json")])
            return [body]
        operation = operation_of(environ)
        kind = f"{operation} {read_kind(environ)}" if operation in ("Query", "GetItem") else ""
        statuses: list[str] = []

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        started = time.perf_counter()
        answer = self._app(environ, recording)
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        self.counts.seconds[operation] += time.perf_counter() - started
        self.counts.requests[operation] += 1
        if not statuses or not statuses[0].startswith("2"):
            self.counts.refused[operation] += 1
        elif operation in READS:
            self.counts.items_read[operation] += items_read(operation, body)
        if kind:
            self.counts.queries[kind] += 1
            self.counts.query_seconds[kind] += time.perf_counter() - started
            if statuses and statuses[0].startswith("2"):
                answer = json.loads(body)
                self.counts.query_returned[kind] += int(answer.get("Count", 1 if "Item" in answer else 0))
        return [body]


READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


def items_read(operation: str, body: bytes) -> int:
    """The items a successful read's answer says it read."""
    answer = json.loads(body)
    if operation == "GetItem":
        return 1 if "Item" in answer else 0
    if operation == "BatchGetItem":
        return sum(len(items) for items in answer.get("Responses", {}).values())
    return int(answer.get("ScannedCount", 0))


def _serve_counting_dynamodb(ports: multiprocessing.queues.Queue[int]) -> None:
    """The child process: moto's DynamoDB (with the local stack's transactions) behind `CountingApp`,
    single-threaded, as `pullbridge_local.dynamodb.EmbeddedDynamoDB` serves it."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from pullbridge_local import moto_queries, moto_transactions

    class QuietRequestHandler(MotoRequestHandler):
        def log_request(self, *args: Any) -> None:
            """No access-log line per request."""

    moto_transactions.install()
    moto_queries.install()
    application = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, application, threaded=False, request_handler=QuietRequestHandler)
    ports.put(server.server_port)
    server.serve_forever()


class CountingDynamoDB:
    """A moto DynamoDB in a child process of its own (as the local stack's is), with `CountingApp` in
    front: the local stack's functions are pointed at it, and its counts read over HTTP."""

    def __init__(self) -> None:
        self._process: multiprocessing.process.BaseProcess | None = None
        self._port: int | None = None

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise RuntimeError("CountingDynamoDB is not started")
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> CountingDynamoDB:
        context = multiprocessing.get_context("spawn")
        ports: multiprocessing.queues.Queue[int] = context.Queue()
        self._process = context.Process(
            target=_serve_counting_dynamodb, args=(ports,), name="counting-dynamodb", daemon=True
        )
        self._process.start()
        self._port = ports.get(timeout=60)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=10)
            self._process = None
        self._port = None

    def counts(self, *, reset: bool = False) -> RequestCounts:
        url = f"{self.endpoint_url}{COUNTS_PATH}{'?reset=1' if reset else ''}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own local server
            return RequestCounts.from_json(json.loads(response.read()))

    def reset(self) -> None:
        self.counts(reset=True)


# --- the HTTP API, as a worker uses it ---------------------------------------------------------------------


class Api:
    """One client's keep-alive connection to the stack's HTTP API."""

    def __init__(self, url: str, api_key: str) -> None:
        self._client = httpx.Client(
            base_url=url, timeout=REDELIVERY_WAIT + 30, headers={"authorization": f"Bearer {api_key}"}
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._client.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    def create_consumer(self, name: str, **settings: Any) -> None:
        self.call("POST", "/consumers", json={"name": name, "start": "all", **settings})

    def receive(self, consumer: str, max_batch_size: int, wait: float) -> list[dict[str, Any]]:
        body = {"max_batch_size": max_batch_size, "wait": wait}
        data: list[dict[str, Any]] = self.call("POST", f"/consumers/{consumer}/receive", json=body)["data"]
        return data

    def ack(self, consumer: str, ack_ids: list[str]) -> dict[str, Any]:
        return self.call("POST", f"/consumers/{consumer}/ack", json={"ack_ids": ack_ids})


def epoch(iso: str) -> float:
    """`2026-11-30T12:00:00.123Z` as seconds since the epoch."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- throughput: paging the log, and 4 workers consuming it ----------------------------------------------


def page_through(url: str, api_key: str) -> tuple[int, float]:
    """(events, seconds) of one client reading the whole log with `GET /events?limit=100`."""
    events = 0
    cursor: str | None = None
    with Api(url, api_key) as api:
        started = time.perf_counter()
        while True:
            params = {"limit": str(BATCH)} | ({"cursor": cursor} if cursor else {})
            page = api.call("GET", "/events", params=params)
            events += len(page["data"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return events, time.perf_counter() - started


@dataclass
class ConsumerRun:
    """What the workers of one consumer run shared and saw."""

    total: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    acked: int = 0
    event_ids: Counter[str] = field(default_factory=Counter)
    receives: int = 0
    empty_receives: int = 0
    expired: int = 0
    errors: list[str] = field(default_factory=list)
    finished_at: float = 0.0

    def settled(self, deliveries: list[dict[str, Any]], acked: int, expired: int) -> None:
        with self.lock:
            self.receives += 1
            self.acked += acked
            self.expired += expired
            self.event_ids.update(delivery["event"]["id"] for delivery in deliveries)
            if self.acked >= self.total and not self.done.is_set():
                self.finished_at = time.perf_counter()
                self.done.set()

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.event_ids.values())


def _work(url: str, api_key: str, consumer: str, run: ConsumerRun) -> None:
    """One worker: receive a batch, ack it, until the run has acked every event of the log."""
    with Api(url, api_key) as api:
        while not run.done.is_set():
            try:
                deliveries = api.receive(consumer, BATCH, RECEIVE_WAIT)
                if not deliveries:
                    with run.lock:
                        run.empty_receives += 1
                    continue
                answer = api.ack(consumer, [delivery["ack_id"] for delivery in deliveries])
            except (httpx.HTTPError, RuntimeError) as exc:
                with run.lock:
                    run.errors.append(repr(exc))
                continue
            run.settled(deliveries, int(answer["acked"]), len(answer["expired"]))


def consume(url: str, api_key: str, consumer: str, total: int) -> tuple[ConsumerRun, float]:
    """The run of `WORKERS` workers through `consumer` (new, of the whole log), and its seconds until the
    last of its `total` events was acked."""
    run = ConsumerRun(total)
    workers = [
        threading.Thread(target=_work, args=(url, api_key, consumer, run), name=f"bench-worker-{n}")
        for n in range(WORKERS)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return run, run.finished_at - started


def warm_up(url: str, api_key: str, environments: int) -> None:
    """`environments` API execution environments started and warm before anything is timed: as many
    receives at once, each held a second by an empty consumer (a busy environment is not reused)."""
    with Api(url, api_key) as api:
        api.call("POST", "/consumers", json={"name": "warm-up", "start": "new"})

    def hold() -> None:
        with Api(url, api_key) as api:
            api.receive("warm-up", 1, 1)

    threads = [threading.Thread(target=hold) for _ in range(environments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@dataclass
class OneWorker:
    """A worker alone on a consumer: its receives' and acks' requests, and its time."""

    receives: RequestCounts = field(default_factory=RequestCounts)
    acks: RequestCounts = field(default_factory=RequestCounts)
    events: int = 0
    seconds: float = 0.0


def one_worker(url: str, api_key: str, dynamodb: CountingDynamoDB, batches: int) -> OneWorker:
    """`batches` receives of 100 new events, each acked, by one worker alone on a consumer whose name
    its environment has already resolved: the requests of each call, and the time, without contention."""
    alone = OneWorker()
    with Api(url, api_key) as api:
        api.create_consumer("alone", ack_wait_seconds=60)
        first = api.receive("alone", 1, 0)  # resolves the name in this environment; not measured
        api.ack("alone", [delivery["ack_id"] for delivery in first])
        for _ in range(batches):
            dynamodb.reset()
            started = time.perf_counter()
            deliveries = api.receive("alone", BATCH, 0)
            alone.receives.add(dynamodb.counts(reset=True))
            answer = api.ack("alone", [delivery["ack_id"] for delivery in deliveries])
            alone.seconds += time.perf_counter() - started
            alone.acks.add(dynamodb.counts(reset=True))
            # A batch of 100 is one commit of 99 new events (a head move and 99 claims fill a transaction).
            assert 0 < len(deliveries) <= BATCH, len(deliveries)
            assert answer["acked"] == len(deliveries), answer
            alone.events += len(deliveries)
    return alone


# --- redelivery: from a lease's expiry to a waiting worker -------------------------------------------------


@dataclass
class Redeliveries:
    """Leases seen (event id -> the expiry of its latest lease) and the redeliveries' lateness."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    lease_expiry: dict[str, float] = field(default_factory=dict)
    late_ms: list[float] = field(default_factory=list)
    delivery_counts: Counter[int] = field(default_factory=Counter)
    acks: queue.Queue[str | None] = field(default_factory=queue.Queue)
    """The ack ids of the redeliveries, for the acker; None ends it."""
    expired_acks: int = 0
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    """The webhooks sent to the redelivery consumer's connection: events in the tenant's log too."""

    def received(self, deliveries: list[dict[str, Any]], at: float) -> None:
        """A first delivery is left to expire; a redelivery is a sample (how long after the expiry of
        the lease before it it arrived) and is acked."""
        with self.lock:
            for delivery in deliveries:
                event_id, count = delivery["event"]["id"], int(delivery["delivery_count"])
                self.delivery_counts[count] += 1
                expired_at = self.lease_expiry.get(event_id)
                self.lease_expiry[event_id] = epoch(delivery["lease_expires_at"])
                if count > 1 and expired_at is not None:
                    self.late_ms.append((at - expired_at) * 1000)
                    self.acks.put(delivery["ack_id"])
            if len(self.late_ms) >= REDELIVERY_SAMPLES:
                self.stop.set()


def _wait_for_redeliveries(url: str, api_key: str, consumer: str, seen: Redeliveries) -> None:
    with Api(url, api_key) as api:
        while not seen.stop.is_set():
            try:
                deliveries = api.receive(consumer, 10, REDELIVERY_WAIT)
            except (httpx.HTTPError, RuntimeError) as exc:
                seen.errors.append(repr(exc))
                continue
            seen.received(deliveries, time.time())


def _ack_redeliveries(url: str, api_key: str, consumer: str, seen: Redeliveries) -> None:
    """Acks off the waiting workers' threads, so a worker is back in `receive` at once."""
    with Api(url, api_key) as api:
        while (ack_id := seen.acks.get()) is not None:
            try:
                seen.expired_acks += len(api.ack(consumer, [ack_id])["expired"])
            except (httpx.HTTPError, RuntimeError) as exc:
                seen.errors.append(repr(exc))


def redeliver(url: str, api_key: str, connection: StandardConnection) -> Redeliveries:
    """Two workers wait in `receive` on a consumer of one connection's log, with 1 s leases. Webhooks
    arrive at random moments; a worker takes each one as it arrives and leaves it unacked, as a worker
    that died would, so its lease runs out 1 s later, while both workers are waiting again. The log is
    drained between arrivals: the waiting workers only probe, as they would on a quiet consumer."""
    consumer = "redelivery"
    with Api(url, api_key) as api:
        api.create_consumer(
            consumer, start="new", filters={"connection_id": connection.id}, ack_wait_seconds=1
        )
    seen = Redeliveries()
    acker = threading.Thread(target=_ack_redeliveries, args=(url, api_key, consumer, seen))
    waiters = [
        threading.Thread(target=_wait_for_redeliveries, args=(url, api_key, consumer, seen), daemon=True)
        for _ in range(REDELIVERY_WAITERS)
    ]
    acker.start()
    for waiter in waiters:
        waiter.start()
    rng = random.Random(7)
    deadline = time.perf_counter() + REDELIVERY_GIVE_UP_SECONDS
    with httpx.Client(base_url=url, timeout=30) as webhooks:
        for n in itertools.count():
            if seen.stop.wait(rng.uniform(*ARRIVAL_GAP_SECONDS)):
                break
            if time.perf_counter() > deadline:
                log(f"redelivery: gave up after {REDELIVERY_GIVE_UP_SECONDS} s")
                seen.stop.set()
                break
            send_webhook(webhooks, connection, n)
            seen.sent += 1
        # Something new for each waiter, so each returns at once
        for _ in range(REDELIVERY_WAITERS):
            send_webhook(webhooks, connection, -1)
            seen.sent += 1
    seen.acks.put(None)
    acker.join()
    for waiter in waiters:
        waiter.join(timeout=REDELIVERY_WAIT + 10)
    return seen


# --- the benchmark -------------------------------------------------------------------------------------


def _seed(endpoint: str, connection_id: str) -> None:
    """The tenant's log of `LOG_EVENTS` events, written straight to the stack's tables."""
    tables = create_tables(dynamodb_client(endpoint), load_template())  # they exist: this names them
    settings = StorageSettings(
        events_table=tables["EventsTable"], control_table=tables["ControlTable"], dynamodb_endpoint=endpoint
    )
    store = Store(dynamodb_client(endpoint), settings)
    seed_log(store, LOCAL_TENANT_ID, [(connection_id, "bench.happened")] * LOG_EVENTS)


def _per_call(counts: RequestCounts, calls: int) -> str:
    return ", ".join(f"{name} {count / calls:g}" for name, count in counts.requests.most_common())


def _per_event(counts: RequestCounts, events: int) -> str:
    return ", ".join(f"{name} {count / events:.4f}" for name, count in counts.requests.most_common())


@dataclass
class Throughput:
    """The paging and consumer rounds: each round's rates, and the consumers' requests and events."""

    paging_rates: list[float] = field(default_factory=list)
    consumer_rates: list[float] = field(default_factory=list)
    counts: RequestCounts = field(default_factory=RequestCounts)
    events: int = 0
    paging_counts: RequestCounts = field(default_factory=RequestCounts)
    paged_events: int = 0
    creation_counts: RequestCounts = field(default_factory=RequestCounts)
    """The requests of creating the consumers, which counting their backlog makes."""


def throughput(url: str, api_key: str, dynamodb: CountingDynamoDB, log_events: int) -> Throughput:
    """`ROUNDS` rounds of a paging pass over the whole log, then `WORKERS` workers consuming all of it."""
    measured = Throughput()
    for round_number in range(ROUNDS):
        dynamodb.reset()
        events, seconds = page_through(url, api_key)
        measured.paging_counts.add(dynamodb.counts(reset=True))
        assert events == log_events, events
        measured.paging_rates.append(events / seconds)
        measured.paged_events += events
        # Created outside the counts: its answer's exact `num_pending` reads the whole log once, a cost of
        # the consumer's creation (`positions.backlog`), not of delivering its events
        with Api(url, api_key) as api:
            api.create_consumer(f"bench-{round_number}", ack_wait_seconds=60)
        measured.creation_counts.add(dynamodb.counts(reset=True))
        run, seconds = consume(url, api_key, f"bench-{round_number}", log_events)
        counts = dynamodb.counts(reset=True)
        assert not run.errors, run.errors[:3]
        assert len(run.event_ids) == log_events, len(run.event_ids)
        assert run.duplicates == 0, run.duplicates
        measured.consumer_rates.append(run.acked / seconds)
        measured.counts.add(counts)
        measured.events += run.acked
        log(
            f"round {round_number}: paging {measured.paging_rates[-1]:.0f}/s; consumer "
            f"{measured.consumer_rates[-1]:.0f}/s ({run.receives} batches, {run.empty_receives} empty "
            f"receives, {run.expired} expired acks); DynamoDB: {counts.describe()}; "
            f"DynamoDB busy {sum(counts.seconds.values()) / seconds:.0%} of the run"
        )
    return measured


def run(rig: Rig) -> None:
    """The rig's DynamoDB is not used: the stack gets one of its own, which counts its requests."""
    with (
        CountingDynamoDB() as dynamodb,
        LocalStack(port=0, run_schedules=False, dynamodb_endpoint=dynamodb.endpoint_url) as stack,
    ):
        url, key = stack.url, stack.api_key
        connection = create_standard_connection(url, key, name="bench")
        started = time.perf_counter()
        _seed(dynamodb.endpoint_url, connection.id)
        log(f"local stack on {url}; seeded {LOG_EVENTS} events in {time.perf_counter() - started:.1f} s")
        warm_up(url, key, WORKERS)

        # First, while the table holds little but the log: moto answers a Query by walking the whole
        # table, and every ack leaves a receipt in it for a day, so after the throughput rounds (8,000
        # acks) each of the redelivery's queries would take twice as long as on the log alone.
        dynamodb.reset()
        seen = redeliver(url, key, create_standard_connection(url, key, name="redelivery"))
        counts = dynamodb.counts(reset=True)
        late = sorted(seen.late_ms)
        log(
            f"redelivery: {len(late)} samples, deliveries by count {dict(seen.delivery_counts)}, "
            f"{seen.expired_acks} acks refused as expired, errors {seen.errors[:3]}; ms: min {late[0]:.0f}, "
            f"deciles {[round(percentile(late, d / 10)) for d in range(1, 10)]}, max {late[-1]:.0f}; "
            f"DynamoDB: {counts.describe()}"
        )

        alone = one_worker(url, key, dynamodb, ONE_WORKER_BATCHES)
        log(f"one worker alone, {ONE_WORKER_BATCHES} receives of {BATCH}: {alone.receives.describe()}")
        log(f"their acks: {alone.acks.describe()}")

        measured = throughput(url, key, dynamodb, LOG_EVENTS + seen.sent)

    consumer_rate, paging_rate = median(measured.consumer_rates), median(measured.paging_rates)
    consumed, events = measured.counts, measured.events
    figure("consumer_events_per_s", consumer_rate)
    figure("events_paging_per_s", paging_rate)
    figure("consumer_throughput_ratio", consumer_rate / paging_rate)
    figure("consumer_requests_per_event", consumed.total / events)
    figure("consumer_requests_per_event_by_operation", _per_event(consumed, events))
    figure(
        "consumer_reads_per_event_by_kind",
        ", ".join(f"{kind} {count / events:.4f}" for kind, count in consumed.queries.most_common()),
    )
    figure("consumer_items_read_per_event", sum(consumed.items_read.values()) / events)
    creation = measured.creation_counts
    figure("consumer_creation_requests", creation.total / ROUNDS)
    figure("consumer_creation_items_read", sum(creation.items_read.values()) / ROUNDS)
    paging, paged = measured.paging_counts, measured.paged_events
    figure("events_paging_requests_per_event", paging.total / paged)
    figure("events_paging_items_read_per_event", sum(paging.items_read.values()) / paged)
    figure("consumer_lost_races_per_batch", consumed.refused["TransactWriteItems"] * BATCH / events)
    figure("consumer_one_worker_events_per_s", alone.events / alone.seconds)
    figure("consumer_one_worker_requests_per_event", (alone.receives.total + alone.acks.total) / alone.events)
    figure("consumer_receive_requests", _per_call(alone.receives, ONE_WORKER_BATCHES))
    figure("consumer_ack_requests", _per_call(alone.acks, ONE_WORKER_BATCHES))
    figure("consumer_redelivery_ms_p50", median(seen.late_ms))
    figure("consumer_redelivery_ms_p99", percentile(seen.late_ms, 0.99))
    figure("consumer_redelivery_samples", len(seen.late_ms))
