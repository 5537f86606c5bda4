"""The API's OpenAPI 3.1 document and its Swagger UI: Powertools generates the document from the routes
and their models; this module gives each route its statuses and says what the routes alone cannot.

- Every operation lists each status it can answer, with the contract's error object for errors.
- Validation errors are 400, never Powertools' default 422 `{"detail": [...]}`: that response and its
  schemas are taken out of the generated document. (422 is only a provider's refusal of a mutation.)
- The bearer scheme is declared for every operation, except the public ones: `GET /health` and the
  webhook route, which the ingest function serves (so it is described here, not generated).

Powertools' OpenAPI models (about 40 pydantic classes, 41 ms to build) are imported only when the
document or Swagger UI is asked for, not at every cold start: the routes and their validation need none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pullbridge.models import ErrorBody, WebhookAccepted

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

TITLE = "pullbridge"
VERSION = "0.1.0"
SECURITY_SCHEME = "api_key"
_SCHEMAS = "#/components/schemas/"

ERROR_DESCRIPTIONS = {
    400: "Bad request: a parameter, the body or a cursor is invalid; `error.data.field` names it",
    401: "Unauthorized: the API key (or, for webhooks, the signature) is missing or wrong",
    404: "Not found, or another tenant's",
    409: "Conflict with the current state; `error.message` says which",
    410: "Gone: the cursor is older than the retention period",
    413: "Payload too large",
    422: "Unprocessable: the provider refused the write; `error.data` has its status, message and request id",
    429: "Rate limited: the provider answered 429; retry after `Retry-After` seconds",
    502: "Bad gateway: the provider failed or could not be reached; see the mutation's status",
    504: "Timeout: the provider did not answer in time; the mutation's status is `unknown`",
    500: "Internal error; retry later",
    503: "Storage unavailable; retry later",
}
_ALWAYS = (400, 500, 503)


def responses(
    success: int, description: str, *errors: int, public: bool = False
) -> dict[int, OpenAPIResponse]:
    """A route's `responses`: its success (with the route's return model, or no body for 204), the
    errors it names, and those any route can give (400, 500, 503, and 401 unless it is public)."""
    documented: dict[int, OpenAPIResponse] = {success: {"description": description}}
    if success == 204:
        documented[success]["content"] = {}
    statuses = {*_ALWAYS, *errors} | (set() if public else {401})
    for status in sorted(statuses):
        documented[status] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return documented


def document(app: APIGatewayHttpResolver, *, public_paths: frozenset[str]) -> str:
    """The finished document, as JSON."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    schema = app.get_openapi_schema(
        title=TITLE,
        version=VERSION,
        security_schemes={SECURITY_SCHEME: HTTPBearer(description="An API key: `Bearer pb_...`")},
        security=[{SECURITY_SCHEME: []}],
    )
    finished = finish(json.loads(schema.model_dump_json(by_alias=True, exclude_none=True)), public_paths)
    return json.dumps(finished)


