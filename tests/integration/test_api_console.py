"""The console's routes in the API Lambda (`events/console.json`): served without a key, each file with
its type, every answer with the policy that lets the page run only its own files; nothing else public."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from pullbridge.console import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.support import api_event, json_body, lambda_context

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


def _get(api: ModuleType, path: str, **headers: str) -> dict[str, Any]:
    event = api_event("console.json", None, path=path)
    event["headers"].update(headers)
    response: dict[str, Any] = api.lambda_handler(event, lambda_context())
    return response


def _headers(response: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in response["headers"].items()}


def _assert_strict_policy(headers: dict[str, str]) -> None:
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_the_console_page_needs_no_key_and_carries_the_strict_policy(api: ModuleType) -> None:
    response = _get(api, "/console")

    assert response["statusCode"] == 200
    headers = _headers(response)
    assert headers["content-type"] == "text/html; charset=utf-8"
    _assert_strict_policy(headers)
    assert response["body"] == (STATIC_DIR / "index.html").read_text()


def test_the_policy_allows_no_inline_script_style_frame_or_other_origin() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(("name", "content_type"), ASSETS.items())
def test_each_asset_is_served_with_its_type_and_the_policy(
    api: ModuleType, name: str, content_type: str
) -> None:
    response = _get(api, f"/console/assets/{name}")

    assert response["statusCode"] == 200
    headers = _headers(response)
    assert headers["content-type"] == content_type
    _assert_strict_policy(headers)
    assert response["body"] == (STATIC_DIR / name).read_text()


def test_an_unchanged_file_is_a_304_by_its_etag(api: ModuleType) -> None:
    first = _get(api, "/console/assets/app.js")
    etag = _headers(first)["etag"]

    again = _get(api, "/console/assets/app.js", **{"if-none-match": etag})
    stale = _get(api, "/console/assets/app.js", **{"if-none-match": '"another"'})

    assert again["statusCode"] == 304
    assert again["body"] == ""
    _assert_strict_policy(_headers(again))
    assert stale["statusCode"] == 200


@pytest.mark.parametrize("name", ["nope.js", "index.html", "..%2F..%2Fapp.py", "__init__.py"])
def test_only_the_shipped_assets_can_be_named(api: ModuleType, name: str) -> None:
    response = _get(api, f"/console/assets/{name}")

    assert response["statusCode"] == 404
    assert json_body(response)["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/console/assets/app.js/../../events", "/console/assets/", "/consoles", "/console/events"]
)
def test_nothing_else_under_or_beside_the_console_is_public(api: ModuleType, path: str) -> None:
    assert _get(api, path)["statusCode"] == 401


def test_the_console_stays_out_of_the_openapi_document(api: ModuleType, api_key: str) -> None:
    response = api.lambda_handler(api_event("health.json", api_key, path="/openapi.json"), lambda_context())

    assert not [path for path in json_body(response)["paths"] if path.startswith("/console")]
