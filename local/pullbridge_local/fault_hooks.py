"""Where the fault switch acts, inside a function's worker process (see `faults` for the switch itself).

- **DynamoDB**: a botocore `before-send.dynamodb` handler, added to botocore's built-in handlers before the
  function is imported, so every DynamoDB client the function makes (`pullbridge.storage.dynamodb_client`,
  Powertools' idempotency table client) has it. It runs once per HTTP attempt, under botocore's retries,
  and answers in place of DynamoDB with the bytes DynamoDB sends (status, `x-amzn-RequestId`,
  `x-amz-crc32`, the JSON `__type`, `CancellationReasons`), which botocore parses and retries as it would
  DynamoDB's own: the product's retry and 5xx paths run as deployed.
- **Providers**: `httpx.HTTPTransport.handle_request`, the transport under every httpx client the function
  makes (the puller's `http_client`, the API's mutation client): each attempt of the product's retries, on
  http and https alike, answered with what a provider or its edge sends. A proxy in front of the provider
  URLs would have to be named in each connection's `api_base_url` (or in `HTTP_PROXY`, which botocore
  honours too), could not touch https, and would make a timeout cost the client's whole 20 s.
- **Worker kill**: `SIGKILL` of the worker process itself at a DynamoDB request, as Lambda's runtime dies:
  no `finally`, no answer, the invocation ends where it is.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import string
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, cast

import botocore.handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from pullbridge_local.faults import KINDS, Fault, FaultLog, FaultPlan, now_text

_DYNAMODB_EVENT = "before-send.dynamodb"
_DYNAMODB_TYPE = "com.amazonaws.dynamodb.v20120810#"
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_TRANSACTIONS = frozenset({"TransactWriteItems", "TransactGetItems"})
_CONFLICTING = _TRANSACTIONS | {"PutItem", "UpdateItem", "DeleteItem"}
_ADD = re.compile(r"\bADD\b", re.IGNORECASE)
_REQUEST_ID_CHARACTERS = string.ascii_uppercase + string.digits
_ON_DEMAND_THROTTLE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
    "table or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)


class _Body:
    """The `raw` of a botocore response: what `AWSResponse.content` streams from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _dynamodb_answer(url: str, status: int, body: Mapping[str, Any]) -> AWSResponse:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "x-amzn-RequestId": "".join(secrets.choice(_REQUEST_ID_CHARACTERS) for _ in range(52)),
        "x-amz-crc32": str(zlib.crc32(payload)),
        "Content-Type": "application/x-amz-json-1.0",
        "Content-Length": str(len(payload)),
    }
    return AWSResponse(url, status, cast(Any, headers), _Body(payload))


def _cancelled_by_conflict(url: str, items: int, detail: float) -> tuple[AWSResponse, str]:
    """A transaction cancelled because one of its items is in another transaction, as DynamoDB says it."""
    conflicting = min(int(detail * items), items - 1)
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(items)]
    reasons[conflicting] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    codes = ", ".join(reason["Code"] for reason in reasons)
    body = {
        "__type": f"{_DYNAMODB_TYPE}TransactionCanceledException",
        "CancellationReasons": reasons,
        "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
    }
    return _dynamodb_answer(url, 400, body), "TransactionCanceledException"


def dynamodb_fault_answer(
    fault: Fault, operation: str, request_body: Mapping[str, Any], url: str
) -> tuple[AWSResponse, str]:
    """DynamoDB's answer for `fault` (not a timeout), and its error code."""
    if fault.kind == "throttle":
        if fault.detail < 0.75:
            code, message = "ProvisionedThroughputExceededException", _ON_DEMAND_THROTTLE
            body = {"__type": f"{_DYNAMODB_TYPE}{code}", "message": message}
        else:
            code = "ThrottlingException"
            body = {"__type": f"com.amazon.coral.availability#{code}", "message": "Rate exceeded for table"}
        return _dynamodb_answer(url, 400, body), code
    if fault.kind == "internal":
        body = {"__type": f"{_DYNAMODB_TYPE}InternalServerError", "message": "Internal server error"}
        return _dynamodb_answer(url, 500, body), "InternalServerError"
    if operation in _TRANSACTIONS:
        return _cancelled_by_conflict(url, max(1, len(request_body.get("TransactItems") or [])), fault.detail)
    body = {
        "__type": f"{_DYNAMODB_TYPE}TransactionConflictException",
        "message": "Transaction is ongoing for the item",
    }
    return _dynamodb_answer(url, 400, body), "TransactionConflictException"


def _takes_positions(operation: str, request_body: Mapping[str, Any]) -> bool:
    """An `UpdateItem` that `ADD`s to a `seq`: a log head handing out positions, held until committed."""
    if operation != "UpdateItem":
        return False
    names = (request_body.get("ExpressionAttributeNames") or {}).values()
    return bool(_ADD.search(request_body.get("UpdateExpression") or "")) and "seq" in names


def _kill_kinds(operation: str, request_body: Mapping[str, Any]) -> tuple[str, ...]:
    if _takes_positions(operation, request_body):
        return ("before", "after", "taken")
    return ("before", "after") if operation in _WRITES else ("before",)


