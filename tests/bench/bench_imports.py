"""Cold start: each function module's import time in a fresh interpreter ÷ `import boto3` in a fresh
interpreter, interleaved in the same run, median of 9 (after one unmeasured round that warms the disk
cache and the bytecode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from tests.bench.bench_common import CURSOR_SECRET, Rig, figure, log, median
from tests.paths import REPO_ROOT

RUNS = 9
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
_CLIENT = "import botocore.session; botocore.session.get_session().create_client('dynamodb')\n"
_OBSERVABILITY = "from aws_lambda_powertools import Logger, Metrics; Logger(); Metrics()\n"
_TRACER = "from aws_lambda_powertools import Tracer; Tracer(patch_modules=('botocore',))\n"
_RESOLVER = (
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver; APIGatewayHttpResolver()\n"
)
_SETTINGS = "from pullbridge.settings import load_settings; load_settings()\n"
COMPONENTS = {
    # The ingest function built up step by step, each step in a fresh interpreter with all before it
    "step1_dynamodb_client": _CLIENT,
    "step2_plus_logger_and_metrics": _CLIENT + _OBSERVABILITY,
    "step3_plus_tracer": _CLIENT + _OBSERVABILITY + _TRACER,
    "step4_plus_resolver": _CLIENT + _OBSERVABILITY + _TRACER + _RESOLVER,
    "step5_plus_pydantic_settings": _CLIENT + _OBSERVABILITY + _TRACER + _RESOLVER + _SETTINGS,
    # What the puller adds
    "httpx_client": "import httpx; httpx.Client()",
}


def _environment(task_root: str) -> dict[str, str]:
    """What a deployed function has: its tables, and Lambda's own variables, so that the X-Ray SDK takes
    its Lambda path (Lambda samples, so it makes no sampling client) and Tracer is on, as `Tracing:
    Active` has it. CURSOR_SECRET stands in for the Secrets Manager ARN, so the API's import makes no
    network call. No endpoint override."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DYNAMODB_ENDPOINT", "PYTHONDONTWRITEBYTECODE", "POWERTOOLS_TRACE_DISABLED")
    }
    environment.update(
        {
            "EVENTS_TABLE": "EventsTable",
            "CONTROL_TABLE": "ControlTable",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "LAMBDA_TASK_ROOT": task_root,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
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
    with tempfile.TemporaryDirectory() as task_root:
        _run(_environment(task_root))


def _run(environment: dict[str, str]) -> None:
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
    for component in COMPONENTS:
        figure(f"cold_import_ratio_component_{component}", median(seconds[component]) / baseline)
    log(
        "imports, median ms alone in a fresh interpreter: "
        + ", ".join(f"{name} {median(seconds[name]) * 1000:.0f}" for name in targets)
    )
    log(f"modules loaded: {modules}")
