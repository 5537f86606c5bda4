"""The local stack: the template's HTTP API, functions, schedule and tables, served on one port."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from pullbridge.auth import issue_api_key, new_api_key
from pullbridge.settings import StorageSettings
from pullbridge.storage import Store
from pullbridge_local import LOCAL_ACCESS_KEY, LOCAL_REGION
from pullbridge_local.dynamodb import EmbeddedDynamoDB, dynamodb_client
from pullbridge_local.faults import FaultLog, FaultPlan
from pullbridge_local.http_server import (
    HttpRequest,
    HttpResponse,
    HttpServer,
    error_response,
    http_response,
)
from pullbridge_local.lambda_runtime import FunctionError, LocalFunction, http_api_event, scheduled_event
from pullbridge_local.scheduler import ScheduledJob, Scheduler
from pullbridge_local.template import (
    DEFAULT_TEMPLATE_PATH,
    FunctionSpec,
    HttpRoute,
    create_tables,
    functions,
    load_template,
)

logger = logging.getLogger(__name__)

LOCAL_TENANT_ID = "local"
# Environment a deployment has but a laptop must not: a real secret's ARN, a real AWS identity.
_LAMBDA_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
_DEPLOYMENT_ONLY_VARIABLES = ("CURSOR_SECRET_ARN", "AWS_SESSION_TOKEN", "AWS_PROFILE")
# Lambda waits about a minute before retrying a failed asynchronous invocation, and two before the next.
_ASYNC_RETRY_DELAYS_SECONDS = (60.0, 120.0)


class Faults(Enum):
    FROM_ENVIRON = "environ"
    """Read `PULLBRIDGE_FAULTS` (and its seed and log) from this process's environment: off when unset."""


@dataclass(frozen=True)
class RouteMatch:
    route: HttpRoute
    function_id: str
    path_parameters: dict[str, str]


def _segment_rank(segment: str) -> int:
    """API Gateway prefers a literal segment to a `{variable}`, and a variable to a greedy `{proxy+}`."""
    if segment.startswith("{") and segment.endswith("+}"):
        return 0
    if segment.startswith("{") and segment.endswith("}"):
        return 1
    return 2


