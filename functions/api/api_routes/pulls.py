"""/external-event-pulls: the records of the pulls, scheduled or started."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import wiring
from pullbridge.openapi import responses
from pullbridge.providers import ProviderName
from pullbridge.pulls import service as pulls
from pullbridge.pulls.models import Pull, PullPage, PullStatus

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get(
    "/external-event-pulls", summary="Pull records, newest first", responses=responses(200, "A page", 410)
)
def list_pulls(
    external_event_subscription_id: Annotated[str | None, Query(max_length=64)] = None,
    connection_id: Annotated[str | None, Query(max_length=64)] = None,
    provider: Annotated[ProviderName | None, Query()] = None,
    status: Annotated[PullStatus | None, Query()] = None,
    start_from: Annotated[datetime | None, Query(alias="from")] = None,
    start_to: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PullPage:
    filters = pulls.PullFilters(
        external_event_subscription_id, connection_id, provider, status, start_from, start_to
    )
    return pulls.list_pulls(
        wiring.store, wiring.codec, wiring.tenant(router), filters, cursor=cursor, limit=limit
    )


@router.get(
    "/external-event-pulls/<pull_id>", summary="One pull record", responses=responses(200, "The pull", 404)
)
def get_pull(pull_id: Annotated[str, Path(max_length=64)]) -> Pull:
    return pulls.get_pull(wiring.store, wiring.tenant(router), pull_id).public()
