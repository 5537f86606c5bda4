"""What a provider fault looks like to the function's httpx client (see `fault_hooks`).

- `rate_limit`: 429 with `Retry-After: 1`, before the request reaches the provider (a refused request is
  not applied).
- `server_error`: 502 or 503 from the provider's edge, before the request reaches it; or 500 after it did
  (a write may have been applied: the product must treat its outcome as unknown).
- `timeout`: the request reaches the provider and is applied; the client's read then times out
  (`httpx.ReadTimeout`, at once rather than after the client's 20 s).
- `truncated`: the provider's answer with its body cut in half: either the connection closes short of its
  `Content-Length` (httpx raises `RemoteProtocolError`, as for a real short read), or an intermediary
  re-framed the cut body, which then arrives whole-looking and does not parse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from pullbridge_local.faults import Fault

KINDS = ("rate_limit", "server_error", "timeout", "truncated")
_RETRY_AFTER_SECONDS = "1"
_PROVIDER_SERVER_ERRORS = (500, 502, 503)
_DROPPED_HEADERS = ("content-length", "content-encoding", "transfer-encoding")


@dataclass
class ProviderAnswer:
    respond: Callable[[], httpx.Response]
    """Answers the client: returns the response, or raises what the client would."""
    details: dict[str, Any] = field(default_factory=dict)


class _ShortRead(httpx.SyncByteStream):
    """A body that ends before its `Content-Length`: the bytes that came, then the peer's close."""

    def __init__(self, received: bytes, expected: int) -> None:
        self._received = received
        self._expected = expected

    def __iter__(self) -> Iterator[bytes]:
        if self._received:
            yield self._received
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body "
            f"(received {len(self._received)} bytes, expected {self._expected})"
        )


def _sent(send: Callable[[], httpx.Response]) -> httpx.Response:
    """Sends the request for real and reads the whole answer: it has reached the provider."""
    response = send()
    try:
        response.read()
    finally:
        response.close()
    return response


def _edge_page(status: int) -> bytes:
    phrase = {502: "Bad Gateway", 503: "Service Unavailable"}[status]
    return f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>".encode()


def _rate_limited(request: httpx.Request) -> ProviderAnswer:
    def respond() -> httpx.Response:
        return httpx.Response(
            429,
            headers={"retry-after": _RETRY_AFTER_SECONDS, "content-type": "application/json"},
            json={"error": {"type": "rate_limit_error", "message": "Too many requests"}},
            request=request,
        )

    return ProviderAnswer(respond, {"status": 429, "retry_after": _RETRY_AFTER_SECONDS, "landed": False})


def _server_error(fault: Fault, request: httpx.Request, send: Callable[[], httpx.Response]) -> ProviderAnswer:
    status = _PROVIDER_SERVER_ERRORS[min(int(fault.detail * 3), 2)]
    landed = status == 500
    if landed:
        _sent(send)

    def respond() -> httpx.Response:
        if status == 500:
            return httpx.Response(
                500,
                json={"error": {"type": "api_error", "message": "Internal server error"}},
                request=request,
            )
        return httpx.Response(
            status, headers={"content-type": "text/html"}, content=_edge_page(status), request=request
        )

    return ProviderAnswer(respond, {"status": status, "landed": landed})


def _timed_out(request: httpx.Request, send: Callable[[], httpx.Response]) -> ProviderAnswer:
    _sent(send)

    def respond() -> httpx.Response:
        raise httpx.ReadTimeout("The read operation timed out", request=request)

    return ProviderAnswer(respond, {"error": "ReadTimeout", "landed": True})


def _truncated(fault: Fault, request: httpx.Request, send: Callable[[], httpx.Response]) -> ProviderAnswer:
    real = _sent(send)
    body = real.content
    cut = body[: len(body) // 2]
    headers = [
        (name, value) for name, value in real.headers.multi_items() if name.lower() not in _DROPPED_HEADERS
    ]
    short_read = fault.detail < 0.5

    def respond() -> httpx.Response:
        if short_read:
            return httpx.Response(
                real.status_code,
                headers=[*headers, ("content-length", str(len(body)))],
                stream=_ShortRead(cut, len(body)),
                request=request,
            )
        return httpx.Response(real.status_code, headers=headers, content=cut, request=request)

    details = {
        "status": real.status_code,
        "landed": True,
        "error": "RemoteProtocolError" if short_read else "short body",
        "bytes": [len(cut), len(body)],
    }
    return ProviderAnswer(respond, details)


def answer(fault: Fault, request: httpx.Request, send: Callable[[], httpx.Response]) -> ProviderAnswer:
    if fault.kind == "rate_limit":
        return _rate_limited(request)
    if fault.kind == "server_error":
        return _server_error(fault, request, send)
    if fault.kind == "timeout":
        return _timed_out(request, send)
    return _truncated(fault, request, send)