def _dynamodb_kinds(operation: str, landed: bool = False) -> tuple[str, ...]:
    """The faults that fit a request. A transaction whose `ClientRequestToken` already landed (botocore's
    retry after a timeout) is answered by DynamoDB as the transaction that landed, never as a conflict:
    a conflict would tell the caller that nothing was written when it was."""
    if operation not in _CONFLICTING or landed:
        return ("throttle", "internal", "timeout")
    return KINDS["dynamodb"]


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class FaultInjector:
    """One worker process's faults: its streams' steps, the invocation running, and the log."""

    def __init__(
        self, plan: FaultPlan, *, function: str, stream: str, kill: Callable[[], None] = _sigkill
    ) -> None:
        self.plan = plan
        self.function = function
        self.stream = stream
        self.records: list[dict[str, Any]] = []
        self._kill = kill
        self._log = FaultLog(plan.log_path) if plan.log_path else None
        self._steps = {"dynamodb": 0, "provider": 0}
        self._lock = threading.Lock()
        self._invocation: dict[str, str | None] = {"request_id": None, "invocation_id": None}
        self._http_session: URLLib3Session | None = None
        self._landed_tokens: set[str] = set()
        """`ClientRequestToken`s of transactions a `timeout` let land: botocore sends them again."""

    def begin_invocation(self, event: Mapping[str, Any], invocation_id: str) -> None:
        """Faults from now on belong to this invocation (and, for an HTTP event, to its request)."""
        context = event.get("requestContext") if isinstance(event, Mapping) else None
        request_id = context.get("requestId") if isinstance(context, Mapping) else None
        self._invocation = {"request_id": request_id, "invocation_id": invocation_id}

    def _step(self, site: str) -> int:
        with self._lock:
            step = self._steps[site]
            self._steps[site] = step + 1
            return step

    def _record(self, fault: Fault, operation: str, **details: Any) -> None:
        record = {
            "time": now_text(),
            "seed": self.plan.seed,
            "stream": fault.stream,
            "step": fault.step,
            "target": fault.target,
            "kind": fault.kind,
            "operation": operation,
            "function": self.function,
            "pid": os.getpid(),
            **self._invocation,
            **details,
        }
        self.records.append(record)
        if self._log is not None:
            self._log.append(record)

    # DynamoDB ---------------------------------------------------------------------------------------

    def before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        """botocore's `before-send.dynamodb.<Operation>`: None sends the request as it is."""
        operation = event_name.rsplit(".", 1)[-1]
        step = self._step("dynamodb")
        stream = f"{self.stream}/dynamodb"
        body = _request_body(request)
        kill = self.plan.decide("kill", stream, step, _kill_kinds(operation, body), function=self.function)
        if kill is not None:
            self._die(kill, operation, request)
        token = body.get("ClientRequestToken") if operation in _TRANSACTIONS else None
        kinds = _dynamodb_kinds(operation, landed=token in self._landed_tokens)
        fault = self.plan.decide("dynamodb", stream, step, kinds, function=self.function)
        if fault is None:
            return None
        if fault.kind == "timeout":
            self._send(request)
            if isinstance(token, str):
                self._landed_tokens.add(token)
            self._record(fault, operation, error="ReadTimeoutError", landed=True)
            raise ReadTimeoutError(endpoint_url=request.url, error="Read timed out. (read timeout=5)")
        answer, code = dynamodb_fault_answer(fault, operation, body, request.url)
        self._record(fault, operation, error=code, status=answer.status_code, landed=False)
        return answer

    def _die(self, kill: Fault, operation: str, request: AWSPreparedRequest) -> None:
        landed = kill.kind != "before"
        if landed and _takes_positions(operation, _request_body(request)):
            kill = replace(kill, kind="taken")  # `kill.after` of a request that took positions
        if landed:
            self._send(request)
        self._record(kill, operation, signal="SIGKILL", landed=landed)
        self._kill()

    def _send(self, request: AWSPreparedRequest) -> None:
        """Sends the request as botocore would have: it reaches DynamoDB and is applied."""
        if self._http_session is None:
            self._http_session = URLLib3Session(timeout=10)
        response = self._http_session.send(request)
        _ = response.content

    # Providers --------------------------------------------------------------------------------------

    def provider_request(self, request: Any, send: Callable[[], Any]) -> Any:
        """One HTTP attempt to a provider (an `httpx.Request`): `send()` or a fault in its place."""
        from pullbridge_local import provider_faults

        step = self._step("provider")
        fault = self.plan.decide(
            "provider", f"{self.stream}/provider", step, provider_faults.KINDS, function=self.function
        )
        if fault is None:
            return send()
        operation = f"{request.method} {request.url.host}{request.url.path}"
        answer = provider_faults.answer(fault, request, send)
        self._record(fault, operation, **answer.details)
        return answer.respond()


def _request_body(request: AWSPreparedRequest) -> dict[str, Any]:
    body = request.body
    if isinstance(body, bytes | bytearray | str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


_installed: list[tuple[str, Callable[..., Any]]] = []
_original_handle_request: list[Callable[..., Any]] = []


def install(plan: FaultPlan, *, function: str, stream: str) -> FaultInjector:
    """Puts the hooks in this process, before the function is imported. Only the local stack's worker
    processes (and tests, with `uninstall`) call it."""
    injector = FaultInjector(plan, function=function, stream=stream)
    if plan.targets & {"dynamodb", "kill"}:
        handler = (_DYNAMODB_EVENT, injector.before_send)
        botocore.handlers.BUILTIN_HANDLERS.append(handler)
        _installed.append(handler)
    if "provider" in plan.targets:
        import httpx

        original = httpx.HTTPTransport.handle_request
        _original_handle_request.append(original)

        def handle_request(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            response: httpx.Response = injector.provider_request(
                request, lambda: original(transport, request)
            )
            return response

        httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign,assignment]
    return injector


def uninstall() -> None:
    """Takes out what `install` put in (for tests: a worker process dies with its hooks)."""
    while _installed:
        botocore.handlers.BUILTIN_HANDLERS.remove(_installed.pop())
    if _original_handle_request:
        import httpx

        httpx.HTTPTransport.handle_request = _original_handle_request[0]  # type: ignore[method-assign]
        _original_handle_request.clear()


def installed() -> bool:
    return bool(_installed or _original_handle_request)
