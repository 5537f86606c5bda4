"""Consumers from the client's side, against the local stack over real HTTP: the `pullbridge consumers`
commands (in process with click's CliRunner, and `tail` as a real process for Ctrl-C), and
`Client.consume` handling webhooks sent to the stack on two threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from pullbridge_client import Client, Event
from pullbridge_local.quickstart import new_webhook_secret
from pullbridge_local.server import LocalStack
from tests.e2e.test_cli import Run, _create_connection, _json_lines, _send_webhook
from tests.e2e.test_cli import run as run  # the fixture  # noqa: PLC0414
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.e2e
RESTORE_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


class Source:
    """A fresh `standard` connection, and webhooks sent to it (each a new record)."""

    def __init__(self, run: Run, local_stack: LocalStack) -> None:
        self.secret = new_webhook_secret()
        self.connection = _create_connection(run, self.secret)
        self.id: str = self.connection["id"]
        self._stack = local_stack

    def send(self, count: int, label: str = "inv") -> list[str]:
        return [
            _send_webhook(self._stack, self.id, self.secret, f"{label}_{uuid.uuid4().hex[:8]}_{n}")
            for n in range(count)
        ]


@pytest.fixture
def source(run: Run, local_stack: LocalStack) -> Source:
    return Source(run, local_stack)


@pytest.fixture
def name() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pullbridge(local_stack: LocalStack) -> Iterator[Client]:
    with Client(local_stack.url, local_stack.api_key) as client:
        yield client


def _ok(result: Any) -> str:
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def _consumer(run: Run, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_ok(run("consumers", "get", name, "--json")))
    return found


# --- the CLI ---------------------------------------------------------------------------------------


def test_create_list_get_tail_and_delete(run: Run, source: Source, name: str) -> None:
    sent = source.send(3)

    created = json.loads(
        _ok(
            run(
                "consumers",
                "create",
                name,
                "--filter-connection",
                source.id,
                "--ack-wait",
                "60",
                "--max-deliveries",
                "none",
                "--ordering",
                "none",
                "--json",
            )
        )
    )

    assert created["id"].startswith("cns_")
    assert (created["name"], created["filters"]["connection_id"]) == (name, source.id)
    assert (created["ack_wait_seconds"], created["max_deliveries"], created["ordering"]) == (60, None, "none")
    assert created["num_pending"] == 3
    listed = _json_lines(_ok(run("consumers", "list", "--json")))
    assert created["id"] in [consumer["id"] for consumer in listed]
    line = next(line for line in _ok(run("consumers", "list")).splitlines() if f"  {name}  " in line)
    assert line.split("  ")[:4] == [created["id"], name, "pending=3", "ack_pending=0"]
    table = _ok(run("consumers", "get", created["id"]))
    assert f"name              {name}" in table.splitlines()
    assert "max_deliveries    none" in table.splitlines()

    tailed = run("consumers", "tail", name, "--batch", "2", "--max-events", "3", "--json")

    assert sorted(event["id"] for event in _json_lines(_ok(tailed))) == sorted(sent)
    after = _consumer(run, name)
    assert (after["num_pending"], after["num_ack_pending"]) == (0, 0)  # printed, then acked

    later = source.send(1)
    human = _ok(run("consumers", "tail", name, "--max-events", "1"))
    assert human.split("  ")[1:3] == ["invoice.paid", later[0]]

    assert _ok(run("consumers", "delete", name)) == f"deleted consumer {name}\n"
    assert run("consumers", "get", name).exit_code == 4


def test_a_taken_name_is_a_conflict_and_bad_options_are_usage_errors(run: Run, name: str) -> None:
    _ok(run("consumers", "create", name, "--start", "new"))

    taken = run("consumers", "create", name)
    bad_limit = run("consumers", "create", f"{name}-2", "--max-deliveries", "many")
    bad_name = run("consumers", "create", "Not A Name")

    assert taken.exit_code == 5, taken.output
    (line,) = taken.stderr.splitlines()
    assert line.startswith("Error: ")
    assert f"{name} exists already" in line
    assert bad_limit.exit_code == 2
    assert "none" in bad_limit.stderr
    assert bad_name.exit_code == 2, bad_name.output
    assert "name" in bad_name.stderr
    assert run("consumers", "tail", "no-such-consumer", "--max-events", "1").exit_code == 4
    assert run("consumers", "redrive", name).exit_code == 2
    assert run("consumers", "redrive", name, "--all", "--event-id", "evt_1").exit_code == 2


def test_dead_letters_redrive_and_discard(run: Run, source: Source, name: str, pullbridge: Client) -> None:
    # Given two events a worker termed: dead letters
    sent = source.send(2)
    _ok(run("consumers", "create", name, "--filter-connection", source.id))
    deliveries = pullbridge.receive(name, max_batch_size=10)
    assert sorted(d.event.id for d in deliveries) == sorted(sent)
    assert pullbridge.term(name, deliveries, reason="poison").termed == 2

    # When / Then: listed, with their reason
    dead = _json_lines(_ok(run("consumers", "dead-letters", name, "--json")))
    assert sorted(letter["event_id"] for letter in dead) == sorted(sent)
    assert {(letter["reason"], letter["delivery_count"]) for letter in dead} == {("poison", 1)}
    assert {letter["event"]["id"] for letter in dead} == set(sent)
    rows = _ok(run("consumers", "dead-letters", name)).splitlines()
    assert [row.split("  ")[1:4] for row in rows] == [[e, "deliveries=1", "poison"] for e in sorted(sent)]
    assert _consumer(run, name)["num_dead"] == 2

    # one redriven by id comes again; the other is discarded
    first, second = sorted(sent)
    assert _ok(run("consumers", "redrive", name, "--event-id", first)) == "redriven 1, still dead 1\n"
    (again,) = _json_lines(_ok(run("consumers", "tail", name, "--max-events", "1", "--json")))
    assert again["id"] == first
    assert _ok(run("consumers", "discard", name, second)) == f"discarded dead letter {second}\n"
    assert run("consumers", "discard", name, second).exit_code == 4
    assert json.loads(_ok(run("consumers", "redrive", name, "--all", "--json"))) == {
        "redriven": 0,
        "remaining": 0,
    }
    assert _ok(run("consumers", "dead-letters", name)) == ""


def test_redrive_all_puts_every_dead_letter_back(
    run: Run, source: Source, name: str, pullbridge: Client
) -> None:
    sent = source.send(3)
    _ok(run("consumers", "create", name, "--filter-connection", source.id))
    pullbridge.term(name, pullbridge.receive(name, max_batch_size=10))

    assert _ok(run("consumers", "redrive", name, "--all")) == "redriven 3, still dead 0\n"
    tailed = _json_lines(_ok(run("consumers", "tail", name, "--max-events", "3", "--json")))
    assert sorted(event["id"] for event in tailed) == sorted(sent)


def test_ctrl_c_on_tail_exits_130_and_acks_what_it_printed(
    run: Run, source: Source, name: str, local_stack: LocalStack
) -> None:
    (sent,) = source.send(1)
    _ok(run("consumers", "create", name, "--filter-connection", source.id))
    environment = {**os.environ, "PULLBRIDGE_URL": local_stack.url, "PULLBRIDGE_API_KEY": local_stack.api_key}
    # Ctrl-C as a terminal delivers it, even where this run was started with SIGINT ignored (a background
    # job of a non-interactive shell), which the child would inherit.
    command = [sys.executable, "-c", RESTORE_CTRL_C + "from pullbridge_client.cli import main; main()"]
    tail = subprocess.Popen(
        [*command, "consumers", "tail", name, "--json"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        first = json.loads(tail.stdout.readline())
        threading.Event().wait(0.5)  # now long-polling for more
        tail.send_signal(signal.SIGINT)
        rest, stderr = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()

    assert first["id"] == sent
    assert rest == ""
    assert tail.returncode == 130
    assert "Traceback" not in stderr
    consumer = _consumer(run, name)
    assert (consumer["num_pending"], consumer["num_ack_pending"], consumer["num_waiting"]) == (0, 0, 0)


# --- Client.consume --------------------------------------------------------------------------------


def _stop_after(seconds: float) -> threading.Event:
    """A stop that ends a consume loop that would otherwise wait forever (a failing test, not a hang)."""
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.daemon = True
    timer.start()
    return stop


def test_consume_on_two_threads_handles_each_event_once(
    source: Source, name: str, pullbridge: Client
) -> None:
    sent = source.send(8)
    pullbridge.create_consumer(name, connection_id=source.id, ordering="none")
    handled: list[str] = []
    threads: set[str] = set()
    lock = threading.Lock()

    def handle(event: Event) -> None:
        with lock:
            handled.append(event.id)
            threads.add(threading.current_thread().name)
        threading.Event().wait(0.05)  # some work, so both threads take part

    summary = pullbridge.consume(
        name, handle, batch_size=4, concurrency=2, wait=2, max_events=8, stop=_stop_after(60)
    )

    assert sorted(handled) == sorted(sent)  # each once
    assert (summary.processed, summary.failed, summary.expired) == (8, 0, 0)
    assert len(threads) == 2
    consumer = pullbridge.get_consumer(name)
    assert (consumer.num_pending, consumer.num_ack_pending, consumer.num_waiting) == (0, 0, 0)


def test_consume_gets_an_event_again_after_its_handler_raised(
    source: Source, name: str, pullbridge: Client
) -> None:
    sent = source.send(4)
    flaky = sent[1]
    pullbridge.create_consumer(name, connection_id=source.id)
    handled: list[tuple[str, int]] = []
    lock = threading.Lock()

    def handle(event: Event) -> None:
        with lock:
            handled.append((event.id, sum(1 for seen, _ in handled if seen == event.id) + 1))
            attempt = handled[-1][1]
        if event.id == flaky and attempt == 1:
            raise RuntimeError("a passing failure")

    summary = pullbridge.consume(
        name, handle, batch_size=10, concurrency=2, wait=5, max_events=5, stop=_stop_after(60)
    )

    assert Counter(event_id for event_id, _ in handled) == {**dict.fromkeys(sent, 1), flaky: 2}
    assert (summary.processed, summary.failed) == (4, 1)
    consumer = pullbridge.get_consumer(name)
    assert (consumer.num_pending, consumer.num_ack_pending, consumer.num_waiting, consumer.num_dead) == (
        0,
        0,
        0,
        0,
    )


def test_consume_keeps_the_lease_of_a_slow_handler(source: Source, name: str, pullbridge: Client) -> None:
    # Given a 1 s lease and a handler that takes 2.5 s
    (sent,) = source.send(1)
    pullbridge.create_consumer(name, connection_id=source.id, ack_wait_seconds=1)
    handled: list[str] = []

    def slow(event: Event) -> None:
        handled.append(event.id)
        threading.Event().wait(2.5)

    # When
    summary = pullbridge.consume(name, slow, concurrency=2, wait=1, max_events=1, stop=_stop_after(60))

    # Then the heartbeat kept the lease: no second delivery meanwhile, and the ack was in time
    assert handled == [sent]
    assert (summary.processed, summary.expired) == (1, 0)
    assert pullbridge.receive(name, wait=2) == []
