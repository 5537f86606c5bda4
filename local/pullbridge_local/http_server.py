"""The local stack's HTTP server: one thread per connection, a listen queue fit for bursts, request
bodies read strictly, and every error it answers itself in the contract's error object. What a request
means (routes, functions) is the stack's: the server hands each request to `handle_http`."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# API Gateway's own payload limit; the functions enforce the product's smaller ones.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# http.server's own limit on a request or header line; a chunk-size line is held to it too.
_MAX_LINE_BYTES = 65536
_DIGITS = re.compile(r"[0-9]+")
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]+")


def error_body(error_type: str, message: str, key: str) -> bytes:
    """The contract's error object, for the errors the stack answers itself (no function ran)."""
    return json.dumps({"error": {"type": error_type, "message": message, "key": key, "data": {}}}).encode()


# The statuses http.server answers itself, as the contract's (error type, key).
_PROTOCOL_ERRORS = {
    400: ("bad_request", "malformed_request"),
    404: ("not_found", "no_route"),
    413: ("payload_too_large", "request_too_large"),
    414: ("bad_request", "uri_too_long"),
    431: ("bad_request", "headers_too_large"),
    505: ("bad_request", "http_version_not_supported"),
}
# Enough of http.server's message to say what was wrong, not the whole malformed line it quotes.
_MAX_PROTOCOL_MESSAGE_CHARS = 200


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    """The request target as sent: path and query string."""
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error_response(status: int, error_type: str, message: str, key: str) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json")], error_body(error_type, message, key))


def protocol_error(status: int, message: str | None = None) -> HttpResponse:
    """An error http.server found itself, before any route was matched, in the contract's error object."""
    phrase = BaseHTTPRequestHandler.responses.get(status, ("Error", ""))[0]
    other = ("bad_request" if status < 500 else "internal", re.sub(r"\W+", "_", phrase.lower()))
    error_type, key = _PROTOCOL_ERRORS.get(status, other)
    return error_response(status, error_type, (message or phrase)[:_MAX_PROTOCOL_MESSAGE_CHARS], key)


def http_response(result: Any) -> HttpResponse:
    """Translates a payload 2.0 function result into the HTTP response API Gateway would send."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 treats anything else as a JSON body with status 200.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = [(name, str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("set-cookie", cookie) for cookie in result.get("cookies") or []]
    return HttpResponse(int(result["statusCode"]), headers, payload)


class RequestHandling(Protocol):
    def handle_http(self, request: HttpRequest) -> HttpResponse: ...


class HttpServer(ThreadingHTTPServer):
    """One thread per connection, so a long poll never holds up another request."""

    daemon_threads = True
    # socketserver's default of 5 resets connections in a burst of a few dozen clients (a provider's
    # redelivery storm). The kernel caps this at its somaxconn.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], stack: RequestHandling) -> None:
        super().__init__(address, _RequestHandler)
        self.stack = stack

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left before its answer (a browser leaving a long poll, the console's tail) is
        normal: one line, not socketserver's traceback on stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.info("%s left before its response was sent", client_address[0])
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: HttpServer
    protocol_version = "HTTP/1.1"
    # A response's head and body go out in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (about 40 ms a request on a kept-alive connection).
    disable_nagle_algorithm = True
    # An idle keep-alive connection is closed after this, so it does not hold a thread forever.
    timeout = 60

    def do_GET(self) -> None:  # the names http.server dispatches to
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if hasattr(self, f"do_{self.command}"):
            return True
        # http.server answers a method it has no `do_` for (TRACE, CONNECT) with an HTML 501. API Gateway
        # routes it like any other request, to the 404 of a method no route has. False: already answered.
        self._serve()
        return False

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers itself (a malformed request line, oversized headers): the contract's
        error object, not its HTML page."""
        self.log_error("code %d, message %s", code, message)
        # A request line too malformed to name a version is taken for HTTP/0.9, which would get a bare
        # body; the client is owed a status line.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self.close_connection = True
        self._write(protocol_error(code, message))

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _UnreadableBody as exc:
            # Whatever is left of this body cannot be told from a next request on the connection.
            self.close_connection = True
            response = exc.response
        else:
            request = HttpRequest(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
            )
            response = self.server.stack.handle_http(request)
        self._write(response)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked_body()
        length = self._content_length()
        if length > MAX_REQUEST_BYTES:
            raise _UnreadableBody.too_large()
        body = self.rfile.read(length)
        if len(body) < length:
            raise _UnreadableBody.malformed(
                "the request body ended before its content-length", "body_too_short"
            )
        return body

    def _content_length(self) -> int:
        # Digits only: int() would also take "-1" (read to the end of the stream), "+1" and "1_0".
        values = {value.strip() for value in self.headers.get_all("content-length") or []}
        if not values:
            return 0
        value, *others = values
        if others or not _DIGITS.fullmatch(value):
            raise _UnreadableBody.malformed(
                "content-length is not one whole number", "invalid_content_length"
            )
        return int(value)

    def _read_chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        received = 0
        while True:
            size = self._chunk_size()
            if size == 0:
                self._skip_trailers()
                return b"".join(chunks)
            received += size
            if received > MAX_REQUEST_BYTES:
                raise _UnreadableBody.too_large()
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(_MAX_LINE_BYTES + 1) != b"\r\n":
                raise _UnreadableBody.malformed_chunk()
            chunks.append(chunk)

    def _chunk_size(self) -> int:
        line = self.rfile.readline(_MAX_LINE_BYTES + 1)
        # Hex digits only, before any chunk extension: int(..., 16) would also take "-1", "0x1" and "1_0".
        size = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not _HEX_DIGITS.fullmatch(size):
            raise _UnreadableBody.malformed_chunk()
        return int(size, 16)

    def _skip_trailers(self) -> None:
        """Trailers, if any, end with an empty line."""
        while True:
            line = self.rfile.readline(_MAX_LINE_BYTES + 1)
            if not line.endswith(b"\n"):
                raise _UnreadableBody.malformed_chunk()
            if not line.strip():
                return

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


class _UnreadableBody(Exception):
    """A request body that cannot be read as sent; `response` says why, in the contract's error object."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response

    @classmethod
    def too_large(cls) -> _UnreadableBody:
        return cls(
            error_response(413, "payload_too_large", "the request body is over 10 MiB", "request_too_large")
        )

    @classmethod
    def malformed(cls, message: str, key: str) -> _UnreadableBody:
        return cls(error_response(400, "bad_request", message, key))

    @classmethod
    def malformed_chunk(cls) -> _UnreadableBody:
        return cls.malformed("the chunked request body is malformed", "malformed_chunked_body")
