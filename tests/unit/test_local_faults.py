"""The local stack's fault switch (`PULLBRIDGE_FAULTS`): off by default, deterministic by seed, and each
fault shaped as AWS or a provider sends it, seen through the clients the functions use."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.handlers
import botocore.session
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from pullbridge.errors import PullFailed
from pullbridge.pulls.http import PullHttp
from pullbridge.pulls.stats import PullStats
from pullbridge.storage import dynamodb_client
from pullbridge_local import fault_hooks
from pullbridge_local.dynamodb import EmbeddedDynamoDB
from pullbridge_local.fault_hooks import FaultInjector
from pullbridge_local.faults import FaultLog, FaultPlan, FaultRule
from pullbridge_local.lambda_runtime import FunctionError, LocalFunction
from pullbridge_local.server import LocalStack
from pullbridge_local.template import FunctionSpec, functions, load_template

# --- the switch --------------------------------------------------------------------------------------


@pytest.mark.parametrize("environ", [{}, {"PULLBRIDGE_FAULTS": ""}, {"PULLBRIDGE_FAULTS": "off"}])
def test_the_switch_is_off_unless_set(environ: dict[str, str]) -> None:
    assert FaultPlan.from_environ({**environ, "PULLBRIDGE_FAULTS_SEED": "7"}) is None


def test_a_local_stack_injects_nothing_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULLBRIDGE_FAULTS", raising=False)

    assert LocalStack(port=0).faults is None
    assert not fault_hooks.installed()
    assert not any(name.startswith("before-send.dynamodb") for name, *_ in botocore.handlers.BUILTIN_HANDLERS)


def test_a_local_stack_reads_the_switch_from_its_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PULLBRIDGE_FAULTS", "dynamodb:0.1, provider.rate_limit:0.2")
    monkeypatch.setenv("PULLBRIDGE_FAULTS_SEED", "42")
    monkeypatch.setenv("PULLBRIDGE_FAULTS_LOG", str(tmp_path / "faults.jsonl"))

    plan = LocalStack(port=0).faults

    assert plan is not None
    assert plan.rules == (FaultRule("dynamodb", None, 0.1), FaultRule("provider", "rate_limit", 0.2))
    assert (plan.seed, plan.log_path) == (42, tmp_path / "faults.jsonl")
    assert LocalStack(port=0, faults=None).faults is None


def test_a_plan_names_targets_kinds_and_functions() -> None:
    plan = FaultPlan.parse("dynamodb.throttle:0.05,kill.taken@IngestFunction:1,provider:0.2", seed=1)

    assert plan.rules[1] == FaultRule("kill", "taken", 1.0, "IngestFunction")
    assert str(plan) == "dynamodb.throttle:0.05,kill.taken@IngestFunction:1,provider:0.2"
    assert plan.targets == {"dynamodb", "kill", "provider"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("s3:0.1", "unknown target 's3'"),
        ("dynamodb.slow:0.1", "unknown kind 'slow'"),
        ("dynamodb", "needs a probability"),
        ("dynamodb:1.5", "needs a probability"),
        ("provider:often", "needs a probability"),
        (" , ", "names no fault"),
    ],
)
def test_a_wrong_plan_is_refused_with_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultPlan.parse(spec, seed=1)


def test_the_same_seed_gives_the_same_schedule() -> None:
    def schedule(seed: int) -> list[tuple[str, float] | None]:
        plan = FaultPlan.parse("dynamodb:0.3,kill:0.01", seed=seed)
        decisions = []
        for step in range(500):
            fault = plan.decide(
                "dynamodb", "IngestFunction#1/dynamodb", step, ("throttle", "internal", "timeout")
            )
            decisions.append((fault.kind, fault.detail) if fault else None)
        return decisions

    first = schedule(7)

    assert schedule(7) == first
    assert schedule(8) != first
    assert 100 < sum(1 for fault in first if fault) < 200  # about 30%
    assert {fault[0] for fault in first if fault} == {"throttle", "internal", "timeout"}


def test_a_scoped_rule_breaks_only_its_function() -> None:
    plan = FaultPlan.parse("dynamodb@IngestFunction:1", seed=1)

    assert plan.decide("dynamodb", "s", 0, ("throttle",), function="IngestFunction") is not None
    assert plan.decide("dynamodb", "s", 0, ("throttle",), function="ApiFunction") is None


# --- DynamoDB ----------------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL in this process (a worker process gets the real signal)."""


