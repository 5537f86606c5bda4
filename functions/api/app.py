"""API: every route but the webhooks, the console included. Wiring only; the work is in `pullbridge`.

This module holds the resolver: the API-key gate, validation, error handlers, the OpenAPI document, the
public liveness route and the Lambda handler. The routes are in `api_routes`, a router per resource, and
the settings, clients and services they share in `api_routes.wiring`.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from api_routes import connections, consumers, events, mutations, pulls, records, subscriptions
from api_routes import console as console_routes
from api_routes.wiring import logger, metrics, store
from pullbridge import console
from pullbridge.auth import authenticate
from pullbridge.http import GatedResolver, install_error_handlers, parse_request_json, screen_json_body
from pullbridge.models import Health
from pullbridge.openapi import document, responses, swagger_page

PUBLIC_ROUTES = frozenset({"/health"})


def admit(request: APIGatewayProxyEventV2) -> None:
    """Before any route validates anything: the API key (401), then the body's type and size. The
    console's page and assets need no key: the page signs in in the browser."""
    if request.raw_path not in PUBLIC_ROUTES and not console.is_console_path(request.raw_path):
        tenant_id = authenticate(store, request.headers.get("authorization"))
        app.append_context(tenant_id=tenant_id)  # type: ignore[no-untyped-call]
        logger.append_keys(tenant_id=tenant_id)
    screen_json_body(request)


app = GatedResolver(admit, logger, enable_validation=True, json_body_deserializer=parse_request_json)
install_error_handlers(app, logger, validation=True)


@app.get(
    "/health",
    summary="Liveness; with deep=true, readiness: DynamoDB answers too. Needs no API key",
    responses=responses(200, "Alive (and, with deep=true, DynamoDB answers)", public=True),
)
def health(deep: Annotated[bool, Query()] = False) -> Health:
    if deep:
        store.check_reachable()
        return Health(status="ok", checks={"dynamodb": "ok"})
    return Health(status="ok")


@app.get("/openapi.json", summary="This API's OpenAPI 3.1 document", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=_openapi_schema())


@app.get("/docs", summary="Swagger UI for this API", include_in_schema=False)
def swagger_ui() -> Response[str]:
    """Behind the key like every route but /health and the console."""
    return Response(status_code=200, content_type="text/html", body=swagger_page(_openapi_schema()))


@cache
def _openapi_schema() -> str:
    """Generated once per instance: the routes cannot change while it lives."""
    return document(app, public_paths=PUBLIC_ROUTES)


# Added in the order the routes have always had: Powertools tries them, and the document lists them, in
# the order they are added.
app.include_router(console_routes.router)
app.include_router(events.router)
app.include_router(connections.router)
app.include_router(subscriptions.router)
app.include_router(pulls.router)
app.include_router(records.router)
app.include_router(consumers.router)
app.include_router(mutations.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
