"""Schemathesis against the local stack's own `/openapi.json`: every operation, the stateful phase
included, with zero failures of the four checks (issue 11).

The stack runs with every outbound HTTP(S) request sent to a dead proxy on this machine, except to
127.0.0.1 itself (the stack's own DynamoDB and Lambda endpoints): a pull that a generated connection
provokes can reach nothing beyond this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pullbridge_local.quickstart import create_standard_connection
from pullbridge_local.server import LocalStack
from tests.support import standard_webhook_headers

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20")
DEAD_PROXY = "http://127.0.0.1:9"
OUTBOUND_STAYS_HERE = {
    "HTTP_PROXY": DEAD_PROXY,
    "HTTPS_PROXY": DEAD_PROXY,
    "ALL_PROXY": DEAD_PROXY,
    "NO_PROXY": "127.0.0.1,localhost",
}

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fuzzed_stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, run_schedules=False, function_environment=OUTBOUND_STAYS_HERE) as stack:
        _seed(stack)
        yield stack


def _seed(stack: LocalStack) -> None:
    """One of each object, so the stateful phase's links have something to follow from the start."""
    auth = {"authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.url, headers=auth, timeout=30) as client:
        stripe = client.post(
            "/connections",
            json={
                "provider": "stripe",
                "name": "fuzz",
                "webhook_secrets": ["whsec_fuzz"],
                "credentials": {"api_key": "sk_test_fuzz"},
                "api_base_url": DEAD_PROXY,
            },
        )
        stripe.raise_for_status()
        subscription = client.post(
            "/external-event-subscriptions",
            json={"connection_id": stripe.json()["id"], "collection": "customers"},
        )
        subscription.raise_for_status()
        client.post(f"/external-event-subscriptions/{subscription.json()['id']}/pull").raise_for_status()
        standard = create_standard_connection(stack.url, stack.api_key, name="fuzz")
        body = json.dumps({"type": "invoice.paid", "data": {"id": "inv_1"}}).encode()
        headers = standard_webhook_headers(standard.webhook_secret, "msg_seed", body)
        client.post(f"/webhooks/{standard.id}", content=body, headers=headers).raise_for_status()
        client.post("/consumers", json={"name": "fuzz", "ack_wait_seconds": 600}).raise_for_status()
        client.post("/consumers/fuzz/receive", json={}).raise_for_status()  # one lease held, one in flight


def test_the_api_conforms_to_its_own_openapi_document(fuzzed_stack: LocalStack, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{fuzzed_stack.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {fuzzed_stack.api_key}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "20261130",
        "--workers",
        "2",
        "--request-timeout",
        "30",
    ]
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        "NO_COLOR": "1",
    }
    # cwd: schemathesis keeps its own cache in the working directory.
    completed = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=540, check=False
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-20_000:]
    operations = sum(
        method in ("get", "post", "put", "patch", "delete")
        for item in httpx.get(
            f"{fuzzed_stack.url}/openapi.json",
            headers={"authorization": f"Bearer {fuzzed_stack.api_key}"},
        )
        .json()["paths"]
        .values()
        for method in item
    )
    assert f"Operations:       {operations} selected / {operations} total" in output, output[-5_000:]
    assert f"✅ {operations} passed" in output, output[-5_000:]
    assert "Stateful" in output