def _raise_killed() -> None:
    raise Killed


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[EmbeddedDynamoDB]:
    with EmbeddedDynamoDB(isolated=True) as server:
        client = server.client()
        client.create_table(
            TableName="Items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield server


def _injector(spec: str, seed: int = 1, log: Path | None = None) -> FaultInjector:
    return FaultInjector(
        FaultPlan.parse(spec, seed=seed, log_path=log), function="Fn", stream="Fn#1", kill=_raise_killed
    )


def _client(dynamodb: EmbeddedDynamoDB, injector: FaultInjector, *, retries: bool = False) -> Any:
    """The functions' own client (`pullbridge.storage.dynamodb_client`, which retries), or one that does
    not retry, to see a single fault as a caller sees it once the retries are spent."""
    if retries:
        client = dynamodb_client(dynamodb.endpoint_url)
    else:
        client = botocore.session.get_session().create_client(
            "dynamodb", endpoint_url=dynamodb.endpoint_url, config=Config(retries={"total_max_attempts": 1})
        )
    client.meta.events.register("before-send.dynamodb", injector.before_send)
    return client


def _item(key: str, **attributes: str) -> dict[str, Any]:
    return {"pk": {"S": key}, **{name: {"S": value} for name, value in attributes.items()}}


def _stored(dynamodb: EmbeddedDynamoDB, key: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamodb.client().get_item(TableName="Items", Key=_item(key)).get("Item")
    return item


def test_throttling_is_dynamodbs_own_error(dynamodb: EmbeddedDynamoDB) -> None:
    client = _client(dynamodb, _injector("dynamodb.throttle:1"))
    codes = set()
    for attempt in range(12):
        with pytest.raises(ClientError) as caught:
            client.put_item(TableName="Items", Item=_item(f"throttled-{attempt}"))
        codes.add(caught.value.response["Error"]["Code"])
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert _stored(dynamodb, f"throttled-{attempt}") is None

    assert codes == {"ProvisionedThroughputExceededException", "ThrottlingException"}


def test_an_internal_server_error_is_a_500(dynamodb: EmbeddedDynamoDB) -> None:
    client = _client(dynamodb, _injector("dynamodb.internal:1"))

    with pytest.raises(ClientError) as caught:
        client.get_item(TableName="Items", Key=_item("any"))

    assert caught.value.response["Error"] == {
        "Code": "InternalServerError",
        "Message": "Internal server error",
    }
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_a_timeout_lands_the_write_then_times_out(dynamodb: EmbeddedDynamoDB, tmp_path: Path) -> None:
    injector = _injector("dynamodb.timeout:1", log=tmp_path / "faults.jsonl")
    client = _client(dynamodb, injector)

    with pytest.raises(ReadTimeoutError):
        client.put_item(TableName="Items", Item=_item("landed", value="1"))

    assert _stored(dynamodb, "landed") == _item("landed", value="1")
    (record,) = FaultLog(tmp_path / "faults.jsonl").read()
    assert record == injector.records[0]
    assert {
        key: record[key] for key in ("target", "kind", "operation", "landed", "error", "step", "seed")
    } == {
        "target": "dynamodb",
        "kind": "timeout",
        "operation": "PutItem",
        "landed": True,
        "error": "ReadTimeoutError",
        "step": 0,
        "seed": 1,
    }


def test_a_transaction_conflict_carries_its_cancellation_reasons(dynamodb: EmbeddedDynamoDB) -> None:
    client = _client(dynamodb, _injector("dynamodb.conflict:1"))
    items = [{"Put": {"TableName": "Items", "Item": _item(f"tx-{index}")}} for index in range(3)]

    with pytest.raises(ClientError) as caught:
        client.transact_write_items(TransactItems=items)

    error = caught.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    codes = [reason["Code"] for reason in error["CancellationReasons"]]
    assert sorted(codes) == ["None", "None", "TransactionConflict"]
    assert error["Error"]["Message"] == (
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(codes)}]"
    )
    assert all(_stored(dynamodb, f"tx-{index}") is None for index in range(3))


