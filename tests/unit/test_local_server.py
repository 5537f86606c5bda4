"""The local stack's routing and response translation, as API Gateway's HTTP API does them; the
answers its HTTP server gives itself, over a raw socket, with no functions started; and the environment
it gives its functions."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from pullbridge_local.http_server import HttpRequest, HttpResponse, HttpServer, http_response
from pullbridge_local.server import LocalStack, Router
from pullbridge_local.template import HttpRoute, functions, load_template

ROUTES = [
    (HttpRoute("GET", "/events"), "Api"),
    (HttpRoute("GET", "/events/{event_id}"), "Api"),
    (HttpRoute("GET", "/events/latest"), "Latest"),
    (HttpRoute("POST", "/webhooks/{connection_id}"), "Ingest"),
    (HttpRoute("ANY", "/files/{proxy+}"), "Files"),
    (HttpRoute("GET", "/files/{proxy+}"), "FilesGet"),
]


@pytest.fixture
def router() -> Router:
    return Router(ROUTES)


def test_a_literal_path_matches_its_route(router: Router) -> None:
    match = router.match("GET", "/events")

    assert match is not None
    assert (match.route, match.function_id, match.path_parameters) == (HttpRoute("GET", "/events"), "Api", {})


def test_a_variable_segment_becomes_a_decoded_path_parameter(router: Router) -> None:
    match = router.match("POST", "/webhooks/conn%201")

    assert match is not None
    assert match.function_id == "Ingest"
    assert match.path_parameters == {"connection_id": "conn 1"}


def test_a_literal_segment_wins_over_a_variable(router: Router) -> None:
    match = router.match("GET", "/events/latest")

    assert match is not None
    assert match.function_id == "Latest"


def test_a_greedy_variable_takes_the_rest_of_the_path(router: Router) -> None:
    match = router.match("DELETE", "/files/a/b/c")

    assert match is not None
    assert match.function_id == "Files"
    assert match.path_parameters == {"proxy": "a/b/c"}


def test_a_method_specific_route_wins_over_any(router: Router) -> None:
    match = router.match("GET", "/files/a")

    assert match is not None
    assert match.function_id == "FilesGet"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/events"), ("GET", "/nope"), ("GET", "/events/a/b"), ("GET", "/files"), ("POST", "/webhooks")],
)
def test_no_route_matches_another_method_or_path(router: Router, method: str, path: str) -> None:
    assert router.match(method, path) is None


def test_a_function_response_becomes_status_headers_cookies_and_body() -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json"},
        "cookies": ["a=1; Path=/"],
        "body": '{"ok": true}',
        "isBase64Encoded": False,
    }

    assert http_response(result) == HttpResponse(
        201, [("Content-Type", "application/json"), ("set-cookie", "a=1; Path=/")], b'{"ok": true}'
    )


def test_a_base64_response_body_is_decoded() -> None:
    result = {"statusCode": 200, "body": base64.b64encode(b"\xff\x00").decode(), "isBase64Encoded": True}

    assert http_response(result).body == b"\xff\x00"


def test_a_result_without_status_code_is_a_json_200() -> None:
    assert http_response({"hello": "world"}) == HttpResponse(
        200, [("content-type", "application/json")], b'{"hello": "world"}'
    )


# --- the HTTP server's own answers ----------------------------------------------------------------------

# One more than http.server reads of a request or header line. Sent without its end of line, so that the
# server has read every byte when it answers: unread bytes at close would reset the connection first.
OVER_LONG_LINE = 65537


@pytest.fixture
def stack() -> LocalStack:
    """A stack that is never started: no tables and no functions, so every request finds no route."""
    return LocalStack(port=0, dynamodb_endpoint="http://127.0.0.1:9")


@pytest.fixture
def address(stack: LocalStack) -> Iterator[tuple[str, int]]:
    server = HttpServer(("127.0.0.1", 0), stack)
    # A short poll interval: `shutdown` waits for one.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _error_of(response: http.client.HTTPResponse, body: bytes) -> dict[str, object]:
    assert response.getheader("content-type") == "application/json"
    document = json.loads(body)
    assert set(document) == {"error"}
    assert set(document["error"]) == {"type", "message", "key", "data"}
    assert document["error"]["message"]
    error: dict[str, object] = document["error"]
    return error


def _exchange_error(address: tuple[str, int], request: bytes) -> tuple[int, str, str]:
    with socket.create_connection(address, timeout=5) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(connection)
        response.begin()
        error = _error_of(response, response.read())
    return response.status, str(error["type"]), str(error["key"])


def _raise(error: Exception) -> None:
    raise error


def test_a_client_that_leaves_before_its_answer_is_one_log_line_not_a_traceback(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    server = HttpServer(("127.0.0.1", 0), stack)
    try:
        with caplog.at_level("INFO", logger="pullbridge_local.http_server"):
            for error in (BrokenPipeError(32, "Broken pipe"), ValueError("a real bug")):
                try:
                    _raise(error)
                except (BrokenPipeError, ValueError):
                    server.handle_error(None, ("127.0.0.1", 50000))
    finally:
        server.server_close()

    assert "left before its response was sent" in caplog.text
    stderr = capsys.readouterr().err
    assert "BrokenPipeError" not in stderr
    assert "ValueError: a real bug" in stderr


def test_the_listen_queue_takes_a_burst_of_connections() -> None:
    # socketserver's default is 5: a burst of a few dozen connections gets resets.
    assert HttpServer.request_queue_size >= 128


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", (404, "not_found", "no_route"), id="trace"),
        pytest.param(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            (404, "not_found", "no_route"),
            id="connect",
        ),
        pytest.param(b"GARBAGE\r\n", (400, "bad_request", "malformed_request"), id="request-line-syntax"),
        pytest.param(b"GET / HTTP/x.y\r\n", (400, "bad_request", "malformed_request"), id="http-version"),
        pytest.param(
            b"GET / HTTP/2.0\r\n", (505, "bad_request", "http_version_not_supported"), id="http-2-version"
        ),
        pytest.param(
            b"GET /" + b"a" * (OVER_LONG_LINE - 5), (414, "bad_request", "uri_too_long"), id="uri-too-long"
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nX-Long: " + b"a" * (OVER_LONG_LINE - 8),
            (431, "bad_request", "headers_too_large"),
            id="header-line-too-long",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)),
            (431, "bad_request", "headers_too_large"),
            id="too-many-headers",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            (400, "bad_request", "invalid_content_length"),
            id="content-length-not-a-number",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            (400, "bad_request", "invalid_content_length"),
            id="content-length-negative",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            (400, "bad_request", "invalid_content_length"),
            id="content-lengths-that-differ",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
            (400, "bad_request", "body_too_short"),
            id="body-shorter-than-content-length",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nContent-Length: 10485761\r\n\r\n",
            (413, "payload_too_large", "request_too_large"),
            id="content-length-over-10-mib",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            (400, "bad_request", "malformed_chunked_body"),
            id="chunk-size-not-hex",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabcde\r\n0\r\n\r\n",
            (400, "bad_request", "malformed_chunked_body"),
            id="chunk-size-negative",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdeXX",
            (400, "bad_request", "malformed_chunked_body"),
            id="chunk-without-its-crlf",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            (400, "bad_request", "malformed_chunked_body"),
            id="chunk-cut-short",
        ),
    ],
)
def test_what_the_server_answers_itself_is_the_contracts_error_object(
    address: tuple[str, int], request_bytes: bytes, expected: tuple[int, str, str]
) -> None:
    assert _exchange_error(address, request_bytes) == expected


def test_an_unknown_method_leaves_the_connection_open(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=5) as connection:
        for _ in range(2):
            connection.sendall(b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n")
            response = http.client.HTTPResponse(connection)
            response.begin()
            assert (response.status, _error_of(response, response.read())["key"]) == (404, "no_route")


def test_a_chunked_body_with_extensions_and_trailers_is_read_whole(
    stack: LocalStack, address: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def echo(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, [("content-type", "text/plain")], request.body)

    monkeypatch.setattr(stack, "handle_http", echo)
    request = (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )

    with socket.create_connection(address, timeout=5) as connection:
        connection.sendall(request)
        response = http.client.HTTPResponse(connection)
        response.begin()
        assert (response.status, response.read()) == (200, b"hello world")


# --- the functions' environment -------------------------------------------------------------------------


def _function_environments(stack: LocalStack) -> list[dict[str, str]]:
    """The environment the stack gives each of the template's functions, without starting any."""
    # The local environment names the stack's URL, so its port must be bound, as `start` does first.
    stack._http_server = HttpServer(("127.0.0.1", 0), stack)
    try:
        return [stack._local_spec(spec).environment for spec in functions(load_template()).values()]
    finally:
        stack._http_server.server_close()
        stack._http_server = None


