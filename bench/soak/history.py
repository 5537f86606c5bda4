"""The soak's history: one JSON object a line, every operation with its outcome, in the order recorded.

Every line has `n` (its index, from 0), `t` (what it records), `actor` and, for what took time, `at` and
`until` (epoch seconds when it was sent and when its answer came back). What each kind carries is in
`bench.soak.checker`, which is the only reader.

Lines are appended under one lock and flushed at once, so a run that dies leaves a readable history up
to its last operation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

Line = dict[str, Any]


class History:
    """The history file being written. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._count = 0
        self._file = path.open("w", encoding="utf-8")

    def record(self, kind: str, actor: str, /, **fields: Any) -> int:
        """Appends one line; returns its index."""
        with self._lock:
            index = self._count
            line = {"n": index, "t": kind, "actor": actor, **fields}
            self._file.write(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n")
            self._file.flush()
            self._count += 1
            return index

    @property
    def lock(self) -> threading.Lock:
        """Held while a line is written: whoever holds it orders its work before every later line."""
        return self._lock

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_history(path: Path) -> list[Line]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def read_json_lines(path: Path) -> list[Line]:
    if not path.exists():
        return []
    return read_history(path)


class HttpRecorder:
    """httpx event hooks that record every HTTP attempt to the stack as an `http` line: method, path,
    status (None when no answer came), and `request_id`, API Gateway's `apigw-requestid`, which the fault
    log names."""

    def __init__(self, history: History, actor: str, stack: str) -> None:
        self.history = history
        self.actor = actor
        self.stack = stack
        self._started = threading.local()

    def on_request(self, request: httpx.Request) -> None:
        self._started.at = time.time()

    def on_response(self, response: httpx.Response) -> None:
        request = response.request
        self.history.record(
            "http",
            self.actor,
            stack=self.stack,
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            request_id=response.headers.get("apigw-requestid"),
            at=getattr(self._started, "at", time.time()),
            until=time.time(),
        )

    def failed(self, request: httpx.Request, error: Exception) -> None:
        """A transport failure: no answer, so nothing names the request."""
        self.history.record(
            "http",
            self.actor,
            stack=self.stack,
            method=request.method,
            path=request.url.path,
            status=None,
            error=type(error).__name__,
            request_id=None,
            at=getattr(self._started, "at", time.time()),
            until=time.time(),
        )

    def client(self, base_url: str, *, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(
            base_url=base_url,
            timeout=timeout,
            event_hooks={"request": [self.on_request], "response": [self.on_response]},
        )


def send(
    recorder: HttpRecorder,
    http: httpx.Client,
    method: str,
    path: str,
    **kwargs: Any,
) -> httpx.Response | None:
    """One attempt; None when the transport failed (recorded as such)."""
    try:
        response = http.request(method, path, **kwargs)
        response.read()
    except httpx.TransportError as error:
        recorder.failed(httpx.Request(method, http.base_url.join(path)), error)
        return None
    return response


def by_key(lines: list[Line], key: Callable[[Line], Any]) -> dict[Any, list[Line]]:
    grouped: dict[Any, list[Line]] = {}
    for line in lines:
        grouped.setdefault(key(line), []).append(line)
    return grouped


def canonical(value: Any) -> str:
    """The JSON of a value with sorted keys: equal states compare equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