def test_a_single_write_meets_a_transaction_conflict_exception(dynamodb: EmbeddedDynamoDB) -> None:
    client = _client(dynamodb, _injector("dynamodb.conflict:1"))

    with pytest.raises(ClientError) as caught:
        client.delete_item(TableName="Items", Key=_item("any"))

    assert caught.value.response["Error"]["Code"] == "TransactionConflictException"


def _seed_faulting_only_the_first_step(spec: str) -> int:
    """A seed whose schedule breaks the first request and not the second."""
    for seed in range(1000):
        plan = FaultPlan.parse(spec, seed=seed)
        fitting = ("throttle", "internal", "timeout", "conflict")
        if plan.decide("dynamodb", "Fn#1/dynamodb", 0, fitting) and not plan.decide(
            "dynamodb", "Fn#1/dynamodb", 1, fitting
        ):
            return seed
    raise AssertionError("no such seed")


def test_the_functions_client_retries_a_throttle_away(dynamodb: EmbeddedDynamoDB) -> None:
    injector = _injector(
        "dynamodb.throttle:0.5", seed=_seed_faulting_only_the_first_step("dynamodb.throttle:0.5")
    )
    client = _client(dynamodb, injector, retries=True)

    client.put_item(TableName="Items", Item=_item("retried"))

    assert _stored(dynamodb, "retried") is not None
    assert [record["kind"] for record in injector.records] == ["throttle"]


def test_a_transaction_retried_after_a_timeout_that_landed_succeeds_once(dynamodb: EmbeddedDynamoDB) -> None:
    """botocore retries with the same `ClientRequestToken`, which DynamoDB (and the local stack's moto)
    answers as the transaction that landed, instead of running it again against its own write."""
    injector = _injector(
        "dynamodb.timeout:0.5", seed=_seed_faulting_only_the_first_step("dynamodb.timeout:0.5")
    )
    client = _client(dynamodb, injector, retries=True)
    put = {
        "TableName": "Items",
        "Item": _item("once", value="1"),
        "ConditionExpression": "attribute_not_exists(pk)",
    }

    client.transact_write_items(TransactItems=[{"Put": put}])

    assert [(record["kind"], record["landed"]) for record in injector.records] == [("timeout", True)]
    assert _stored(dynamodb, "once") == _item("once", value="1")


def _seed_timing_out_then_conflicting() -> int:
    """A seed whose `dynamodb:1` schedule makes the first request a timeout, and the second a conflict
    when a conflict fits it."""
    fitting = ("throttle", "internal", "timeout", "conflict")
    for seed in range(1000):
        plan = FaultPlan.parse("dynamodb:1", seed=seed)
        first, second = (plan.decide("dynamodb", "Fn#1/dynamodb", step, fitting) for step in (0, 1))
        if first and second and (first.kind, second.kind) == ("timeout", "conflict"):
            return seed
    raise AssertionError("no such seed")


