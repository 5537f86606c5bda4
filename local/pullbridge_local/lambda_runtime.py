"""Runs the template's functions as Lambda would: same handler, events and context, one process each.

Each execution environment is a worker process that imports the function once (its cold start) and then
serves one invocation at a time. Separate processes matter: Powertools keeps per-request state at class
level (the resolver's current event), which concurrent invocations in threads of one process would share.
"""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from pullbridge_local import LOCAL_ACCOUNT_ID, LOCAL_REGION
from pullbridge_local.faults import FaultPlan
from pullbridge_local.template import FunctionSpec, HttpRoute

Handler = Callable[[dict[str, Any], Any], Any]

# Spawned, not forked: the parent runs server threads, and a fork would copy their locks mid-use.
_PROCESSES = multiprocessing.get_context("spawn")
_COLD_START_TIMEOUT_SECONDS = 60


def import_function_module(module_name: str, path: Path) -> ModuleType:
    """Imports a function's handler module from its file, under `module_name`, as Lambda imports it: with
    its directory (the task root) first on sys.path meanwhile, so the modules beside it (the API's
    `api_routes`) import by their own names. The tests import every function into one process: the
    directory leaves sys.path again, and those names must be each function's own."""
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {module_name} from {path}")
    module = importlib.util.module_from_spec(module_spec)
    # Registered before it runs, as a normal import would be, so pydantic and dataclasses resolve its names.
    sys.modules[module_name] = module
    task_root = str(path.parent)
    sys.path.insert(0, task_root)
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.remove(task_root)
    return module


def load_handler(spec: FunctionSpec) -> Handler:
    """Imports the function's module under a name of its own, after setting its environment."""
    module_file, _, attribute = spec.handler.rpartition(".")
    os.environ.update(spec.environment)
    module = import_function_module(
        f"pullbridge_fn_{spec.logical_id.lower()}", spec.code_uri / f"{module_file}.py"
    )
    handler: Handler = getattr(module, attribute)
    return handler


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started_at: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class FunctionError(Exception):
    """An invocation failed: the handler raised, timed out or its process died. Its log has the details.

    `error_type` is what Lambda's Invoke API names the failure: `Unhandled` (the handler raised),
    `Sandbox.Timedout`, `Runtime.ExitError` (the runtime died: a crash, a SIGKILL)."""

    def __init__(self, message: str, *, error_type: str = "Unhandled") -> None:
        super().__init__(message)
        self.error_type = error_type


def _serve_invocations(
    spec: FunctionSpec,
    unset_variables: tuple[str, ...],
    connection: Connection,
    faults: FaultPlan | None = None,
    stream: str = "",
) -> None:
    """A worker process: the cold start, then one invocation at a time until the parent hangs up.

    With a fault plan, its hooks go in before the function is imported, so every client it makes has them.
    """
    # Ctrl-C reaches the whole process group; the parent stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in unset_variables:
        os.environ.pop(name, None)
    injector = None
    if faults is not None:
        from pullbridge_local.fault_hooks import install

        injector = install(faults, function=spec.logical_id, stream=stream or spec.logical_id)
    try:
        handler = load_handler(spec)
    except Exception as exc:
        traceback.print_exc()
        connection.send(("error", f"init failed: {exc!r}"))
        return
    connection.send(("ready", None))
    while True:
        try:
            event = connection.recv()
        except EOFError:
            return
        context = LambdaContext(spec.logical_id, spec.memory_mb, spec.timeout_seconds)
        if injector is not None:
            injector.begin_invocation(event, context.aws_request_id)
        try:
            # Lambda answers the result as JSON: a result that JSON cannot carry fails here as it does there.
            connection.send(("result", json.dumps(handler(event, context))))
        except Exception as exc:
            traceback.print_exc()
            connection.send(("error", repr(exc)))


