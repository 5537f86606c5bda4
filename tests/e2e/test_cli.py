"""The `pullbridge` CLI against the local stack, over real HTTP: in process (click's CliRunner) and, for
Ctrl-C, as a real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from pullbridge.providers.standard import sign
from pullbridge_client.cli import cli
from pullbridge_local.quickstart import new_webhook_secret
from pullbridge_local.server import LocalStack
from tests.fakes.provider_server import FakeProviderServer
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.e2e
RESTORE_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "

Run = Callable[..., Result]
RESUME = "resume with: --cursor "


@pytest.fixture
def run(local_stack: LocalStack) -> Run:
    def invoke(*args: str, api_key: str | None = None, **environment: str) -> Result:
        env = {
            "PULLBRIDGE_URL": local_stack.url,
            "PULLBRIDGE_API_KEY": api_key or local_stack.api_key,
            **environment,
        }
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def _json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def _resume_cursor(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith(RESUME)]
    return line.removeprefix(RESUME)


def _create_connection(run: Run, secret: str) -> dict[str, Any]:
    result = run(
        "connections", "create", "--provider", "standard", "--name", "cli", "--secret", secret, "--json"
    )
    assert result.exit_code == 0, result.output
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def _send_webhook(local_stack: LocalStack, connection_id: str, secret: str, record_id: str) -> str:
    body = json.dumps(
        {"type": "invoice.paid", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": record_id}}
    )
    message_id, timestamp = f"msg_{time.time_ns()}", int(time.time())
    response = httpx.post(
        f"{local_stack.url}/webhooks/{connection_id}",
        content=body.encode(),
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body.encode()),
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    (event_id,) = response.json()["event_ids"]
    return str(event_id)


def test_tail_prints_a_webhooks_event_and_a_cursor_that_resumes_after_it(
    run: Run, local_stack: LocalStack
) -> None:
    secret = new_webhook_secret()
    connection = _create_connection(run, secret)
    assert connection["provider"] == "standard"
    assert secret not in json.dumps(connection)
    first = _send_webhook(local_stack, connection["id"], secret, "inv_cli_1")

    tailed = run("events", "tail", "--json", "--connection", connection["id"])

    assert tailed.exit_code == 0, tailed.output
    (event,) = _json_lines(tailed.stdout)
    assert (event["id"], event["type"], event["record_id"]) == (first, "invoice.paid", "inv_cli_1")
    cursor = _resume_cursor(tailed.stderr)

    again = run("events", "tail", "--json", "--connection", connection["id"], "--cursor", cursor)

    assert again.exit_code == 0, again.output
    assert again.stdout == ""
    assert _resume_cursor(again.stderr) == cursor

    second = _send_webhook(local_stack, connection["id"], secret, "inv_cli_2")
    resumed = run("events", "tail", "--connection", connection["id"], "--cursor", cursor)

    assert resumed.exit_code == 0, resumed.output
    (line,) = resumed.stdout.splitlines()
    assert line.split("  ")[1:] == ["invoice.paid", second, connection["id"], "inv_cli_2"]


def test_a_wrong_api_key_is_a_one_line_error_and_exit_code_3(run: Run) -> None:
    result = run("events", "tail", api_key="pb_wrong_key")

    assert result.exit_code == 3
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    assert "unauthorized" in line
    assert "Traceback" not in result.output


def test_a_foreign_cursor_is_a_usage_error(run: Run) -> None:
    result = run("events", "tail", "--cursor", "not-a-cursor")

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith("Error: ")
    assert _resume_cursor(result.stderr) == "not-a-cursor"


def test_an_unreachable_url_is_a_one_line_error(run: Run) -> None:
    with socket.socket() as probe:  # a port nothing listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = run("connections", "list", PULLBRIDGE_URL=url)

    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: cannot reach {url}")


def test_connections_list_shows_a_created_connection(run: Run) -> None:
    connection = _create_connection(run, new_webhook_secret())

    listed = run("connections", "list", "--json")
    human = run("connections", "list")

    assert listed.exit_code == 0, listed.output
    assert connection["id"] in [c["id"] for c in _json_lines(listed.stdout)]
    assert any(line.startswith(f"{connection['id']}  standard  cli  ") for line in human.stdout.splitlines())


def test_connections_create_validation_errors_name_the_field(run: Run) -> None:
    result = run("connections", "create", "--provider", "nope", "--name", "x")

    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "provider" in line


def test_key_value_options_must_be_key_value(run: Run) -> None:
    result = run("connections", "create", "--provider", "stripe", "--name", "x", "--credential", "oops")

    assert result.exit_code == 2
    assert "key=value" in result.stderr


def test_pulls_trigger_list_and_conflict(
    run: Run, client: httpx.Client, auth: dict[str, str], fake: FakeProviderServer
) -> None:
    fake.dataset("stripe", "customers").clear()
    fake.dataset("stripe", "customers").seed(2)
    created = run(
        "connections",
        "create",
        "--provider",
        "stripe",
        "--name",
        "cli-pulls",
        "--secret",
        "whsec_cli",
        *[f"--credential={k}={v}" for k, v in fake.credentials("stripe").items()],
        "--api-base-url",
        fake.base_url,
        "--setting",
        'rate_limit={"allowed_requests": 100, "interval_seconds": 1}',
        "--json",
    )
    assert created.exit_code == 0, created.output
    connection = json.loads(created.stdout)
    subscription = client.post(
        "/external-event-subscriptions",
        headers=auth,
        json={"connection_id": connection["id"], "collection": "customers"},
    ).json()
    fake.stall(2, path="/v1/customers")  # keeps the first pull running while it is triggered again

    triggered = run("pulls", "trigger", subscription["id"], "--json")
    conflict = run("pulls", "trigger", subscription["id"])

    assert triggered.exit_code == 0, triggered.output
    pull = json.loads(triggered.stdout)
    assert pull["external_event_subscription_id"] == subscription["id"]
    assert conflict.exit_code == 5, conflict.output
    (line,) = conflict.stderr.splitlines()
    assert pull["id"] in line

    deadline = time.monotonic() + 30
    while True:
        listed = run("pulls", "list", "--subscription", subscription["id"], "--json")
        assert listed.exit_code == 0, listed.output
        (record,) = _json_lines(listed.stdout)
        if record["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.2)
    assert record["id"] == pull["id"]

    human = run("pulls", "list", "--subscription", subscription["id"], "--status", record["status"])
    assert human.exit_code == 0, human.output
    (row,) = human.stdout.splitlines()
    assert f"  {record['status']}  {pull['id']}  {subscription['id']}  stripe/customers  " in row

    assert run("pulls", "list", "--limit", "1").stdout.count("\n") == 1
    assert run("pulls", "trigger", "sub_does_not_exist").exit_code == 4


def test_admin_keys_create_makes_a_key_the_stack_accepts_and_revoke_stops_it(
    run: Run, local_stack: LocalStack
) -> None:
    admin_function = ["--function-name", "AdminFunction"]
    lambda_endpoint = {"AWS_ENDPOINT_URL_LAMBDA": local_stack.url}  # the local stack's Invoke API

    created = run(
        "admin",
        "keys",
        "create",
        "--tenant",
        "cli_tenant",
        "--name",
        "e2e",
        *admin_function,
        **lambda_endpoint,
    )

    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    listed = run("connections", "list", api_key=key)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == ""  # a new tenant: none of the local tenant's connections

    revoked = run("admin", "keys", "revoke", key, *admin_function, **lambda_endpoint)

    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout == "revoked an API key of tenant cli_tenant\n"
    assert run("connections", "list", api_key=key).exit_code == 3
    unknown = run(
        "admin", "keys", "revoke", "pb_unknown_key_000000000000", *admin_function, **lambda_endpoint
    )
    assert unknown.exit_code == 4, unknown.output


def test_keys_create_without_a_stack_is_a_one_line_error(run: Run, local_stack: LocalStack) -> None:
    # `keys` is the hidden alias of `admin keys`; this goes through real boto3 to a CloudFormation that
    # does not answer.
    result = run(
        "keys",
        "create",
        "--tenant",
        "t",
        "--stack-name",
        "no-such-stack",
        AWS_ENDPOINT_URL_CLOUDFORMATION="http://127.0.0.1:9",
        AWS_MAX_ATTEMPTS="1",
    )

    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")


def test_the_help_documents_the_exit_codes(run: Run) -> None:
    result = run("--help")

    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout
    assert "3    authentication" in result.stdout


def test_ctrl_c_on_a_follow_prints_the_cursor_that_resumes_after_the_last_event(
    run: Run, local_stack: LocalStack
) -> None:
    secret = new_webhook_secret()
    connection = _create_connection(run, secret)
    sent = _send_webhook(local_stack, connection["id"], secret, "inv_follow")
    environment = {
        **os.environ,
        "PULLBRIDGE_URL": local_stack.url,
        "PULLBRIDGE_API_KEY": local_stack.api_key,
    }
    # Ctrl-C as a terminal delivers it, even where this run was started with SIGINT ignored (a background
    # job of a non-interactive shell), which the child would inherit.
    command = [sys.executable, "-c", RESTORE_CTRL_C + "from pullbridge_client.cli import main; main()"]
    tail = subprocess.Popen(
        [*command, "events", "tail", "--follow", "--json", "--connection", connection["id"]],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        first = json.loads(tail.stdout.readline())
        time.sleep(0.5)  # now long-polling
        tail.send_signal(signal.SIGINT)
        rest, stderr = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()

    assert first["id"] == sent
    assert rest == ""
    assert tail.returncode == 130
    assert "Traceback" not in stderr
    cursor = _resume_cursor(stderr)

    resumed = run("events", "tail", "--json", "--connection", connection["id"], "--cursor", cursor)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout == ""
