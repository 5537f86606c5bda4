"""/consumers: durable consumers of the log, their leases and their dead letters. Every route takes the
consumer's id or its name."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import wiring
from pullbridge.consumers import delivery as consumer_leases
from pullbridge.consumers import service as consumer_service
from pullbridge.consumers.models import (
    AckRequest,
    AckResult,
    Consumer,
    ConsumerCreate,
    ConsumerPage,
    ConsumerUpdate,
    DeadLetterPage,
    ExtendRequest,
    ExtendResult,
    NackRequest,
    NackResult,
    ReceiveRequest,
    ReceiveResult,
    RedriveRequest,
    RedriveResult,
    SeekRequest,
    TermRequest,
    TermResult,
)
from pullbridge.consumers.records import find_consumer
from pullbridge.openapi import responses

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

ConsumerRef = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/consumers", summary="Create a consumer", responses=responses(201, "Created", 404, 409, 413))
def create_consumer(request: Annotated[ConsumerCreate, Body()]) -> Response[Consumer]:
    consumer = consumer_service.create_consumer(wiring.consumers, wiring.tenant(router), request)
    return Response(status_code=201, body=consumer, content_type=content_types.APPLICATION_JSON)


@router.get("/consumers", summary="Consumers, newest first", responses=responses(200, "A page", 410))
def list_consumers(
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ConsumerPage:
    return consumer_service.list_consumers(
        wiring.consumers, wiring.tenant(router), cursor=cursor, limit=limit
    )


@router.get(
    "/consumers/<consumer>",
    summary="One consumer, with its pending, ack-pending and dead counts and its lag",
    responses=responses(200, "The consumer", 404),
)
def get_consumer(consumer: ConsumerRef) -> Consumer:
    return consumer_service.get_consumer(wiring.consumers, wiring.tenant(router), consumer)


@router.patch(
    "/consumers/<consumer>",
    summary="Change ack_wait_seconds, max_deliveries or max_ack_pending",
    responses=responses(200, "The consumer", 404, 409, 413),
)
def update_consumer(consumer: ConsumerRef, request: Annotated[ConsumerUpdate, Body()]) -> Consumer:
    return consumer_service.update_consumer(wiring.consumers, wiring.tenant(router), consumer, request)


@router.delete(
    "/consumers/<consumer>",
    summary="Delete a consumer, its leases and its dead letters",
    responses=responses(204, "Deleted", 404),
)
def delete_consumer(consumer: ConsumerRef) -> Response[str]:
    consumer_service.delete_consumer(wiring.consumers, wiring.tenant(router), consumer)
    return Response(status_code=204, body="")


@router.post(
    "/consumers/<consumer>/receive",
    summary="Lease a batch of events; with wait, hold until one can be delivered",
    responses=responses(200, "The deliveries (maybe none)", 404, 413),
)
def receive(consumer: ConsumerRef, request: Annotated[ReceiveRequest | None, Body()] = None) -> ReceiveResult:
    asked = request or ReceiveRequest()  # no body: the defaults, a batch of 10 without waiting
    found = find_consumer(wiring.store, wiring.tenant(router), consumer)
    return consumer_leases.receive(wiring.consumers, found, asked.max_batch_size, asked.wait)


@router.post(
    "/consumers/<consumer>/ack",
    summary="Settle leased events; an ack whose lease ran out first is reported in expired",
    responses=responses(200, "What was acked", 404, 413),
)
def ack(consumer: ConsumerRef, request: Annotated[AckRequest, Body()]) -> AckResult:
    found = find_consumer(wiring.store, wiring.tenant(router), consumer)
    return consumer_leases.ack(wiring.consumers, found, request.ack_ids)


@router.post(
    "/consumers/<consumer>/nack",
    summary="Give leased events back, to be delivered again after delay_seconds",
    responses=responses(200, "What was given back", 404, 413),
)
def nack(consumer: ConsumerRef, request: Annotated[NackRequest, Body()]) -> NackResult:
    found = find_consumer(wiring.store, wiring.tenant(router), consumer)
    return consumer_leases.nack(wiring.consumers, found, request.ack_ids, request.delay_seconds)


@router.post(
    "/consumers/<consumer>/extend",
    summary="Extend leases to run until seconds from now (a heartbeat for long work)",
    responses=responses(200, "What was extended", 404, 413),
)
def extend(consumer: ConsumerRef, request: Annotated[ExtendRequest, Body()]) -> ExtendResult:
    found = find_consumer(wiring.store, wiring.tenant(router), consumer)
    return consumer_leases.extend(wiring.consumers, found, request.ack_ids, request.seconds)


@router.post(
    "/consumers/<consumer>/term",
    summary="Never deliver these again: they go to the dead letters",
    responses=responses(200, "What was termed", 404, 413),
)
def term(consumer: ConsumerRef, request: Annotated[TermRequest, Body()]) -> TermResult:
    found = find_consumer(wiring.store, wiring.tenant(router), consumer)
    return consumer_leases.term(wiring.consumers, found, request.ack_ids, request.reason)


@router.get(
    "/consumers/<consumer>/dead-letters",
    summary="Dead letters, oldest event first, with their delivery count and reason",
    responses=responses(200, "A page", 404),
)
def list_dead_letters(
    consumer: ConsumerRef,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterPage:
    return consumer_service.list_dead_letters(
        wiring.consumers, wiring.tenant(router), consumer, cursor=cursor, limit=limit
    )


@router.post(
    "/consumers/<consumer>/dead-letters/redrive",
    summary="Put dead letters back into rotation",
    responses=responses(200, "How many went back, and how many are still dead", 404, 413),
)
def redrive(consumer: ConsumerRef, request: Annotated[RedriveRequest, Body()]) -> RedriveResult:
    return consumer_service.redrive(wiring.consumers, wiring.tenant(router), consumer, request)


@router.delete(
    "/consumers/<consumer>/dead-letters/<event_id>",
    summary="Discard one dead letter",
    responses=responses(204, "Discarded", 404),
)
def discard_dead_letter(
    consumer: ConsumerRef, event_id: Annotated[str, Path(max_length=64)]
) -> Response[str]:
    consumer_service.discard_dead_letter(wiring.consumers, wiring.tenant(router), consumer, event_id)
    return Response(status_code=204, body="")


@router.post(
    "/consumers/<consumer>/seek",
    summary="Move the position (a cursor, a time, or the log's end); what is in flight is dropped",
    responses=responses(200, "The consumer", 404, 413),
)
def seek(consumer: ConsumerRef, request: Annotated[SeekRequest, Body()]) -> Consumer:
    return consumer_service.seek(wiring.consumers, wiring.tenant(router), consumer, request)
