"""The local stack's routing and response translation, as API Gateway's HTTP API does them. Pure."""

from __future__ import annotations

import base64

import pytest

from pullbridge_local.server import HttpResponse, Router, http_response
from pullbridge_local.template import HttpRoute

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
