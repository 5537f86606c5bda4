"""Errors to HTTP, in one place, for every function's Powertools resolver."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullbridge.errors import BadRequest, NotFound, PayloadTooLarge, PullbridgeError, ValidationFailed
from pullbridge.providers.base import WebhookRequest

MAX_API_BODY_BYTES = 256 * 1024
"""An API request body's limit: every stored object is far smaller (see `models`), so a larger body
can only be a mistake, and is refused before it is parsed."""
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def error_response(error: PullbridgeError, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=error.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.to_body()),
        headers=headers if headers is not None else error.response_headers(),
    )


def _field_of(location: tuple[Any, ...]) -> str:
    # Powertools reports ("query", "limit") or ("body", "webhook_secrets", 0): the first part is the source.
    parts = [str(part) for part in location[1:]] or [str(part) for part in location]
    return ".".join(parts)


def validation_error(errors: list[dict[str, Any]]) -> ValidationFailed:
    fields = [
        {"field": _field_of(tuple(error.get("loc", ()))), "message": error.get("msg", "")} for error in errors
    ]
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in fields) or "the request is invalid"
    first = fields[0]["field"] if fields else None
    return ValidationFailed(summary, data={"field": first, "fields": fields})


def log_failure(logger: Logger, error: PullbridgeError) -> None:
    """A 5xx is ours to look into; a 4xx is the caller's, and counted by metrics, not logged."""
    if error.status_code >= 500:
        logger.warning("request failed", extra={"error_key": error.key, "error_type": error.error_type})


def install_error_handlers(app: APIGatewayHttpResolver, logger: Logger, *, validation: bool) -> None:
    """Map every failure to the contract's error object. A 5xx never carries a trace or a secret."""

    @app.exception_handler(PullbridgeError)  # type: ignore[untyped-decorator]
    def _known(error: PullbridgeError) -> Response[str]:
        log_failure(logger, error)
        return error_response(error)

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return error_response(NotFound("no such route", key="no_route"))

    if validation:
        from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

        @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
        def _invalid(error: RequestValidationError) -> Response[str]:
            return error_response(validation_error(list(error.errors())))

        from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType

        @app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
        def _unsupported(_: RequestUnsupportedContentType) -> Response[str]:
            return error_response(_unsupported_content_type())

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return error_response(PullbridgeError("internal error; retry later"))


def webhook_request(event: APIGatewayProxyEventV2, public_base_url: str | None) -> WebhookRequest:
    """The delivery as the provider sent it: raw body bytes, lower-case headers, and the full URL
    it called (HubSpot signs the URL)."""
    body = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode()
    base = public_base_url or f"https://{event.request_context.domain_name}"
    query = event.raw_query_string
    url = f"{base.rstrip('/')}{event.raw_path}" + (f"?{query}" if query else "")
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    return WebhookRequest(method=event.request_context.http.method, url=url, headers=headers, body=body)


def request_base_url(event: APIGatewayProxyEventV2, public_base_url: str | None) -> str:
    return public_base_url or f"https://{event.request_context.domain_name}"


def _unsupported_content_type() -> BadRequest:
    return BadRequest(
        "content-type: the API takes JSON bodies (application/json, UTF-8)",
        key="unsupported_content_type",
        data={"field": "content-type"},
    )


def screen_json_body(event: APIGatewayProxyEventV2) -> None:
    """Refuse, before any parsing, a body the API cannot take: over `MAX_API_BODY_BYTES` (413), not
    JSON by its content type, or not UTF-8 (400). Left to Powertools, these become a 500 (undecodable
    bytes), a 415 of another shape, or a form parsed as if it were the JSON object."""
    if event.request_context.http.method.upper() not in _METHODS_WITH_BODY or not event.body:
        return
    try:
        raw = base64.b64decode(event.body, validate=True) if event.is_base64_encoded else event.body.encode()
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise BadRequest("body: not valid UTF-8", key="invalid_encoding", data={"field": "body"}) from exc
    if len(raw) > MAX_API_BODY_BYTES:
        raise PayloadTooLarge(
            f"body: over {MAX_API_BODY_BYTES} bytes",
            data={"field": "body", "limit_bytes": MAX_API_BODY_BYTES},
        )
    media_type, _, parameters = (event.headers.get("content-type") or "application/json").partition(";")
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (p.partition("=") for p in parameters.split(";"))
            if name.strip().lower() == "charset"
        ),
        "utf-8",
    )
    if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise _unsupported_content_type()
    try:
        raw.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest("body: not valid UTF-8", key="invalid_encoding", data={"field": "body"}) from exc


def parse_request_json(text: str) -> Any:
    """Powertools' `json_body_deserializer`: JSON as RFC 8259 has it, or a 400 that says why."""
    try:
        return json.loads(text, parse_constant=_no_json_constant)
    except RecursionError as exc:
        raise BadRequest(
            "body: JSON nested too deeply", key="malformed_json", data={"field": "body"}
        ) from exc
    except ValueError as exc:
        raise BadRequest(
            f"body: not valid JSON: {exc}"[:300], key="malformed_json", data={"field": "body"}
        ) from exc


def _no_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class GatedResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver with a gate that every request passes before its route validates
    anything: `gate` authenticates and screens the body, raising the contract's errors.

    Powertools runs request validation before any middleware, so a middleware cannot do this: an
    unauthenticated request would hear about its body before it heard 401.
    """

    def __init__(
        self, gate: Callable[[APIGatewayProxyEventV2], None], logger: Logger, **options: Any
    ) -> None:
        super().__init__(**options)
        self._gate = gate
        self._logger = logger

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            self._gate(APIGatewayProxyEventV2(dict(event)))
        except PullbridgeError as error:
            self.clear_context()  # type: ignore[no-untyped-call]
            log_failure(self._logger, error)
            return {
                "statusCode": error.status_code,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps(error.to_body()),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)