def test_a_transaction_retried_after_a_timeout_that_landed_never_meets_a_conflict(
    dynamodb: EmbeddedDynamoDB,
) -> None:
    """DynamoDB answers a retry of a token that landed as the transaction that landed: a conflict there
    would tell the writer that nothing was written (the soak caught a log writer then tombstoning the
    positions its landed commit held)."""
    injector = _injector("dynamodb:1", seed=_seed_timing_out_then_conflicting())
    client = _client(dynamodb, injector)
    request = {
        "TransactItems": [{"Put": {"TableName": "Items", "Item": _item("landed-once")}}],
        "ClientRequestToken": "t-landed",
    }
    with pytest.raises(ReadTimeoutError):
        client.transact_write_items(**request)

    with pytest.raises((ClientError, ReadTimeoutError)):  # the retry, as botocore sends it
        client.transact_write_items(**request)

    assert injector.records[0]["kind"] == "timeout"
    assert injector.records[1]["kind"] != "conflict"
    assert injector.records[1]["error"] != "TransactionCanceledException"
    assert _stored(dynamodb, "landed-once") is not None


def test_a_reused_token_with_other_parameters_is_refused(dynamodb: EmbeddedDynamoDB) -> None:
    client = dynamodb.client()
    client.transact_write_items(
        TransactItems=[{"Put": {"TableName": "Items", "Item": _item("token-1")}}], ClientRequestToken="t-1"
    )

    with pytest.raises(ClientError) as caught:
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": "Items", "Item": _item("token-2")}}],
            ClientRequestToken="t-1",
        )

    assert caught.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert _stored(dynamodb, "token-2") is None


def _take_positions(client: Any, key: str) -> Any:
    """What a log writer under contention sends: positions taken from a head with `ADD`."""
    return client.update_item(
        TableName="Items",
        Key=_item(key),
        UpdateExpression="ADD #seq :size SET #at = :now",
        ExpressionAttributeNames={"#seq": "seq", "#at": "alloc_at"},
        ExpressionAttributeValues={":size": {"N": "3"}, ":now": {"N": "1"}},
        ReturnValues="UPDATED_OLD",
    )


def test_a_kill_after_taking_positions_leaves_them_taken_and_uncommitted(
    dynamodb: EmbeddedDynamoDB, tmp_path: Path
) -> None:
    injector = _injector("kill.taken:1", log=tmp_path / "faults.jsonl")
    client = _client(dynamodb, injector)

    client.put_item(TableName="Items", Item=_item("not-a-take"))  # a write that takes nothing: no kill
    with pytest.raises(Killed):
        _take_positions(client, "head")

    assert _stored(dynamodb, "head") == {"pk": {"S": "head"}, "seq": {"N": "3"}, "alloc_at": {"N": "1"}}
    (record,) = FaultLog(tmp_path / "faults.jsonl").read()
    assert (record["target"], record["kind"], record["operation"], record["landed"]) == (
        "kill",
        "taken",
        "UpdateItem",
        True,
    )
    assert record["signal"] == "SIGKILL"


def test_a_kill_before_a_write_leaves_nothing_written(dynamodb: EmbeddedDynamoDB) -> None:
    client = _client(dynamodb, _injector("kill.before:1"))

    with pytest.raises(Killed):
        client.put_item(TableName="Items", Item=_item("never"))

    assert _stored(dynamodb, "never") is None


def test_faults_name_the_invocation_they_happened_in(dynamodb: EmbeddedDynamoDB) -> None:
    injector = _injector("dynamodb.internal:1")
    injector.begin_invocation({"requestContext": {"requestId": "req-1"}}, "inv-1")
    client = _client(dynamodb, injector)

    with pytest.raises(ClientError):
        client.get_item(TableName="Items", Key=_item("any"))

    assert (injector.records[0]["request_id"], injector.records[0]["invocation_id"]) == ("req-1", "inv-1")
    assert injector.records[0]["function"] == "Fn"


# --- providers ---------------------------------------------------------------------------------------


