"""One soak: the world, the actors for `duration` seconds under the fault plan, the end on a fault-free
stack over the same tables, and the checker over what was recorded.

The end, in order: the actors stop; the faulty stack stops (its workers die where they are, as Lambda's
would be recycled); on the fault-free stack, a pull whose worker died has its lease run out (the soak
moves its `lease_until` to now rather than wait up to two minutes) and the schedule ends it, then a full
scan of each subscription runs to success; the pollers and the consumers drain; and the log (read from
the table itself), the pulls, the mutations, the records and the providers' records are written down.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.soak import builds
from bench.soak.actors import (
    Churn,
    Context,
    Mutator,
    Poller,
    guarded,
    pull_driver,
    standard_writer,
    stripe_writer,
)
from bench.soak.checker import Report, check
from bench.soak.history import History, HttpRecorder, read_history, read_json_lines, send
from bench.soak.workers import Worker
from bench.soak.world import (
    MARKERS,
    Setup,
    create_world,
    journal,
    must,
    output_paths,
    read_log,
    record_upstream,
    store_of,
)
from pullbridge.pulls.records import load_subscription, save_subscription
from pullbridge.settings import StorageSettings
from pullbridge_local.dynamodb import EmbeddedDynamoDB
from pullbridge_local.faults import FaultPlan
from pullbridge_local.server import LocalStack
from tests.fakes.provider_server import FakeProviderServer

logger = logging.getLogger(__name__)

WORKERS_PER_CONSUMER = 2
FIRST_TICK_SECONDS = 5.0
"""The faulty stack's first scheduled run of the puller (then every minute, as the template says): after
the world is made, so it runs the first full scans."""
FINAL_SCAN_SECONDS = 60.0


@dataclass(frozen=True)
class SoakConfig:
    out: Path
    duration: float = 600.0
    seed: int = 1
    faults: str = "dynamodb:0.1,provider:0.2"
    broken: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    sizes: dict[str, int] = field(default_factory=lambda: {"stripe": 150, "generic": 120})
    late_acks: float = 0.04
    """Per batch a consumer worker receives: how often it acks only after its leases ran out."""
    trigger_every: tuple[float, float] = (2.0, 6.0)
    """Seconds between two full scans the pull driver triggers."""
    before_trigger: Callable[[FakeProviderServer, int], None] | None = None
    """See `Context.before_trigger`."""
    initial_scans: bool = False
    """Run a first full scan of each subscription during the setup, on the fault-free stack: every later
    scan then starts from a whole snapshot (else the schedule's first tick, under faults, runs them)."""


@dataclass
class SoakResult:
    config: SoakConfig
    history_path: Path
    faults_path: Path
    report: Report
    history: list[dict[str, Any]]
    seconds: dict[str, float]
    crashes: list[str]


def _progress(message: str) -> None:
    logger.warning("soak: %s", message)


def run_soak(config: SoakConfig) -> SoakResult:
    history_path, faults_path = output_paths(config.out)
    faults_path.unlink(missing_ok=True)
    plan = FaultPlan.parse(config.faults, seed=config.seed, log_path=faults_path) if config.faults else None
    environment = builds.build_environment(config.broken, config.conditions)
    seconds: dict[str, float] = {}
    began = time.monotonic()
    cursor_secret = secrets.token_hex(32)
    with History(history_path) as history, builds.serving(), EmbeddedDynamoDB(isolated=True) as dynamodb:
        audit = LocalStack(
            port=0, dynamodb_endpoint=dynamodb.endpoint_url, cursor_secret=cursor_secret, run_schedules=False,
            faults=None, function_environment=environment,
        )  # fmt: skip
        with audit, FakeProviderServer() as fake:
            soak = LocalStack(
                port=0, api_key=audit.api_key, dynamodb_endpoint=dynamodb.endpoint_url,
                cursor_secret=cursor_secret, faults=plan, function_environment=environment,
                first_scheduled_run_after_seconds=FIRST_TICK_SECONDS,
            )  # fmt: skip
            starting = _start_in_background(soak)  # while the world is made on the fault-free stack
            try:
                context = _setup(history, audit, fake, config)
                starting.join()
                seconds["setup"] = time.monotonic() - began
                context.url = soak.url
                _progress(f"running {config.duration:.0f} s under {config.faults or 'no faults'}")
                pollers, workers = _run_actors(context, config.duration)
            finally:
                starting.join()
                soak.stop()
            seconds["run"] = time.monotonic() - began - seconds["setup"]
            _progress("the end, on the fault-free stack")
            resolved_at = time.time() + StorageSettings.write_deadline_seconds + 1.0
            _finale(context, audit, dynamodb.endpoint_url, pollers, workers, resolved_at)
            seconds["finale"] = time.monotonic() - began - seconds["setup"] - seconds["run"]
    lines = read_history(history_path)
    report = check(lines, read_json_lines(faults_path))
    seconds["total"] = time.monotonic() - began
    return SoakResult(config, history_path, faults_path, report, lines, seconds, context.crashes)


def _start_in_background(stack: LocalStack) -> threading.Thread:
    """`stack.start()` in a thread; a failure shows when its URL is asked for."""
    thread = threading.Thread(target=stack.start, name="soak-stack-start", daemon=True)
    thread.start()
    return thread


def _setup(history: History, audit: LocalStack, fake: FakeProviderServer, config: SoakConfig) -> Context:
    """The world, made on the fault-free stack, then written down, with the providers' records, before
    any change is journaled."""
    recorder, http = Context(history, audit.url, audit.api_key, Setup(), fake, config.seed).http(
        "setup", stack="audit"
    )
    with http:
        setup = create_world(recorder, http, fake, seed=config.seed, sizes=config.sizes)
        context = Context(history, audit.url, audit.api_key, setup, fake, config.seed)
        for subscription in setup.subscriptions if config.initial_scans else ():
            _full_scan(
                context,
                recorder,
                http,
                subscription,
                lambda: audit.invoke_schedule("PullerFunction"),
                kind="initial_scan",
            )
    history.record(
        "setup",
        "soak",
        connections=setup.connections,
        subscriptions=setup.subscriptions,
        consumers=setup.consumers,
        markers=MARKERS,
        config={
            "duration": config.duration,
            "seed": config.seed,
            "faults": config.faults,
            "broken": list(config.broken),
            "conditions": list(config.conditions),
        },
        at=time.time(),
    )
    record_upstream(history, fake, "upstream_initial")
    journal(history, fake)
    return Context(
        history,
        "",
        audit.api_key,
        setup,
        fake,
        config.seed,
        late_acks=config.late_acks,
        trigger_every=config.trigger_every,
        before_trigger=config.before_trigger,
    )


def _run_actors(context: Context, duration: float) -> tuple[list[Poller], list[Worker]]:
    pollers = [
        Poller(context, "poller-all", {}),
        Poller(context, "poller-stripe", {"connection_id": context.setup.connection_id("stripe")}),
    ]
    locks = {consumer["id"]: threading.Lock() for consumer in context.setup.consumers}
    workers = [
        Worker(context, consumer, f"{consumer['role']}-w{index}", locks[consumer["id"]])
        for consumer in context.setup.consumers
        for index in range(1, WORKERS_PER_CONSUMER + 1)
    ]
    actors = {
        "standard-writer": lambda: standard_writer(context),
        "stripe-writer": lambda: stripe_writer(context),
        "churn": Churn(context).run,
        "pull-driver": lambda: pull_driver(context),
        "mutator": Mutator(context).run,
        **{poller.name: poller.run for poller in pollers},
        **{worker.base: worker.run for worker in workers},
    }
    threads = [guarded(context, name, body) for name, body in actors.items()]
    for thread in threads:
        thread.start()
    context.stop.wait(duration)
    context.stop.set()
    for thread in threads:
        thread.join(timeout=60)
        if thread.is_alive():
            context.crashes.append(f"{thread.name} did not stop")
    return pollers, workers


def _finale(
    context: Context,
    audit: LocalStack,
    endpoint: str,
    pollers: list[Poller],
    workers: list[Worker],
    resolved_at: float,
) -> None:
    """`resolved_at`: when every gap a killed writer of the faulty stack left can be fenced by readers."""
    history = context.history
    recorder, http = context.http("finale", stack="audit", url=audit.url)
    with http:
        _expire_dead_pulls(context, endpoint)
        audit.invoke_schedule("PullerFunction")
        for subscription in context.setup.subscriptions:
            _full_scan(context, recorder, http, subscription, lambda: audit.invoke_schedule("PullerFunction"))
        record_upstream(history, context.fake, "upstream_final")
        _drain(context, audit.url, pollers, workers, resolved_at)
        for position, event in read_log(endpoint):
            history.record("log", "finale", position=position, event=event)
        history.record("pulls", "finale", pulls=_all(recorder, http, "/external-event-pulls"), at=time.time())
        history.record("mutations", "finale", mutations=_all(recorder, http, "/mutations"), at=time.time())
        for subscription in context.setup.subscriptions:
            records = _all(
                recorder,
                http,
                "/records",
                connection_id=subscription["connection_id"],
                collection=subscription["collection"],
            )
            history.record(
                "records",
                "finale",
                subscription_id=subscription["id"],
                records={record["record_id"]: record["data"] for record in records},
                at=time.time(),
            )


def _drain(
    context: Context, url: str, pollers: list[Poller], workers: list[Worker], resolved_at: float
) -> None:
    """The pollers and the consumers drain at once, each with a client of its own."""
    jobs: list[Callable[[], None]] = []
    for poller in pollers:

        def drain_poller(poller: Poller = poller) -> None:
            recorder, http = context.http(f"{poller.name}-drain", stack="audit", url=url)
            with http:
                poller.drain(http, recorder, not_before=resolved_at)

        jobs.append(drain_poller)
    for consumer in context.setup.consumers:
        lock = next(worker.lock for worker in workers if worker.consumer is consumer)

        def drain_consumer(consumer: dict[str, Any] = consumer, lock: threading.Lock = lock) -> None:
            name = f"{consumer['role']}-drainer"
            recorder, http = context.http(name, stack="audit", url=url)
            with http:
                Worker(context, consumer, name, lock, http=(recorder, http)).drain(not_before=resolved_at)

        jobs.append(drain_consumer)
    threads = [guarded(context, f"drain-{index}", job) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _expire_dead_pulls(context: Context, endpoint: str) -> None:
    """The faulty stack is stopped: a pull it left running has no worker any more. Its lease is moved to
    now, as if its two minutes had passed, so the schedule ends it (`timeout`) at once."""
    store = store_of(endpoint)
    for subscription in context.setup.subscriptions:
        stored = load_subscription(store, subscription["id"])
        if stored is None or not stored.running_pull_id or stored.lease_holder is None:
            continue
        version, stored.lease_until = stored.version, time.time() - 1
        save_subscription(store, stored, expected_version=version)
        context.history.record(
            "lease_expired",
            "finale",
            subscription_id=subscription["id"],
            pull_id=stored.running_pull_id,
            at=time.time(),
        )


def _full_scan(
    context: Context,
    recorder: HttpRecorder,
    http: Any,
    subscription: dict[str, Any],
    run_schedule: Callable[[], object],
    *,
    kind: str = "final_scan",
) -> None:
    """A full scan of the subscription on the fault-free stack, run to success, recorded as `kind`."""
    deadline = time.monotonic() + FINAL_SCAN_SECONDS
    path = f"/external-event-subscriptions/{subscription['id']}/pull"
    status = "not started"
    pull_id = None
    while time.monotonic() < deadline:
        started = send(recorder, http, "POST", path)
        if started is not None and started.status_code == 409:
            run_schedule()  # a pull the faulty stack queued or left: the schedule runs or ends it
            continue
        if started is None or started.status_code != 202:
            raise RuntimeError(f"the final scan of {subscription['collection']} could not start")
        pull_id = started.json()["id"]
        while time.monotonic() < deadline:
            pull = must(recorder, http, "GET", f"/external-event-pulls/{pull_id}", ok=(200,)).json()
            status = pull["status"]
            if status not in ("queued", "running"):
                break
            time.sleep(0.3)
        if status == "success":
            break
    context.history.record(
        kind,
        "finale",
        subscription_id=subscription["id"],
        pull_id=pull_id,
        status=status,
        at=time.time(),
    )


def _all(recorder: HttpRecorder, http: Any, path: str, **filters: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 100, **filters, **({"cursor": cursor} if cursor else {})}
        page = must(recorder, http, "GET", path, ok=(200,), params=params).json()
        items += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items
