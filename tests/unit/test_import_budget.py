"""The webhook path imports nothing it does not use: checked in a fresh interpreter, like a cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.paths import REPO_ROOT

# As Lambda imports the handler: its directory (the task root) first on sys.path, for the modules beside it.
PROBE = """
import importlib.util, json, sys
sys.path.insert(0, f"functions/{sys.argv[1]}")
spec = importlib.util.spec_from_file_location("function_app", f"functions/{sys.argv[1]}/app.py")
module = importlib.util.module_from_spec(spec)
sys.modules["function_app"] = module
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_importing(function: str = "ingest") -> set[str]:
    """Imported as Lambda imports it with `Tracing: Active`: on its Lambda path, with a trace id set."""
    environment = {
        **os.environ,
        "EVENTS_TABLE": "EventsTable",
        "CONTROL_TABLE": "ControlTable",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CURSOR_SECRET": "c" * 40,
        "PULLER_FUNCTION_NAME": "PullerFunction",
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
        "LAMBDA_TASK_ROOT": str(REPO_ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    }
    output = subprocess.run(
        [sys.executable, "-c", PROBE, function],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(output))


def test_the_ingest_function_loads_no_http_client_no_other_provider_and_no_openapi() -> None:
    modules = _modules_after_importing()
    assert "pullbridge.ingest" in modules
    assert not {name for name in modules if name == "httpx" or name.startswith("httpx.")}
    assert not {
        name
        for name in modules
        if name.startswith("pullbridge.providers.") and name != "pullbridge.providers.base"
    }
    assert "aws_lambda_powertools.event_handler.openapi.models" not in modules
    assert "pullbridge.events" not in modules


def test_the_ingest_function_loads_none_of_the_apis_models_cursors_or_paging() -> None:
    modules = _modules_after_importing()
    assert {
        "pullbridge.models",
        "pullbridge.cursors",
        "pullbridge.paging",
        "pullbridge.connections",
    }.isdisjoint(modules)
    assert "pullbridge.connection_records" in modules


def test_the_ingest_function_loads_no_pydantic() -> None:
    """Its settings are plain dataclasses: pydantic's import and schema builds were 90 ms of each cold start."""
    modules = _modules_after_importing()
    assert not {name for name in modules if name.split(".")[0] in ("pydantic", "pydantic_core")}


def test_the_ingest_function_makes_its_client_without_boto3() -> None:
    """botocore makes the same client; boto3 would add its resources and s3transfer to every cold start."""
    modules = _modules_after_importing()
    assert "botocore.client" in modules
    assert not {name for name in modules if name.split(".")[0] in ("boto3", "s3transfer")}


@pytest.mark.parametrize("function", ["ingest", "api", "puller", "admin"])
def test_no_function_loads_a_tracing_sdk(function: str) -> None:
    """The X-Ray SDK reaches its end of support on 2027-02-25, and cost the ingest 0.30 of `import boto3`
    at cold start. Lambda's Active tracing gives each invocation's segment without it, and OpenTelemetry
    comes from its own layer, only when the template is told to add it."""
    modules = _modules_after_importing(function)
    roots = {name.split(".")[0] for name in modules}
    assert {"aws_xray_sdk", "opentelemetry", "wrapt"}.isdisjoint(roots)


def test_the_api_builds_no_openapi_models_at_cold_start() -> None:
    """Powertools' OpenAPI models (about 40 pydantic classes, 41 ms) are for the document and Swagger UI,
    which are built on request: no route and no validation needs them."""
    assert "aws_lambda_powertools.event_handler.openapi.models" not in _modules_after_importing("api")