class _Provider(BaseHTTPRequestHandler):
    received: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.received.append(self.path)
        body = json.dumps({"data": [{"id": "cus_1"}, {"id": "cus_2"}], "has_more": False}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider_faults() -> Iterator[Any]:
    """Installs a plan's hooks in this process as a worker has them; each test's own `httpx.Client` is
    made as the puller makes its own, after the install."""
    _Provider.received.clear()

    def install(spec: str, seed: int = 1) -> FaultInjector:
        return fault_hooks.install(FaultPlan.parse(spec, seed=seed), function="PullerFunction", stream="P#1")

    yield install
    fault_hooks.uninstall()
    assert not fault_hooks.installed()


def _puller_client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0), follow_redirects=False)


def test_a_rate_limit_is_a_429_with_retry_after_that_never_reached_the_provider(
    provider: str, provider_faults: Any
) -> None:
    provider_faults("provider.rate_limit:1")

    with _puller_client() as client:
        response = client.get(f"{provider}/v1/customers")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert _Provider.received == []


def test_a_server_error_is_a_5xx_and_a_500_reached_the_provider(provider: str, provider_faults: Any) -> None:
    injector = provider_faults("provider.server_error:1")

    with _puller_client() as client:
        statuses = [client.post(f"{provider}/v1/customers/{index}").status_code for index in range(12)]

    assert set(statuses) == {500, 502, 503}
    assert len(_Provider.received) == statuses.count(500)
    assert [record["landed"] for record in injector.records] == [status == 500 for status in statuses]


def test_a_timeout_reached_the_provider_then_timed_out(provider: str, provider_faults: Any) -> None:
    provider_faults("provider.timeout:1")

    with _puller_client() as client, pytest.raises(httpx.ReadTimeout):
        client.post(f"{provider}/v1/customers")

    assert _Provider.received == ["/v1/customers"]


def test_a_truncated_body_is_a_short_read_or_a_body_that_does_not_parse(
    provider: str, provider_faults: Any
) -> None:
    injector = provider_faults("provider.truncated:1")
    outcomes = set()

    with _puller_client() as client:
        for _ in range(8):
            try:
                response = client.get(f"{provider}/v1/customers")
            except httpx.RemoteProtocolError:
                outcomes.add("short read")
                continue
            with pytest.raises(json.JSONDecodeError):
                response.json()
            outcomes.add("cut body")

    assert outcomes == {"short read", "cut body"}
    assert {record["error"] for record in injector.records} == {"RemoteProtocolError", "short body"}


def test_the_pullers_retries_wait_for_the_injected_retry_after(provider: str, provider_faults: Any) -> None:
    provider_faults("provider.rate_limit:1")
    sleeps: list[float] = []

    with _puller_client() as client:
        http = PullHttp(client, PullStats(), allow_private=True, max_attempts=3, sleep=sleeps.append)
        with pytest.raises(PullFailed) as caught:
            http.get_json(f"{provider}/v1/customers")

    assert caught.value.error_type == "rate_limited"
    assert sleeps == [1.0, 1.0]


def test_a_truncated_page_fails_the_pull_or_is_retried(provider: str, provider_faults: Any) -> None:
    provider_faults("provider.truncated:0.5", seed=3)

    with _puller_client() as client:
        http = PullHttp(client, PullStats(), allow_private=True, max_attempts=5, sleep=lambda _: None)
        outcomes = []
        for _ in range(10):
            try:
                body, _ = http.get_json(f"{provider}/v1/customers")
            except PullFailed as failed:
                outcomes.append(failed.error_type)
            else:
                outcomes.append(str(len(body["data"])))

    assert set(outcomes) <= {"2", "bad_response"}
    assert "2" in outcomes


# --- the worker processes ----------------------------------------------------------------------------

HOOKS_REPORTER = """
import botocore.handlers
import httpx


def lambda_handler(event, context):
    return {
        "dynamodb": any(name.startswith("before-send.dynamodb") for name, *_ in botocore.handlers.BUILTIN_HANDLERS),
        "provider": httpx.HTTPTransport.handle_request.__module__ != "httpx._transports.default",
    }
"""


