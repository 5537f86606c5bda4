"""The fake providers' HTTP side: a threading server that keeps quiet about clients that hang up, and the
handler that records each request, checks its credentials, injects the faults a test switched on, and
answers from the endpoint that serves it."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.fake_http import Answer, BadRequest, FakeRequest

if TYPE_CHECKING:
    from tests.fakes.provider_server import FakeProviderServer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a stalled answer (the timeout tests) hangs up: expected, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeHandler(BaseHTTPRequestHandler):
    fake: FakeProviderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET", None)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(
                400, {"status": "error", "message": "Invalid input JSON", "category": "VALIDATION_ERROR"}, {}
            )
            return
        self._serve("POST", body)

    def _serve(self, method: str, body: Any) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake._record(method, parts.path, query, headers, body)
        routed = fake.route(method, parts.path)
        if routed is None:
            self._send(404, {"error": "no such endpoint"}, {})
            return
        provider, endpoint = routed
        extra = fake._request_id_header(provider)
        if not fake._authorized(provider, headers):
            self._send(401, _unauthorized_body(provider), extra)
            return
        request = FakeRequest(query, body)
        refused = fake._refused_parameter(parts.path, request)
        if refused is not None:
            self._send(refused.status, _refused_body(provider, str(refused.parameter)), extra)
            return
        try:
            answer = endpoint(request)
        except BadRequest as exc:
            self._send(400, {"error": {"message": str(exc)}}, extra)
            return
        self._answer(fake, parts.path, answer, extra)

    def _answer(self, fake: FakeProviderServer, path: str, answer: Answer, extra: dict[str, str]) -> None:
        fault = fake._take_fault(path, answer.page)
        if fault is not None and fault.kind == "status":
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            self._send(fault.status, {"error": {"message": f"injected {fault.status}"}}, extra)
            return
        if fault is not None and fault.kind == "stall":
            fake._stopping.wait(fault.seconds)
        if fault is not None and fault.kind == "malformed":
            self._send_raw(200, b'{"data": [{"id": "trunc', extra)
            return
        self._send(answer.status, answer.body, {**extra, **answer.headers})

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self._send_raw(status, json.dumps(body).encode(), headers)

    def _send_raw(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. it timed out on a stall)


def _unauthorized_body(provider: str) -> Any:
    if provider == "stripe":
        return {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
    if provider == "github":
        return {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
    if provider == "shopify":
        return {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    if provider == "hubspot":
        return {
            "status": "error",
            "message": "Authentication credentials not found.",
            "category": "INVALID_AUTHENTICATION",
        }
    return {"error": "unauthorized"}


def _refused_body(provider: str, parameter: str) -> Any:
    """How each provider says it does not take a parameter."""
    if provider == "stripe":
        message = f"Received unknown parameter: {parameter}"
        return {"error": {"type": "invalid_request_error", "param": parameter, "message": message}}
    if provider == "github":
        return {"message": "Validation Failed", "errors": [{"field": parameter, "code": "invalid"}]}
    if provider == "shopify":
        return {"errors": {parameter: ["is not a valid filter"]}}
    if provider == "hubspot":
        return {"status": "error", "message": f"Invalid input: {parameter}", "category": "VALIDATION_ERROR"}
    return {"error": f"unknown parameter {parameter}"}
