"""The webhook path imports nothing it does not use: checked in a fresh interpreter, like a cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import REPO_ROOT

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ingest_app", "functions/ingest/app.py")
module = importlib.util.module_from_spec(spec)
sys.modules["ingest_app"] = module
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_importing_ingest() -> set[str]:
    environment = {
        **os.environ,
        "EVENTS_TABLE": "EventsTable",
        "CONTROL_TABLE": "ControlTable",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
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
