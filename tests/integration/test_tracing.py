"""Tracing without the X-Ray SDK: Lambda's Active tracing, the trace id in every log line, and
OpenTelemetry from its own layer when the template is told to add it."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from pullbridge.errors import StorageUnavailable
from tests.paths import REPO_ROOT
from tests.support import api_event, lambda_context, sample_event, standard_webhook_event

TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
TRACE_HEADER = f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1"

# One invocation per function that logs at least one line: a storage failure (ingest and API log their
# 5xx), a tick, an admin action.
INVOCATIONS: dict[str, Callable[[ModuleType], Any]] = {
    "ingest": lambda module: module.lambda_handler(
        standard_webhook_event("conn_unknown", "{}"), lambda_context()
    ),
    "api": lambda module: module.lambda_handler(
        api_event("list_events.json", "pb_wrong_key_0000000000"), lambda_context()
    ),
    "puller": lambda module: module.lambda_handler(sample_event("schedule.json"), lambda_context()),
    "admin": lambda module: module.lambda_handler(
        {"action": "keys.create", "tenant": "acme"}, lambda_context()
    ),
}


@pytest.mark.parametrize("function", sorted(INVOCATIONS))
def test_every_log_line_carries_the_invocations_trace_id(
    function: str,
    functions: dict[str, ModuleType],
    tables: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda sets `_X_AMZN_TRACE_ID` per invocation; Powertools Logger reads it for each record."""
    module = functions[function]
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)
    if function in ("ingest", "api"):
        monkeypatch.setattr(module.store, "get_control", _storage_fails)
    module.logger.setLevel("DEBUG")
    try:
        with caplog.at_level("DEBUG", logger=module.logger.name):
            INVOCATIONS[function](module)
    finally:
        module.logger.setLevel("WARNING")
    lines = [
        json.loads(module.logger.registered_formatter.format(record))
        for record in caplog.records
        if record.name == module.logger.name
    ]
    assert lines, f"the {function} function logged nothing to check"
    assert {line.get("xray_trace_id") for line in lines} == {TRACE_ROOT}


def _storage_fails(*_: Any, **__: Any) -> Any:
    raise StorageUnavailable("DynamoDB is unreachable")


def _globals(template: dict[str, Any]) -> dict[str, Any]:
    return template["Globals"]["Function"]  # type: ignore[no-any-return]


def test_each_invocation_is_traced_by_lambda_itself(template: dict[str, Any]) -> None:
    assert _globals(template)["Tracing"] == "Active"
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == {"IngestFunction", "ApiFunction", "PullerFunction", "AdminFunction"}
    assert all("Tracing" not in resource["Properties"] for resource in functions.values())


def test_one_parameter_adds_the_opentelemetry_layer_and_its_wrapper_to_every_function(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["OpenTelemetryLayerArn"]
    assert parameter["Default"] == ""
    assert template["Conditions"]["UseOpenTelemetry"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "OpenTelemetryLayerArn"}, ""]}]
    }
    layers = _globals(template)["Layers"]
    assert {
        "Fn::If": ["UseOpenTelemetry", {"Ref": "OpenTelemetryLayerArn"}, {"Ref": "AWS::NoValue"}]
    } in layers
    wrapper = _globals(template)["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"]
    assert wrapper == {"Fn::If": ["UseOpenTelemetry", "/opt/otel-instrument", {"Ref": "AWS::NoValue"}]}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            assert "Layers" not in resource["Properties"], (
                "a function's own Layers would replace the global ones"
            )


def test_the_layer_declares_no_aws_sdk_and_no_tracing_sdk() -> None:
    """The runtime's boto3 and botocore are a matched pair; a layer botocore would be paired with the
    runtime's boto3. So the layer ships neither, and nothing it installs pulls either in."""
    lines = (REPO_ROOT / "layers" / "shared" / "requirements.txt").read_text().splitlines()
    requirements = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    assert requirements
    names = {
        requirement.split("[")[0].split(">")[0].split("=")[0].split("<")[0] for requirement in requirements
    }
    assert names.isdisjoint({"boto3", "botocore", "aws-xray-sdk", "opentelemetry-sdk"})
    assert not any("[" in requirement for requirement in requirements), "an extra may pull in botocore"


def test_the_built_layer_holds_no_botocore_beside_the_runtimes_boto3() -> None:
    built = REPO_ROOT / ".aws-sam" / "build" / "SharedLayer" / "python"
    if not built.is_dir():
        pytest.skip("no sam build output: `make test` builds the layer before it runs the tests")
    shipped = {path.name.split("-")[0].lower() for path in built.iterdir()}
    assert shipped.isdisjoint({"boto3", "botocore", "s3transfer", "aws_xray_sdk"}), sorted(shipped)
    assert {"pullbridge", "pydantic", "httpx", "aws_lambda_powertools"} <= shipped
