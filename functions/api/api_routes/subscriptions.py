"""/external-event-subscriptions: a collection's scheduled full scans, and starting one now."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import wiring
from pullbridge.openapi import responses
from pullbridge.pulls import service as pulls
from pullbridge.pulls.models import (
    Pull,
    Subscription,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionUpdate,
)

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/external-event-subscriptions",
    summary="Subscribe to a collection's scheduled full scans",
    responses=responses(201, "Created", 404, 409, 413),
)
def create_subscription(request: Annotated[SubscriptionCreate, Body()]) -> Response[Subscription]:
    subscription = pulls.create_subscription(wiring.store, wiring.tenant(router), request)
    return Response(status_code=201, body=subscription.public(), content_type=content_types.APPLICATION_JSON)


@router.get(
    "/external-event-subscriptions",
    summary="Subscriptions, newest first",
    responses=responses(200, "A page", 410),
)
def list_subscriptions(
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SubscriptionPage:
    return pulls.list_subscriptions(
        wiring.store, wiring.codec, wiring.tenant(router), cursor=cursor, limit=limit
    )


@router.get(
    "/external-event-subscriptions/<subscription_id>",
    summary="One subscription",
    responses=responses(200, "The subscription", 404),
)
def get_subscription(subscription_id: Annotated[str, Path(max_length=64)]) -> Subscription:
    return pulls.get_subscription(wiring.store, wiring.tenant(router), subscription_id).public()


@router.patch(
    "/external-event-subscriptions/<subscription_id>",
    summary="Change the interval or pause",
    responses=responses(200, "The updated subscription", 404, 409, 413),
)
def update_subscription(
    subscription_id: Annotated[str, Path(max_length=64)], request: Annotated[SubscriptionUpdate, Body()]
) -> Subscription:
    return pulls.update_subscription(wiring.store, wiring.tenant(router), subscription_id, request).public()


@router.delete(
    "/external-event-subscriptions/<subscription_id>",
    summary="Stop pulling; events stay",
    responses=responses(204, "Deleted", 404),
)
def delete_subscription(subscription_id: Annotated[str, Path(max_length=64)]) -> Response[str]:
    pulls.delete_subscription(wiring.store, wiring.tenant(router), subscription_id)
    return Response(status_code=204, body="")


@router.post(
    "/external-event-subscriptions/<subscription_id>/pull",
    summary="Start a full scan now: 202 with the pull, or 409 with the running pull's id",
    responses=responses(202, "The pull, queued", 404, 409),
)
def start_pull(subscription_id: Annotated[str, Path(max_length=64)]) -> Response[Pull]:
    pull = pulls.trigger_pull(wiring.store, wiring.tenant(router), subscription_id)
    wiring.launcher.launch(pull.id)
    return Response(status_code=202, body=pull.public(), content_type=content_types.APPLICATION_JSON)