def finish(schema: dict[str, Any], public_paths: frozenset[str]) -> dict[str, Any]:
    """Drop Powertools' 422, mark the public operations, add the webhook route and the links."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]  # Powertools' own; a provider's refusal (mutations) stays
            for response in operation.get("responses", {}).values():
                if response.get("content") == {}:
                    del response["content"]  # a 204: no body at all
            if path in public_paths:
                operation["security"] = []
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["WebhookAccepted"] = WebhookAccepted.model_json_schema(ref_template=_SCHEMAS + "{model}")
    schema["paths"]["/webhooks/{connection_id}"] = {"post": _webhook_operation()}
    _add_links(schema["paths"])
    return schema


# Where an operation's answer names what another operation takes (OpenAPI links): clients and API
# fuzzers then follow a created connection into its own routes instead of guessing ids.
_CONNECTION = "/connections/{connection_id}"
_SUBSCRIPTION = "/external-event-subscriptions/{subscription_id}"
_CONSUMER = "/consumers/{consumer}"
_ONE_ID = "$response.body#/id"
_FIRST_ID = "$response.body#/data/0/id"
LINKS: list[tuple[str, str, str, str, str, dict[str, Any]]] = [
    # (method, path, status) of the answer -> (method, path) it leads to, and the link's parameters
    *[
        ("post", "/connections", "201", m, _CONNECTION, {"connection_id": _ONE_ID})
        for m in ("get", "patch", "delete")
    ],
    ("post", "/connections", "201", "post", "/webhooks/{connection_id}", {"connection_id": _ONE_ID}),
    ("get", "/connections", "200", "get", _CONNECTION, {"connection_id": _FIRST_ID}),
    *[
        ("post", "/external-event-subscriptions", "201", m, _SUBSCRIPTION, {"subscription_id": _ONE_ID})
        for m in ("get", "patch", "delete")
    ],
    (
        "post",
        "/external-event-subscriptions",
        "201",
        "post",
        _SUBSCRIPTION + "/pull",
        {"subscription_id": _ONE_ID},
    ),
    ("get", "/external-event-subscriptions", "200", "get", _SUBSCRIPTION, {"subscription_id": _FIRST_ID}),
    ("post", _SUBSCRIPTION + "/pull", "202", "get", "/external-event-pulls/{pull_id}", {"pull_id": _ONE_ID}),
    ("get", "/external-event-pulls", "200", "get", "/external-event-pulls/{pull_id}", {"pull_id": _FIRST_ID}),
    ("get", "/events", "200", "get", "/events/{event_id}", {"event_id": _FIRST_ID}),
    *[
        ("post", "/consumers", "201", method, path, {"consumer": _ONE_ID})
        for method, path in (
            ("get", _CONSUMER),
            ("patch", _CONSUMER),
            ("delete", _CONSUMER),
            *(
                ("post", f"{_CONSUMER}/{action}")
                for action in ("receive", "ack", "nack", "extend", "term", "seek")
            ),
            ("get", f"{_CONSUMER}/dead-letters"),
            ("post", f"{_CONSUMER}/dead-letters/redrive"),
        )
    ],
    ("get", "/consumers", "200", "get", _CONSUMER, {"consumer": _FIRST_ID}),
    *[
        (
            "post",
            f"{_CONSUMER}/receive",
            "200",
            "post",
            f"{_CONSUMER}/{action}",
            {"consumer": "$request.path.consumer"},
        )
        for action in ("ack", "nack", "extend", "term")
    ],
]


def _add_links(paths: dict[str, Any]) -> None:
    for method, path, status, target_method, target_path, parameters in LINKS:
        target = paths[target_path][target_method]
        response = paths[path][method]["responses"][status]
        response.setdefault("links", {})[target["operationId"]] = {
            "operationId": target["operationId"],
            "parameters": parameters,
        }


def _error(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": _SCHEMAS + "ErrorBody"}}},
    }


def _webhook_operation() -> dict[str, Any]:
    return {
        "summary": "Receive a provider's webhook (served by the ingest function)",
        "description": (
            "Verified over the raw bytes with the connection's provider scheme; authenticated by that "
            "signature, not by an API key. A redelivery answers 200 and stores nothing new."
        ),
        "operationId": "receive_webhook",
        "security": [],
        "parameters": [
            {"name": "connection_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "requestBody": {
            "required": True,
            "description": "The provider's payload, exactly as it sent it",
            "content": {"application/json": {"schema": {}}},
        },
        "responses": {
            "200": {
                "description": "Stored (or already stored: `duplicates` counts the redelivered events)",
                "content": {"application/json": {"schema": {"$ref": _SCHEMAS + "WebhookAccepted"}}},
            },
            "400": _error(400, "The payload is malformed for the provider"),
            "401": _error(401, "The signature is missing, wrong or stale"),
            "404": _error(404, "No such connection, or it is archived"),
            "413": _error(413, "The body is over 1 MiB, or does not fit the log even compressed"),
            "500": _error(500),
            "503": _error(503, "Storage failed; the provider should retry"),
        },
    }


def swagger_page(document_json: str) -> str:
    """Swagger UI for the finished document, with Powertools' own page and its bundled script and styles
    (what `enable_swagger` serves), built on request instead of at every cold start."""
    from aws_lambda_powertools.event_handler import openapi
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = Path(openapi.__file__).parent / "swagger_ui"
    script = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    styles = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
    # `</` inside the embedded JSON would end the page's <script>: escaped, the JSON is the same.
    return generate_swagger_html(document_json.replace("</", "<\\/"), script, styles, "", None, False)