@pytest.mark.parametrize(("setting", "expected"), [(None, "1"), ("", "1"), ("1", "1"), ("0", "0")])
def test_private_urls_are_allowed_unless_the_environment_says_0(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, expected: str
) -> None:
    if setting is None:
        monkeypatch.delenv("PULLBRIDGE_ALLOW_PRIVATE_URLS", raising=False)
    else:
        monkeypatch.setenv("PULLBRIDGE_ALLOW_PRIVATE_URLS", setting)

    environments = _function_environments(LocalStack(port=0, dynamodb_endpoint="http://127.0.0.1:9"))

    assert environments
    assert {environment["PULLBRIDGE_ALLOW_PRIVATE_URLS"] for environment in environments} == {expected}


def test_function_environment_comes_last_in_every_function() -> None:
    extra = {
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "EVENTS_TABLE": "events-of-the-caller",
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:8",
    }
    stack = LocalStack(port=0, dynamodb_endpoint="http://127.0.0.1:9", function_environment=extra)

    environments = _function_environments(stack)

    assert environments
    for environment in environments:
        # Over the template's variables (EVENTS_TABLE) and the local stack's (DYNAMODB_ENDPOINT) alike.
        assert {name: environment[name] for name in extra} == extra
        assert environment["CURSOR_SECRET"]
