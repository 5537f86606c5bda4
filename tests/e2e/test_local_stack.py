"""`make dev` end to end: real HTTP to the local stack, the template's routes and the real functions."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from pullbridge.providers.standard import sign
from pullbridge_local.lambda_runtime import FunctionError
from pullbridge_local.quickstart import StandardConnection, shell_commands
from pullbridge_local.server import LocalStack
from tests.support import standard_webhook_headers

pytestmark = pytest.mark.e2e


def _send_webhook(
    client: httpx.Client, connection: StandardConnection, body: bytes, *, secret: str | None = None
) -> httpx.Response:
    headers = standard_webhook_headers(secret or connection.webhook_secret, f"msg_{time.time_ns()}", body)
    return client.post(f"/webhooks/{connection.id}", content=body, headers=headers)


def _events_of(client: httpx.Client, auth: dict[str, str], connection: StandardConnection) -> list[Any]:
    response = client.get("/events", params={"connection_id": connection.id}, headers=auth)
    assert response.status_code == 200
    events: list[Any] = response.json()["data"]
    return events


def test_health_answers_without_an_api_key(client: httpx.Client) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {}}


def test_an_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    response = client.get("/no/such/route")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"type": "not_found", "message": "no route", "key": "no_route", "data": {}}
    }


def test_events_need_an_api_key(client: httpx.Client) -> None:
    response = client.get("/events")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"


def test_events_answer_the_local_api_key(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/events", headers=auth)

    assert response.status_code == 200
    assert set(response.json()) == {"data", "next_cursor", "has_more"}


def test_a_signed_webhook_is_stored_and_listed(
    client: httpx.Client, auth: dict[str, str], standard_connection: StandardConnection
) -> None:
    body = json.dumps({"type": "invoice.paid", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": "inv_1"}})

    response = _send_webhook(client, standard_connection, body.encode())

    assert response.status_code == 200
    (event_id,) = response.json()["event_ids"]
    (event,) = _events_of(client, auth, standard_connection)
    assert event["id"] == event_id
    assert (event["type"], event["record_id"], event["source"]) == ("invoice.paid", "inv_1", "webhook")


def test_a_wrongly_signed_webhook_is_refused_and_not_stored(
    client: httpx.Client, auth: dict[str, str], standard_connection: StandardConnection
) -> None:
    body = b'{"type": "invoice.paid", "data": {"id": "inv_1"}}'
    other_secret = "whsec_" + "A" * 32

    response = _send_webhook(client, standard_connection, body, secret=other_secret)

    assert response.status_code == 401
    assert _events_of(client, auth, standard_connection) == []


def test_concurrent_redeliveries_store_one_event(
    client: httpx.Client,
    auth: dict[str, str],
    standard_connection: StandardConnection,
    local_stack: LocalStack,
) -> None:
    body = b'{"type": "invoice.paid", "data": {"id": "inv_2"}}'
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_redelivered",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(standard_connection.webhook_secret, "msg_redelivered", timestamp, body),
    }
    barrier = threading.Barrier(4)

    def deliver(_: int) -> httpx.Response:
        with httpx.Client(base_url=local_stack.url, timeout=30) as own_client:
            barrier.wait()
            return own_client.post(f"/webhooks/{standard_connection.id}", content=body, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(deliver, range(4)))

    assert [response.status_code for response in responses] == [200] * 4
    assert sum(response.json()["duplicates"] for response in responses) == 3
    assert len(_events_of(client, auth, standard_connection)) == 1


def test_a_long_poll_does_not_hold_up_other_requests(
    client: httpx.Client,
    auth: dict[str, str],
    standard_connection: StandardConnection,
    local_stack: LocalStack,
) -> None:
    long_poll: dict[str, Any] = {}

    def poll_quiet_connection() -> None:
        started = time.monotonic()
        with httpx.Client(base_url=local_stack.url, timeout=30) as own_client:
            long_poll["response"] = own_client.get(
                "/events", params={"connection_id": standard_connection.id, "wait": 3}, headers=auth
            )
        long_poll["seconds"] = time.monotonic() - started

    poller = threading.Thread(target=poll_quiet_connection)
    poller.start()
    time.sleep(0.3)
    health = client.get("/health")
    poll_pending_at_health = "response" not in long_poll
    poller.join()

    assert health.status_code == 200
    assert poll_pending_at_health
    assert long_poll["response"].status_code == 200
    assert long_poll["seconds"] >= 2.9


def test_a_scheduled_run_can_be_invoked_on_demand(local_stack: LocalStack) -> None:
    assert isinstance(local_stack.invoke_schedule("PullerFunction"), dict)


def test_a_function_without_a_schedule_cannot_be_invoked_as_one(local_stack: LocalStack) -> None:
    with pytest.raises(ValueError, match="no schedule"):
        local_stack.invoke_schedule("IngestFunction")


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")
def test_the_printed_shell_commands_run_as_printed(
    local_stack: LocalStack,
    client: httpx.Client,
    auth: dict[str, str],
    standard_connection: StandardConnection,
) -> None:
    script = shell_commands(local_stack.url, local_stack.api_key, standard_connection)

    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    created, delivered, page = (json.loads(line) for line in completed.stdout.splitlines())
    assert created["provider"] == "standard"
    assert delivered["duplicates"] == 0
    assert [event["id"] for event in _events_of(client, auth, standard_connection)] == delivered["event_ids"]
    assert set(page) == {"data", "next_cursor", "has_more"}


def test_a_chunked_request_body_reaches_the_function_whole(
    client: httpx.Client, auth: dict[str, str], standard_connection: StandardConnection
) -> None:
    body = b'{"type": "invoice.paid", "data": {"id": "inv_chunked"}}'
    message_id, timestamp = "msg_chunked", int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(standard_connection.webhook_secret, message_id, timestamp, body),
    }

    # An iterator body makes httpx send `Transfer-Encoding: chunked`.
    response = client.post(
        f"/webhooks/{standard_connection.id}", content=iter([body[:10], body[10:]]), headers=headers
    )

    assert response.status_code == 200
    assert [event["record_id"] for event in _events_of(client, auth, standard_connection)] == ["inv_chunked"]


def test_a_body_over_api_gateways_limit_is_refused_unread(local_stack: LocalStack) -> None:
    host, port = urlsplit(local_stack.url).hostname, urlsplit(local_stack.url).port
    request = b"POST /webhooks/conn_x HTTP/1.1\r\nHost: local\r\nContent-Length: 20000000\r\n\r\n"

    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(request)
        status_line = connection.makefile("rb").readline()

    assert status_line.split()[1] == b"413"


def test_a_function_that_cannot_start_fails_the_start_and_frees_the_port(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "app.py").write_text("raise RuntimeError('no config')\n", encoding="utf-8")
    (tmp_path / "template.yaml").write_text(
        "Resources:\n"
        "  BrokenFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: broken/, Handler: app.lambda_handler}\n",
        encoding="utf-8",
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stack = LocalStack(port=port, template_path=tmp_path / "template.yaml")

    with pytest.raises(FunctionError, match="init failed"):
        stack.start()

    with socket.socket() as rebind:
        rebind.bind(("127.0.0.1", port))
