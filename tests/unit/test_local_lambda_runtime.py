"""The local Lambda runtime: event shapes and process-isolated execution environments."""

from __future__ import annotations

import base64
import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import pytest

from pullbridge_local.lambda_runtime import (
    FunctionError,
    LambdaContext,
    LocalFunction,
    http_api_event,
    scheduled_event,
)
from pullbridge_local.template import FunctionSpec, HttpRoute
from tests.support import sample_event

WEBHOOK_ROUTE = HttpRoute("POST", "/webhooks/{connection_id}")

FUNCTION_SOURCE = """
import os, time

invocations = 0

def lambda_handler(event, context):
    global invocations
    invocations += 1
    if event.get("raise"):
        raise RuntimeError("boom")
    time.sleep(event.get("sleep", 0))
    if event.get("unserializable"):
        return object()
    return {
        "pid": os.getpid(),
        "invocations": invocations,
        "greeting": os.environ.get("GREETING"),
        "unset": os.environ.get("DEPLOYMENT_ONLY"),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }
"""


def _event(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "route": WEBHOOK_ROUTE,
        "method": "POST",
        "raw_path": "/webhooks/conn_1",
        "raw_query_string": "",
        "headers": [("Content-Type", "application/json")],
        "body": b'{"a": 1}',
        "path_parameters": {"connection_id": "conn_1"},
        "source_ip": "127.0.0.1",
    }
    return http_api_event(**(arguments | overrides))


def _shape(value: Any) -> Any:
    """The nested key structure of a JSON document, values aside."""
    return {key: _shape(item) for key, item in value.items()} if isinstance(value, dict) else None


def test_http_event_has_the_shape_of_the_api_gateway_sample() -> None:
    sample = sample_event("webhook_standard.json")
    event = _event(headers=list(sample["headers"].items()))

    assert _shape(event) == _shape(sample)
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /webhooks/{connection_id}"
    assert event["requestContext"]["stage"] == "$default"


def test_http_event_lower_cases_header_names_and_joins_repeated_ones() -> None:
    event = _event(headers=[("X-Tag", "a"), ("x-tag", "b"), ("User-Agent", "curl/8")])

    assert event["headers"] == {"x-tag": "a,b", "user-agent": "curl/8"}
    assert event["requestContext"]["http"]["userAgent"] == "curl/8"


def test_http_event_moves_cookies_out_of_the_headers() -> None:
    event = _event(headers=[("Cookie", "a=1; b=2")])

    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]


def test_http_event_decodes_and_joins_query_parameters() -> None:
    event = _event(raw_query_string="type=a%20b&tag=x&tag=y&empty=")

    assert event["rawQueryString"] == "type=a%20b&tag=x&tag=y&empty="
    assert event["queryStringParameters"] == {"type": "a b", "tag": "x,y", "empty": ""}


def test_http_event_omits_query_path_parameters_and_body_when_there_are_none() -> None:
    event = _event(path_parameters={}, body=b"")

    assert not {"queryStringParameters", "pathParameters", "body", "cookies"} & set(event)


def test_http_event_carries_a_utf8_body_as_text() -> None:
    event = _event(body='{"name": "Zoë"}'.encode())

    assert event["body"] == '{"name": "Zoë"}'
    assert event["isBase64Encoded"] is False


def test_http_event_carries_a_binary_body_as_base64() -> None:
    event = _event(body=b"\xff\x00\xfe")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"


def test_scheduled_event_has_the_shape_of_the_scheduler_sample() -> None:
    event = scheduled_event("puller")

    assert _shape(event) == _shape(sample_event("schedule.json"))
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"][0].endswith("schedule/default/puller")


def test_context_counts_down_from_the_timeout() -> None:
    context = LambdaContext("Fn", 128, timeout_seconds=3)

    assert 2900 < context.get_remaining_time_in_millis() <= 3000
    assert context.invoked_function_arn.endswith(":function:Fn")


@pytest.fixture
def spec(tmp_path: Path) -> FunctionSpec:
    (tmp_path / "app.py").write_text(FUNCTION_SOURCE, encoding="utf-8")
    return FunctionSpec(
        logical_id="TestFunction",
        code_uri=tmp_path,
        handler="app.lambda_handler",
        environment={"GREETING": "hello"},
        http_routes=(),
        schedules=(),
        timeout_seconds=2,
        memory_mb=128,
    )


@pytest.fixture
def function(spec: FunctionSpec, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DEPLOYMENT_ONLY", "leaked")
    local_function = LocalFunction(spec, unset_variables=["DEPLOYMENT_ONLY"])
    yield local_function
    local_function.stop()


def test_a_function_runs_with_its_environment_and_context(function: LocalFunction) -> None:
    result = function.invoke({})

    assert result["greeting"] == "hello"
    assert result["unset"] is None
    assert result["function_name"] == "TestFunction"
    assert 1000 < result["remaining_ms"] <= 2000


def test_sequential_invocations_reuse_one_warm_environment(function: LocalFunction) -> None:
    first, second = function.invoke({}), function.invoke({})

    assert second["pid"] == first["pid"]
    assert second["invocations"] == 2


def test_concurrent_invocations_get_environments_of_their_own(function: LocalFunction) -> None:
    function.warm_up()
    barrier = threading.Barrier(2)

    def invoke_together() -> dict[str, Any]:
        barrier.wait()
        result: dict[str, Any] = function.invoke({"sleep": 0.5})
        return result

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: invoke_together(), range(2)))

    assert results[0]["pid"] != results[1]["pid"]


def test_a_raising_handler_fails_the_invocation_but_keeps_its_environment(function: LocalFunction) -> None:
    pid = function.invoke({})["pid"]

    with pytest.raises(FunctionError, match="boom"):
        function.invoke({"raise": True})

    assert function.invoke({})["pid"] == pid


def test_a_result_json_cannot_carry_fails_the_invocation(function: LocalFunction) -> None:
    with pytest.raises(FunctionError, match="not JSON serializable"):
        function.invoke({"unserializable": True})


def test_a_timed_out_environment_is_replaced(function: LocalFunction) -> None:
    pid = function.invoke({})["pid"]

    with pytest.raises(FunctionError, match="timed out"):
        function.invoke({"sleep": 5})

    assert function.invoke({})["pid"] != pid


def test_an_import_error_shows_when_warming_up(spec: FunctionSpec) -> None:
    (spec.code_uri / "app.py").write_text("raise ImportError('no such thing')\n", encoding="utf-8")
    function = LocalFunction(spec)

    with pytest.raises(FunctionError, match="init failed"):
        function.warm_up()
