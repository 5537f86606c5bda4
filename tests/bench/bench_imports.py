"""Cold start: each function module's import time in a fresh interpreter ÷ `import boto3` in a fresh
interpreter, interleaved in the same run, median of 5 (after one unmeasured round that warms the disk
cache and the bytecode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.bench.bench_common import CURSOR_SECRET, Rig, figure, log, median
from tests.support import REPO_ROOT

RUNS = 5
FUNCTIONS = ("ingest", "api", "puller")

PROBE = """
import importlib.util, json, sys, time
code = sys.argv[1]
started = time.perf_counter()
exec(code)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "modules": len(sys.modules)}))
"""
LOAD_FUNCTION = """
spec = importlib.util.spec_from_file_location("{name}_app", "functions/{name}/app.py")
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
"""
COMPONENTS = {
    # The floor of any function that makes its DynamoDB client at import, as all three do
    "boto3_and_dynamodb_client": "import boto3; boto3.client('dynamodb')",
    # What the functions add on top, each alone in a fresh interpreter (so each includes what it shares)
    "aws_xray_sdk": "import aws_xray_sdk.core",
    "pydantic_model": "import pydantic\nclass M(pydantic.BaseModel):\n    x: int",
    "powertools_resolver": (
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver; APIGatewayHttpResolver()"
    ),
    "httpx_client": "import httpx; httpx.Client()",
}


def _environment() -> dict[str, str]:
    """What a deployed function has (its tables; tracing off as in the tests), and no endpoint override.
    CURSOR_SECRET stands in for the Secrets Manager ARN, so the API's import makes no network call."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DYNAMODB_ENDPOINT", "PYTHONDONTWRITEBYTECODE")
    }
    environment.update(
        {
            "EVENTS_TABLE": "EventsTable",
            "CONTROL_TABLE": "ControlTable",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "CURSOR_SECRET": CURSOR_SECRET,
        }
    )
    return environment


def _measure(code: str, environment: dict[str, str]) -> tuple[float, int]:
    output = subprocess.run(
        [sys.executable, "-c", PROBE, code],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return float(result["seconds"]), int(result["modules"])


def run(rig: Rig) -> None:
    environment = _environment()
    probes = {
        "boto3": "import boto3",
        **{name: LOAD_FUNCTION.format(name=name) for name in FUNCTIONS},
        **COMPONENTS,
    }
    targets = tuple(probes)
    seconds: dict[str, list[float]] = {target: [] for target in targets}
    modules: dict[str, int] = {}
    for round_number in range(RUNS + 1):
        for target in targets:
            elapsed, loaded = _measure(probes[target], environment)
            if round_number:
                seconds[target].append(elapsed)
            modules[target] = loaded
        log(f"imports round {round_number}/{RUNS} done")
    baseline = median(seconds["boto3"])
    ratios = {name: median(seconds[name]) / baseline for name in FUNCTIONS}
    figure("cold_import_ratio", max(ratios.values()))
    figure("cold_import_boto3_ms", baseline * 1000)
    for name in FUNCTIONS:
        figure(f"cold_import_ratio_{name}", ratios[name])
        figure(f"cold_import_{name}_ms", median(seconds[name]) * 1000)
    figure(
        "cold_import_ratio_floor_boto3_and_client", median(seconds["boto3_and_dynamodb_client"]) / baseline
    )
    log(
        "imports, median ms alone in a fresh interpreter: "
        + ", ".join(f"{name} {median(seconds[name]) * 1000:.0f}" for name in targets)
    )
    log(f"modules loaded: {modules}")
