"""The fake providers' HTTP side: a threading server that keeps quiet about clients that hang up, and the
handler that records each request (its body and headers too), checks its credentials, injects the faults
a test switched on (around a write: before it is applied, or after), and answers from the endpoint that
serves it."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.fakes.fake_errors import error_body, github_error, stripe_error
from tests.fakes.fake_http import Answer, BadRequest, FakeRequest, Write

if TYPE_CHECKING:
    from tests.fakes.provider_server import FakeProviderServer, Fault


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
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body, form, malformed = _parse_body(raw, headers.get("content-type", ""))
        fake._record(method, parts.path, query, headers, body, raw, form)
        routed = fake.route(method, parts.path)
        if routed is None:
            self._send(404, {"error": "no such endpoint"}, {})
            return
        provider, endpoint = routed
        extra = fake._request_id_header(provider)
        if not fake._authorized(provider, headers):
            self._send(401, _unauthorized_body(provider), extra)
            return
        if malformed:
            self._send(400, _invalid_json_body(provider), extra)
            return
        request = FakeRequest(query, body, form, headers, next(iter(extra.values())))
        refused = fake._refused_parameter(parts.path, request)
        if refused is not None:
            self._send(refused.status, _refused_body(provider, str(refused.parameter)), extra)
            return
        if isinstance(endpoint, Write):
            self._write(fake, provider, method, parts.path, endpoint, request, extra)
            return
        try:
            answer = endpoint(request)
        except BadRequest as exc:
            self._send(400, {"error": {"message": str(exc)}}, extra)
            return
        self._answer(
            fake, fake._take_fault(parts.path, answer.page, method, write=False), answer, provider, extra
        )

    def _write(
        self,
        fake: FakeProviderServer,
        provider: str,
        method: str,
        path: str,
        endpoint: Write,
        request: FakeRequest,
        extra: dict[str, str],
    ) -> None:
        """A write's fault is taken before it runs: a refusal answers without applying anything, unless the
        fault says it `applied`; a stall holds the answer back after the write is made (or, when not
        `applied`, drops the write after the wait)."""
        fault = fake._take_fault(path, 1, method, write=True)
        if fault is not None and not fault.applied and fault.kind in ("status", "stall"):
            if fault.kind == "stall":
                fake._stopping.wait(fault.seconds)
                fault = replace(fault, kind="status", status=504)
            self._answer(fake, fault, Answer(200, None), provider, extra)
            return
        try:
            answer = endpoint(request)
        except BadRequest as exc:
            self._send(400, {"error": {"message": str(exc)}}, extra)
            return
        self._answer(fake, fault, answer, provider, extra)

    def _answer(
        self,
        fake: FakeProviderServer,
        fault: Fault | None,
        answer: Answer,
        provider: str,
        extra: dict[str, str],
    ) -> None:
        if fault is not None and fault.kind == "status":
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            body = fault.body
            if body is None:
                body = error_body(provider, fault.status, correlation_id=next(iter(extra.values())))
            self._send(fault.status, body, extra)
            return
        if fault is not None and fault.kind == "stall":
            fake._stopping.wait(fault.seconds)
        if fault is not None and fault.kind == "malformed":
            self._send_raw(200, b'{"data": [{"id": "trunc', extra)
            return
        if answer.body is None:
            self._send_raw(answer.status, b"", {**extra, **answer.headers})
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


def _parse_body(raw: bytes, content_type: str) -> tuple[Any, list[tuple[str, str]] | None, bool]:
    """(the JSON body, the form pairs, whether the body is malformed JSON). A form-encoded body is read as
    pairs, in order; anything else that is not empty, as JSON."""
    if not raw:
        return None, None, False
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            return None, parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True), False
        except (UnicodeDecodeError, ValueError):
            return None, None, True
    try:
        return json.loads(raw), None, False
    except ValueError:
        return None, None, True


def _invalid_json_body(provider: str) -> Any:
    """How each provider answers a body it cannot parse."""
    if provider == "stripe":
        return stripe_error(400, "Invalid request: the body could not be parsed")
    if provider == "github":
        return github_error("Problems parsing JSON")
    if provider == "shopify":
        return {"errors": {"base": ["Invalid JSON"]}}
    return {"status": "error", "message": "Invalid input JSON", "category": "VALIDATION_ERROR"}


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
