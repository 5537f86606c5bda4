"""The webhook path imports nothing it does not use: checked in a fresh interpreter, like a cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.paths import REPO_ROOT

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ingest_app", "functions/ingest/app.py")
module = importlib.util.module_from_spec(spec)
sys.modules["ingest_app"] = module
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_importing_ingest(*, deployed: bool = False) -> set[str]:
    """`deployed` runs it as Lambda does (`Tracing: Active`): Tracer on, the X-Ray SDK on its Lambda path."""
    environment = {
        **os.environ,
        "EVENTS_TABLE": "EventsTable",
        "CONTROL_TABLE": "ControlTable",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    if deployed:
        del environment["POWERTOOLS_TRACE_DISABLED"]
        environment.update(LAMBDA_TASK_ROOT=str(REPO_ROOT), AWS_LAMBDA_FUNCTION_NAME="ingest")
    output = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(output))


def test_the_ingest_function_loads_no_http_client_no_other_provider_and_no_openapi() -> None:
    modules = _modules_after_importing_ingest()
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
    modules = _modules_after_importing_ingest()
    assert {
        "pullbridge.models",
        "pullbridge.cursors",
        "pullbridge.paging",
        "pullbridge.connections",
    }.isdisjoint(modules)
    assert "pullbridge.connection_records" in modules


def test_the_ingest_function_makes_its_client_without_boto3() -> None:
    """botocore makes the same client; boto3 would add its resources and s3transfer to every cold start."""
    modules = _modules_after_importing_ingest()
    assert "botocore.client" in modules
    assert not {name for name in modules if name.split(".")[0] in ("boto3", "s3transfer")}


def test_the_deployed_tracer_patches_botocore_only() -> None:
    """X-Ray's patch_all would import and wrap every library it knows that is installed: httpx, sqlite3,
    http.client's wrappers. The webhook path traces its DynamoDB calls and nothing else."""
    modules = _modules_after_importing_ingest(deployed=True)
    assert "aws_xray_sdk.ext.botocore.patch" in modules
    assert not {name for name in modules if name.split(".")[0] in ("httpx", "sqlite3", "requests")}
    patches = {name for name in modules if name.startswith("aws_xray_sdk.ext.") and name.endswith(".patch")}
    assert patches == {"aws_xray_sdk.ext.botocore.patch"}
