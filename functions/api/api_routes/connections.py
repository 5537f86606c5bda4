"""/connections: create, list, read, update and archive a tenant's connections."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import wiring
from pullbridge import connections as connection_service
from pullbridge.models import Connection, ConnectionCreate, ConnectionPage, ConnectionUpdate
from pullbridge.openapi import responses

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/connections",
    summary="Create a connection; answers 201 without its secrets",
    responses=responses(201, "Created", 409, 413),
)
def create_connection(request: Annotated[ConnectionCreate, Body()]) -> Response[Connection]:
    connection = connection_service.create_connection(
        wiring.store, wiring.settings, wiring.tenant(router), request
    )
    return Response(
        status_code=201,
        body=connection_service.public(wiring.store, connection, wiring.base_url(router)),
        content_type=content_types.APPLICATION_JSON,
    )


@router.get(
    "/connections", summary="Active connections, newest first", responses=responses(200, "A page", 410)
)
def list_connections(
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ConnectionPage:
    return connection_service.list_connections(
        wiring.store,
        wiring.codec,
        wiring.tenant(router),
        cursor=cursor,
        limit=limit,
        webhook_base_url=wiring.base_url(router),
    )


@router.get(
    "/connections/<connection_id>", summary="One connection", responses=responses(200, "The connection", 404)
)
def get_connection(connection_id: Annotated[str, Path(max_length=64)]) -> Connection:
    connection = connection_service.get_connection(wiring.store, wiring.tenant(router), connection_id)
    return connection_service.public(wiring.store, connection, wiring.base_url(router))


@router.patch(
    "/connections/<connection_id>",
    summary="Rename, rotate secrets, change credentials or settings",
    responses=responses(200, "The updated connection", 404, 409, 413),
)
def update_connection(
    connection_id: Annotated[str, Path(max_length=64)], request: Annotated[ConnectionUpdate, Body()]
) -> Connection:
    updated = connection_service.update_connection(
        wiring.store, wiring.settings, wiring.tenant(router), connection_id, request
    )
    return connection_service.public(wiring.store, updated, wiring.base_url(router))


@router.delete(
    "/connections/<connection_id>",
    summary="Archive: its webhooks get 404, its events stay",
    responses=responses(200, "The archived connection", 404, 409),
)
def archive_connection(connection_id: Annotated[str, Path(max_length=64)]) -> Connection:
    archived = connection_service.archive_connection(wiring.store, wiring.tenant(router), connection_id)
    return connection_service.public(wiring.store, archived, wiring.base_url(router))
