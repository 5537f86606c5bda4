"""Errors to HTTP, in one place, for every function's Powertools resolver."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from pullbridge.errors import NotFound, PullbridgeError, ValidationFailed
from pullbridge.providers.base import WebhookRequest


def error_response(error: PullbridgeError, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=error.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.to_body()),
        headers=headers,
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


def install_error_handlers(app: APIGatewayHttpResolver, logger: Logger, *, validation: bool) -> None:
    """Map every failure to the contract's error object. A 5xx never carries a trace or a secret."""

    @app.exception_handler(PullbridgeError)  # type: ignore[untyped-decorator]
    def _known(error: PullbridgeError) -> Response[str]:
        if error.status_code >= 500:
            logger.warning("request failed", extra={"error_key": error.key, "error_type": error.error_type})
        return error_response(error)

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return error_response(NotFound("no such route", key="no_route"))

    if validation:
        from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

        @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
        def _invalid(error: RequestValidationError) -> Response[str]:
            return error_response(validation_error(list(error.errors())))

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
