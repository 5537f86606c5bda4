"""/records: the latest state of each upstream record, as the log left it."""

from __future__ import annotations

import time
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import wiring
from pullbridge import records as record_service
from pullbridge.models import Record, RecordPage
from pullbridge.openapi import responses

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get(
    "/records",
    summary="The latest state of each record of one connection's collection, in record id order",
    responses=responses(200, "A page", 404, 410),
)
def list_records(
    connection_id: Annotated[str, Query(min_length=1, max_length=64)],
    collection: Annotated[str, Query(min_length=1, max_length=64)],
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    include_deleted: Annotated[bool, Query()] = False,
) -> RecordPage:
    return record_service.list_records(
        wiring.store,
        wiring.codec,
        wiring.tenant(router),
        connection_id=connection_id,
        collection=collection,
        cursor=cursor,
        limit=limit,
        include_deleted=include_deleted,
        now=time.time(),
    )


@router.get(
    "/records/<connection_id>/<collection>/<record_id>",
    summary="One record: its latest state, or its tombstone",
    responses=responses(200, "The record", 404),
)
def get_record(
    connection_id: Annotated[str, Path(max_length=64)],
    collection: Annotated[str, Path(max_length=64)],
    record_id: Annotated[str, Path(max_length=1024)],
) -> Record:
    return record_service.get_record(
        wiring.store, wiring.tenant(router), connection_id, collection, record_id
    )
