"""An embedded DynamoDB: moto's server, in a background thread of this process, over real HTTP."""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import threading
import urllib.request
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from pullbridge_local import LOCAL_ACCESS_KEY, LOCAL_REGION, moto_queries, moto_transactions

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class _QuietRequestHandler(MotoRequestHandler):
    def log_request(self, *args: Any) -> None:
        """Every DynamoDB call would otherwise print an access-log line."""


def _serve_forever_in_child(ports: multiprocessing.queues.Queue[int]) -> None:
    server = _single_threaded_server()
    ports.put(server.server_port)
    server.serve_forever()


def _single_threaded_server() -> BaseWSGIServer:
    moto_transactions.install()
    moto_queries.install()
    application = DomainDispatcherApplication(create_backend_app)
    return make_server("127.0.0.1", 0, application, threaded=False, request_handler=_QuietRequestHandler)


class EmbeddedDynamoDB:
    """moto's DynamoDB on 127.0.0.1 at a free port.

    The server is single-threaded on purpose: moto's backend is not thread-safe, and each request must
    run atomically, as on DynamoDB, or conditional writes and transactions could interleave. A
    single-threaded werkzeug server also speaks HTTP/1.0, so no idle keep-alive connection can hold it.

    moto keeps one backend per process, shared by every server in it. `isolated=True` runs the server in
    a child process of its own, so no other server's tables (or `reset`) can reach it: the local stack
    and the test session each get their own.
    """

    def __init__(self, *, isolated: bool = False) -> None:
        self._isolated = isolated
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._port: int | None = None

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise RuntimeError("EmbeddedDynamoDB is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> str:
        if self._port is not None:
            return self.endpoint_url
        if self._isolated:
            context = multiprocessing.get_context("spawn")
            ports: multiprocessing.queues.Queue[int] = context.Queue()
            self._process = context.Process(
                target=_serve_forever_in_child, args=(ports,), name="embedded-dynamodb", daemon=True
            )
            self._process.start()
            self._port = ports.get(timeout=60)
        else:
            self._server = _single_threaded_server()
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="embedded-dynamodb", daemon=True
            )
            self._thread.start()
            self._port = self._server.server_port
        return self.endpoint_url

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=10)
            self._process = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = None
            self._thread = None
        self._port = None

    def reset(self) -> None:
        """Drops every table and item of this server's backend (the whole process's, unless isolated)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def client(self) -> DynamoDBClient:
        return dynamodb_client(self.endpoint_url)

    def __enter__(self) -> EmbeddedDynamoDB:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def dynamodb_client(endpoint_url: str) -> DynamoDBClient:
    """A client for a local DynamoDB-compatible server, with dummy credentials that reach nothing real."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_ACCESS_KEY,
    )