def _hooks_in_a_worker(tmp_path: Path, faults: FaultPlan | None) -> Any:
    (tmp_path / "app.py").write_text(HOOKS_REPORTER, encoding="utf-8")
    spec = FunctionSpec("Fn", tmp_path, "app.lambda_handler", {}, (), (), timeout_seconds=10, memory_mb=128)
    function = LocalFunction(spec, faults=faults)
    try:
        return function.invoke({})
    finally:
        function.stop()


def test_a_worker_has_no_hook_unless_faults_are_on(tmp_path: Path) -> None:
    assert _hooks_in_a_worker(tmp_path, None) == {"dynamodb": False, "provider": False}


def test_a_worker_under_a_plan_has_its_hooks_and_the_stack_itself_none(tmp_path: Path) -> None:
    plan = FaultPlan.parse("dynamodb:0.1,provider:0.2", seed=1, log_path=tmp_path / "faults.jsonl")

    assert _hooks_in_a_worker(tmp_path, plan) == {"dynamodb": True, "provider": True}
    assert not fault_hooks.installed()


# --- what Lambda does with a failed invocation -------------------------------------------------------


class _FailingFunction:
    def __init__(self, retries: int) -> None:
        self.spec = FunctionSpec(
            "Puller", Path(), "app.handler", {}, (), (), 10, 128, async_retry_attempts=retries
        )
        self.invocations = 0

    def invoke(self, payload: dict[str, Any]) -> Any:
        self.invocations += 1
        raise FunctionError("Puller's process exited (signal: SIGKILL)")


@pytest.mark.parametrize("retries", [0, 2])
def test_a_failed_asynchronous_invocation_is_retried_then_sent_to_its_on_failure_destination(
    retries: int,
) -> None:
    stack = LocalStack(port=0, faults=None, async_retry_delays_seconds=(0.0,))
    function = _FailingFunction(retries)

    stack._invoke_asynchronously(function, {"pull_id": "pull_1"})  # type: ignore[arg-type]

    assert function.invocations == 1 + retries
    assert stack.failed_async_invocations == [
        {
            "function": "Puller",
            "payload": {"pull_id": "pull_1"},
            "attempts": 1 + retries,
            "error": "Puller's process exited (signal: SIGKILL)",
        }
    ]


def test_the_template_gives_the_puller_no_asynchronous_retry() -> None:
    specs = functions(load_template())

    assert specs["PullerFunction"].async_retry_attempts == 0
    assert specs["IngestFunction"].async_retry_attempts == 2


def test_a_token_of_a_transaction_with_binary_attributes_is_kept(dynamodb: EmbeddedDynamoDB) -> None:
    client = dynamodb.client()
    put = {"Put": {"TableName": "Items", "Item": {"pk": {"S": "binary"}, "docz": {"B": b"\x00\x01"}}}}

    client.transact_write_items(TransactItems=[put], ClientRequestToken="t-binary")
    client.transact_write_items(TransactItems=[put], ClientRequestToken="t-binary")

    assert _stored(dynamodb, "binary") == {"pk": {"S": "binary"}, "docz": {"B": b"\x00\x01"}}


SELF_KILLER = """
import os
import signal


def lambda_handler(event, context):
    if event.get("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid()}
"""


def test_a_sigkilled_worker_fails_its_invocation_as_a_runtime_exit_and_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SELF_KILLER, encoding="utf-8")
    spec = FunctionSpec("Fn", tmp_path, "app.lambda_handler", {}, (), (), timeout_seconds=10, memory_mb=128)
    function = LocalFunction(spec)
    try:
        pid = function.invoke({})["pid"]
        with pytest.raises(FunctionError, match=r"process exited \(signal: SIGKILL\)") as caught:
            function.invoke({"kill": True})
        assert caught.value.error_type == "Runtime.ExitError"
        assert function.invoke({})["pid"] != pid
    finally:
        function.stop()