def _match_path(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    parameters = {}
    for index, part in enumerate(pattern):
        rank = _segment_rank(part)
        if rank == 0:
            rest = segments[index:]
            if not rest:
                return None
            parameters[part[1:-2]] = unquote("/".join(rest))
            return parameters
        if index >= len(segments):
            return None
        if rank == 1:
            parameters[part[1:-1]] = unquote(segments[index])
        elif part != segments[index]:
            return None
    return parameters if len(pattern) == len(segments) else None


class Router:
    """The template's HttpApi routes, matched most specific first, as API Gateway does."""

    def __init__(self, routes: Iterable[tuple[HttpRoute, str]]) -> None:
        def specificity(entry: tuple[HttpRoute, str, list[str]]) -> tuple[list[int], bool]:
            route, _, pattern = entry
            return [_segment_rank(part) for part in pattern], route.method != "ANY"

        entries = [(route, function_id, route.path.strip("/").split("/")) for route, function_id in routes]
        self._entries = sorted(entries, key=specificity, reverse=True)

    def match(self, method: str, path: str) -> RouteMatch | None:
        segments = path.strip("/").split("/")
        for route, function_id, pattern in self._entries:
            if route.method not in (method, "ANY"):
                continue
            parameters = _match_path(pattern, segments)
            if parameters is not None:
                return RouteMatch(route, function_id, parameters)
        return None


class LocalStack:
    """The whole stack on 127.0.0.1, built from `template.yaml`.

    The functions run in worker processes with the template's environment plus the local one, then
    `function_environment`; this process's own environment is left as it is. Private provider URLs are
    allowed unless this process's `PULLBRIDGE_ALLOW_PRIVATE_URLS` says otherwise (e.g. `0`, to try the
    production rule locally).

    Faults (`pullbridge_local.faults`) are injected into the functions' workers when this process's
    `PULLBRIDGE_FAULTS` is set, or `faults` names a plan; `faults=None` keeps them off whatever the
    environment says. Every fault is a line of `fault_log`.
    """

    def __init__(
        self,
        *,
        port: int = 3000,
        api_key: str | None = None,
        dynamodb_endpoint: str | None = None,
        cursor_secret: str | None = None,
        run_schedules: bool = True,
        first_scheduled_run_after_seconds: float = 2.0,
        template_path: Path = DEFAULT_TEMPLATE_PATH,
        function_environment: Mapping[str, str] | None = None,
        faults: FaultPlan | Faults | None = Faults.FROM_ENVIRON,
        async_retry_delays_seconds: tuple[float, ...] = _ASYNC_RETRY_DELAYS_SECONDS,
    ) -> None:
        self.api_key = api_key or new_api_key()
        self._requested_port = port
        self._external_dynamodb_endpoint = dynamodb_endpoint
        self._cursor_secret = cursor_secret or secrets.token_hex(32)
        self._run_schedules = run_schedules
        self._first_scheduled_run_after_seconds = first_scheduled_run_after_seconds
        self._template_path = template_path
        self._allow_private_urls = os.environ.get("PULLBRIDGE_ALLOW_PRIVATE_URLS") or "1"
        self._function_environment = dict(function_environment or {})
        self._faults = FaultPlan.from_environ() if faults is Faults.FROM_ENVIRON else faults
        self._async_retry_delays_seconds = async_retry_delays_seconds
        self.failed_async_invocations: list[dict[str, Any]] = []
        """What Lambda would send to a function's `OnFailure` destination: asynchronous invocations that
        failed after their retries (the puller's go to `PullerFailureQueue` when deployed)."""
        self._embedded_dynamodb: EmbeddedDynamoDB | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._scheduler: Scheduler | None = None
        self._functions: dict[str, LocalFunction] = {}
        self._router = Router([])

    @property
    def url(self) -> str:
        if self._http_server is None:
            raise RuntimeError("LocalStack is not started")
        return f"http://127.0.0.1:{self._http_server.server_port}"

    @property
    def faults(self) -> FaultPlan | None:
        """The fault plan the functions run under (its log path set once started), None when off."""
        return self._faults if isinstance(self._faults, FaultPlan) else None

    @property
    def fault_log(self) -> FaultLog | None:
        plan = self.faults
        return FaultLog(plan.log_path) if plan is not None and plan.log_path is not None else None

    def injected_faults(self) -> list[dict[str, Any]]:
        """Every fault the functions injected so far, as the fault log holds them."""
        log = self.fault_log
        return log.read() if log is not None else []

    @property
    def dynamodb_endpoint(self) -> str:
        if self._external_dynamodb_endpoint:
            return self._external_dynamodb_endpoint
        if self._embedded_dynamodb is None:
            raise RuntimeError("LocalStack is not started")
        return self._embedded_dynamodb.endpoint_url

    def start(self) -> None:
        """Serves the stack; on any failure, what was already started is stopped again."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        template = load_template(self._template_path)
        if not self._external_dynamodb_endpoint:
            self._embedded_dynamodb = EmbeddedDynamoDB(isolated=True)
            self._embedded_dynamodb.start()
        client = dynamodb_client(self.dynamodb_endpoint)
        table_names = create_tables(client, template)
        # Bound before the functions start: PUBLIC_BASE_URL needs the port, which may be chosen here.
        self._http_server = HttpServer(("127.0.0.1", self._requested_port), self)
        specs = functions(template, table_names=table_names, template_dir=self._template_path.parent)
        self._start_faults()
        self._functions = {
            logical_id: LocalFunction(
                self._local_spec(spec), unset_variables=_DEPLOYMENT_ONLY_VARIABLES, faults=self.faults
            )
            for logical_id, spec in specs.items()
        }
        for function in self._functions.values():
            function.warm_up()
        self._router = Router(
            (route, logical_id) for logical_id, spec in specs.items() for route in spec.http_routes
        )
        # The functions share the Globals' table variables, so any one's environment names the tables.
        settings = StorageSettings.from_environ(next(iter(self._functions.values())).spec.environment)
        issue_api_key(Store(client, settings), LOCAL_TENANT_ID, key=self.api_key, name="local")
        self._http_thread = threading.Thread(
            target=self._http_server.serve_forever, name="local-http", daemon=True
        )
        self._http_thread.start()
        if self._run_schedules:
            self._scheduler = Scheduler(
                [
                    ScheduledJob(logical_id, rate, functools.partial(self._run_schedule, logical_id))
                    for logical_id, spec in specs.items()
                    for rate in spec.schedules
                ],
                first_run_after_seconds=self._first_scheduled_run_after_seconds,
            )
            self._scheduler.start()

    def _start_faults(self) -> None:
        plan = self.faults
        if plan is None:
            return
        if plan.log_path is None:
            descriptor, name = tempfile.mkstemp(prefix="pullbridge-faults-", suffix=".jsonl")
            os.close(descriptor)
            plan = self._faults = plan.with_log(Path(name))
        logger.warning(
            "fault injection on: PULLBRIDGE_FAULTS=%s PULLBRIDGE_FAULTS_SEED=%d, logged to %s",
            plan,
            plan.seed,
            plan.log_path,
        )

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self._http_server is not None:
            # Only a serving server can be shut down: `shutdown()` waits for `serve_forever()` to return.
            if self._http_thread is not None:
                self._http_server.shutdown()
                self._http_thread.join()
                self._http_thread = None
            self._http_server.server_close()
            self._http_server = None
        for function in self._functions.values():
            function.stop()
        self._functions = {}
        if self._embedded_dynamodb is not None:
            self._embedded_dynamodb.stop()
            self._embedded_dynamodb = None

    def invoke_schedule(self, function_logical_id: str) -> Any:
        """One scheduled run of a function, now, as its schedule would invoke it."""
        function = self._functions[function_logical_id]
        if not function.spec.schedules:
            raise ValueError(f"the template gives {function_logical_id} no schedule")
        return function.invoke(scheduled_event(f"{function_logical_id}-local"))

    def _run_schedule(self, function_logical_id: str) -> None:
        """A tick of the schedule: EventBridge Scheduler invokes asynchronously, so a failed run is retried
        and then reported as Lambda does any asynchronous invocation."""
        function = self._functions[function_logical_id]
        self._invoke_asynchronously(function, scheduled_event(f"{function_logical_id}-local"))

    def handle_http(self, request: HttpRequest) -> HttpResponse:
        target = urlsplit(request.target)
        invocation = _LAMBDA_INVOKE_PATH.fullmatch(target.path)
        if invocation and request.method == "POST":
            return self._invoke_lambda(invocation.group(1), request)
        match = self._router.match(request.method, target.path)
        if match is None:
            return error_response(404, "not_found", "no route", "no_route")
        event = http_api_event(
            route=match.route,
            method=request.method,
            raw_path=target.path,
            raw_query_string=target.query,
            headers=request.headers,
            body=request.body,
            path_parameters=match.path_parameters,
            source_ip=request.source_ip,
        )
        try:
            response = http_response(self._functions[match.function_id].invoke(event))
        except FunctionError as exc:
            # The traceback is already in the function's own log, as on CloudWatch. An HTTP API answers a
            # function that failed, timed out or died (a crash, a SIGKILL) with 500.
            logger.error("%s on %s %s", exc, request.method, target.path)  # noqa: TRY400
            response = error_response(
                500, "internal", "the function failed; see the local stack's log", "function_error"
            )
        # API Gateway names each request in its answer: the id the function saw, and the fault log names.
        request_id = event["requestContext"]["requestId"]
        return replace(response, headers=[*response.headers, ("apigw-requestid", request_id)])

    def _invoke_lambda(self, function_name: str, request: HttpRequest) -> HttpResponse:
        """Lambda's Invoke API, so a function can start another as it does on AWS (the API starting a
        triggered pull). `Event` invocations run in the background and answer 202 at once."""
        function = self._functions.get(function_name)
        if function is None:
            return HttpResponse(
                404, [("content-type", "application/json")], b'{"Type":"User","Message":"Function not found"}'
            )
        payload = json.loads(request.body or b"{}")
        invocation_type = dict((k.lower(), v) for k, v in request.headers).get(
            "x-amz-invocation-type", "RequestResponse"
        )
        if invocation_type == "Event":
            threading.Thread(
                target=self._invoke_asynchronously, args=(function, payload), daemon=True
            ).start()
            return HttpResponse(202, [("content-type", "application/json")], b"")
        try:
            result = function.invoke(payload)
        except FunctionError as exc:
            # Lambda answers a failed synchronous invocation 200, naming the failure in a header.
            error = {"errorMessage": str(exc), "errorType": exc.error_type}
            headers = [("content-type", "application/json"), ("x-amz-function-error", "Unhandled")]
            return HttpResponse(200, headers, json.dumps(error).encode())
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())

    def _invoke_asynchronously(self, function: LocalFunction, payload: dict[str, Any]) -> None:
        """As Lambda runs an `Event` invocation: a failure is retried `MaximumRetryAttempts` times (the
        template's `EventInvokeConfig`, 2 by default), then goes to the `OnFailure` destination, here
        `failed_async_invocations`."""
        attempts, error = 1 + function.spec.async_retry_attempts, ""
        for attempt in range(attempts):
            try:
                function.invoke(payload)
            except FunctionError as exc:
                logger.error(  # noqa: TRY400 - the traceback is in the worker's own log
                    "asynchronous invocation of %s failed (attempt %d of %d): %s",
                    function.spec.logical_id,
                    attempt + 1,
                    attempts,
                    exc,
                )
                error = str(exc)
            else:
                return
            if attempt + 1 < attempts:
                delays = self._async_retry_delays_seconds
                time.sleep(delays[min(attempt, len(delays) - 1)] if delays else 0.0)
        self.failed_async_invocations.append(
            {"function": function.spec.logical_id, "payload": payload, "attempts": attempts, "error": error}
        )

    def _local_spec(self, spec: FunctionSpec) -> FunctionSpec:
        """The template's function as the local stack runs it: the caller's variables come last, so they
        win over both the template's and the local ones."""
        environment = spec.environment | self._local_environment() | self._function_environment
        return replace(spec, environment=environment)

    def _local_environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "CURSOR_SECRET": self._cursor_secret,
            "PULLBRIDGE_ALLOW_PRIVATE_URLS": self._allow_private_urls,
            "PUBLIC_BASE_URL": self.url,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_ACCESS_KEY,
        }

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
