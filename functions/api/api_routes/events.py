"""GET /events (paged by cursor, with long polling) and GET /events/{event_id}."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import wiring
from pullbridge.events import EventFilters
from pullbridge.models import Event, EventPage, EventSource
from pullbridge.openapi import responses
from pullbridge.providers import ProviderName

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get(
    "/events",
    summary="The tenant's events, oldest first, paged by cursor, with long polling",
    responses=responses(200, "A page of events", 410),
)
def list_events(
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    connection_id: Annotated[str | None, Query(max_length=64)] = None,
    provider: Annotated[ProviderName | None, Query()] = None,
    collection: Annotated[str | None, Query(max_length=100)] = None,
    type: Annotated[str | None, Query(max_length=200)] = None,
    source: Annotated[EventSource | None, Query()] = None,
    record_id: Annotated[
        str | None,
        Query(max_length=256, description="One record's events; with connection_id, its log is read"),
    ] = None,
    wait: Annotated[float, Query(ge=0, le=20)] = 0,
) -> EventPage:
    filters = EventFilters(connection_id, provider, collection, type, source, record_id)
    page = wiring.reader.list_events(wiring.tenant(router), filters, cursor=cursor, limit=limit, wait=wait)
    return EventPage.model_validate(page, from_attributes=True)


@router.get("/events/<event_id>", summary="One event", responses=responses(200, "The event", 404))
def get_event(event_id: Annotated[str, Path(max_length=64)]) -> Event:
    return Event.model_validate(wiring.reader.get_event(wiring.tenant(router), event_id))