class _ExecutionEnvironment:
    def __init__(
        self,
        spec: FunctionSpec,
        unset_variables: tuple[str, ...],
        faults: FaultPlan | None = None,
        stream: str = "",
    ) -> None:
        self._spec = spec
        self._connection, child_connection = _PROCESSES.Pipe()
        self._process = _PROCESSES.Process(
            target=_serve_invocations,
            args=(spec, unset_variables, child_connection, faults, stream),
            name=f"lambda-{stream or spec.logical_id}",
            daemon=True,
        )
        self._process.start()
        child_connection.close()
        try:
            self._receive(_COLD_START_TIMEOUT_SECONDS)
        except FunctionError:
            self.stop()
            raise

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def invoke(self, event: dict[str, Any]) -> Any:
        try:
            self._connection.send(event)
        except OSError as exc:
            raise FunctionError(
                f"{self._spec.logical_id}'s process is stopped", error_type="Runtime.ExitError"
            ) from exc
        return json.loads(self._receive(self._spec.timeout_seconds))

    def _receive(self, timeout_seconds: float) -> Any:
        try:
            if not self._connection.poll(timeout_seconds):
                # As Lambda does, a timed-out environment is discarded, whatever it was doing.
                self.stop()
                raise FunctionError(
                    f"{self._spec.logical_id} timed out after {timeout_seconds} s",
                    error_type="Sandbox.Timedout",
                )
            status, payload = self._connection.recv()
        except (EOFError, OSError) as exc:
            self.stop()
            raise FunctionError(
                f"{self._spec.logical_id}'s process exited{self._exit_status()}",
                error_type="Runtime.ExitError",
            ) from exc
        if status == "error":
            raise FunctionError(f"{self._spec.logical_id} failed: {payload}")
        return payload

    def _exit_status(self) -> str:
        """As Lambda reports a runtime that died: `Runtime exited with error: signal: killed`."""
        code = self._process.exitcode
        if code is None or code == 0:
            return ""
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return f" (signal: {name})"
        return f" (exit status {code})"

    def stop(self) -> None:
        self._connection.close()
        self._process.kill()
        self._process.join()


class LocalFunction:
    """One function's execution environments.

    As on Lambda, an environment serves one invocation at a time, and a new one starts (a cold start)
    when every environment is busy; a failed invocation's environment is reused unless it died.
    """

    def __init__(
        self, spec: FunctionSpec, *, unset_variables: Iterable[str] = (), faults: FaultPlan | None = None
    ) -> None:
        self.spec = spec
        self._unset_variables = tuple(unset_variables)
        self._faults = faults
        self._started = itertools.count(1)
        self._idle: list[_ExecutionEnvironment] = []
        self._all: list[_ExecutionEnvironment] = []
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Starts the first environment now, so an import error shows at start-up, not at a request."""
        self._release(self._acquire())

    def invoke(self, event: dict[str, Any]) -> Any:
        environment = self._acquire()
        try:
            return environment.invoke(event)
        finally:
            self._release(environment)

    def stop(self) -> None:
        with self._lock:
            environments, self._all, self._idle = self._all, [], []
        for environment in environments:
            environment.stop()

    def _acquire(self) -> _ExecutionEnvironment:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        with self._lock:
            stream = f"{self.spec.logical_id}#{next(self._started)}"
        environment = _ExecutionEnvironment(self.spec, self._unset_variables, self._faults, stream)
        with self._lock:
            self._all.append(environment)
        return environment

    def _release(self, environment: _ExecutionEnvironment) -> None:
        with self._lock:
            if environment not in self._all:
                return
            if environment.alive:
                self._idle.append(environment)
            else:  # it timed out or died (a SIGKILL of the fault switch): the next invocation starts anew
                self._all.remove(environment)


def _joined(pairs: Iterable[tuple[str, str]], *, lower_names: bool) -> dict[str, str]:
    """Repeated names joined with commas, as API Gateway does for headers and query parameters."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower() if lower_names else name
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def http_api_event(
    *,
    route: HttpRoute,
    method: str,
    raw_path: str,
    raw_query_string: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    path_parameters: Mapping[str, str],
    source_ip: str,
    domain_name: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API event, payload format 2.0."""
    header_values = _joined(headers, lower_names=True)
    # Payload 2.0 moves cookies out of the headers into their own list.
    cookie_header = header_values.pop("cookie", "")
    now = datetime.now(UTC)
    route_key = f"{route.method} {route.path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query_string,
        "headers": header_values,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "apiId": "local",
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": header_values.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookie_header:
        event["cookies"] = [cookie.strip() for cookie in cookie_header.split(";") if cookie.strip()]
    query_parameters = _joined(parse_qsl(raw_query_string, keep_blank_values=True), lower_names=False)
    if query_parameters:
        event["queryStringParameters"] = query_parameters
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def scheduled_event(schedule_name: str = "local-schedule") -> dict[str, Any]:
    """The event EventBridge Scheduler sends for the template's `ScheduleV2` schedules."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": LOCAL_ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [
            f"arn:aws:scheduler:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:schedule/default/{schedule_name}"
        ],
        "detail": "{}",
    }
