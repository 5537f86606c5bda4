"""Cold start per function: the time to import each function's handler module (`functions/<name>/app.py`,
which builds its settings, clients and handlers) in a fresh interpreter set up as Lambda sets one up,
divided by the same for a baseline handler that builds one botocore DynamoDB client and a Powertools
Logger (bench/cold_start_baseline.py).

The child sees only what a deployed function has: its own directory, the layer (`layers/shared` and the
packages its requirements.txt installs) and the Python runtime's boto3. The venv's development packages
are refused, because some libraries import them when they are there: httpx imports its command line, and
with it click, rich and pygments, when those are installed (here for schemathesis), about 90 ms.

Each child interpreter times the import itself (`time.perf_counter()` around `importlib.import_module`,
as Lambda's runtime imports `_HANDLER`'s module), so the interpreter's own start-up, the same on both
sides and not this project's code, is left out. The children are interleaved, their order rotated each
round, and each figure is the median of 9, after one unmeasured round that warms the disk cache and
writes the bytecode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import replace
from importlib.metadata import distribution, packages_distributions
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.bench_common import CURSOR_SECRET, Rig, figure, log, median
from pullbridge_local.template import FunctionSpec, functions
from tests.paths import REPO_ROOT

RUNS = 9
FUNCTIONS = {"ingest": "IngestFunction", "api": "ApiFunction", "puller": "PullerFunction"}
BASELINE = "baseline"
REGION = "us-east-1"
LAMBDA_RUNTIME_PACKAGES = ("boto3",)
"""What Lambda's Python runtime provides beside the standard library (boto3 brings botocore and the rest)."""

# Lambda puts the task root (the function's code) first on sys.path, then the layers' python directory;
# here the layer is `layers/shared` and its dependencies are the venv's site-packages, which `site` adds.
# A finder ahead of every other refuses the top-level modules no deployment has, as a missing one fails.
PROBE = """
import importlib, json, sys, time
task_root, layer, module_name, not_deployed = sys.argv[1:5]
sys.path[:0] = [task_root, layer]
refused = set(json.loads(not_deployed))
asked_for = set()
class NotDeployed:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in refused:
            asked_for.add(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NotDeployed)
started = time.perf_counter()
importlib.import_module(module_name)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "modules": len(sys.modules), "refused": sorted(asked_for)}))
"""


def lambda_environment(spec: FunctionSpec, template: dict[str, Any]) -> dict[str, str]:
    """The variables Lambda gives a deployed function at its init, plus its template environment. Built
    from nothing, so none of the tests' own settings (tracing off, an endpoint override) leak in.

    Lambda's X-Ray variables (AWS_XRAY_*, _X_AMZN_TRACE_ID) are left unset: the stack no longer traces
    with the X-Ray SDK, and the trace id is set per invocation, after the init. The credentials are fake
    and the import sends no request. CURSOR_SECRET stands in for the Secrets Manager ARN that the template
    gives the API (and this parser drops), so the measured import sends no request either."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/24/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": spec.handler,
        **spec.environment,
    }
    declared = template["Resources"].get(spec.logical_id, {}).get("Properties", {})
    if "CURSOR_SECRET_ARN" in declared.get("Environment", {}).get("Variables", {}):
        environment["CURSOR_SECRET"] = CURSOR_SECRET
    return environment


def _installed_by(requirements: Iterable[str]) -> set[str]:
    """The distributions these requirements install: each, and what it requires in turn, without extras."""
    found: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        found.add(name)
        pending.extend(Requirement(text) for text in distribution(name).requires or ())
    return found


def not_deployed(layer: Path, task_roots: Iterable[Path]) -> list[str]:
    """The venv's top-level modules that no deployed function has: not in the layer's requirements.txt
    (nor what those require), not in the Lambda runtime, and not the layer's or a function's own code."""
    lines = (line.strip() for line in (layer / "requirements.txt").read_text().splitlines())
    requirements = [line for line in lines if line and not line.startswith("#")]
    deployed = _installed_by([*requirements, *LAMBDA_RUNTIME_PACKAGES])
    own_code = {path.stem for root in (layer, *task_roots) for path in root.iterdir()}
    return sorted(
        name
        for name, distributions in packages_distributions().items()
        if name not in own_code and not any(canonicalize_name(d) in deployed for d in distributions)
    )


def _specs(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """The three functions as template.yaml declares them, and the baseline as a function beside them
    with only what every function shares (the Globals' environment and memory)."""
    declared = functions(template)
    specs = {name: declared[logical_id] for name, logical_id in FUNCTIONS.items()}
    shared_environment = {
        name: value
        for name, value in specs["ingest"].environment.items()
        if all(spec.environment.get(name) == value for spec in specs.values())
    }
    specs[BASELINE] = replace(
        specs["ingest"],
        logical_id="ColdStartBaseline",
        code_uri=Path(__file__).resolve().parent,
        handler="cold_start_baseline.lambda_handler",
        environment=shared_environment,
        http_routes=(),
        schedules=(),
    )
    return specs


def _measure(
    spec: FunctionSpec, environment: dict[str, str], layer: Path, refused: list[str]
) -> dict[str, Any]:
    """The seconds to import the handler's module in a fresh interpreter, the modules loaded by then, and
    the refused modules it asked for. `-I` keeps the caller's PYTHON* variables, user site and working
    directory off sys.path; the working directory is the task root, as on Lambda."""
    module_name = spec.handler.rsplit(".", 1)[0]
    arguments = [str(spec.code_uri), str(layer), module_name, json.dumps(refused)]
    completed = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, *arguments],
        cwd=spec.code_uri,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{spec.logical_id}'s cold start failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run(rig: Rig) -> None:
    template = rig.template
    layer = REPO_ROOT / template["Resources"]["SharedLayer"]["Properties"]["ContentUri"]
    specs = _specs(template)
    environments = {name: lambda_environment(spec, template) for name, spec in specs.items()}
    refused = not_deployed(layer, (spec.code_uri for spec in specs.values()))
    targets = list(specs)
    seconds: dict[str, list[float]] = {name: [] for name in targets}
    last: dict[str, dict[str, Any]] = {}
    for round_number in range(RUNS + 1):
        shift = round_number % len(targets)
        for name in targets[shift:] + targets[:shift]:
            last[name] = _measure(specs[name], environments[name], layer, refused)
            if round_number:
                seconds[name].append(float(last[name]["seconds"]))
        log(f"cold start round {round_number}/{RUNS} done")
    baseline = median(seconds[BASELINE])
    figure("cold_init_baseline_ms", baseline * 1000)
    for name in FUNCTIONS:
        figure(f"cold_init_ratio_{name}", median(seconds[name]) / baseline)
        figure(f"cold_init_{name}_ms", median(seconds[name]) * 1000)
    log(f"cold start, modules loaded: { {name: result['modules'] for name, result in last.items()} }")
    log(
        f"cold start, {len(refused)} top-level modules refused as not deployed; asked for: "
        f"{ {name: result['refused'] for name, result in last.items()} }"
    )
