"""API: every route but the webhooks, the console included. Wiring only; the work is in `pullbridge`."""

from __future__ import annotations

import time
import warnings
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullbridge import connections as connection_service
from pullbridge import console
from pullbridge import records as record_service
from pullbridge.auth import authenticate
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
from pullbridge.cursors import CursorCodec
from pullbridge.events import EventFilters, EventReader
from pullbridge.http import (
    GatedResolver,
    install_error_handlers,
    parse_request_json,
    request_base_url,
    screen_json_body,
)
from pullbridge.launch import PullLauncher
from pullbridge.models import (
    Connection,
    ConnectionCreate,
    ConnectionPage,
    ConnectionUpdate,
    Event,
    EventPage,
    EventSource,
    Health,
    Record,
    RecordPage,
)
from pullbridge.mutations import service as mutation_service
from pullbridge.mutations.models import Mutation, MutationCreate, MutationPage, MutationStatus
from pullbridge.observability import ConsumerMetrics
from pullbridge.openapi import document, responses, swagger_page
from pullbridge.providers import ProviderName
from pullbridge.pulls import service as pulls
from pullbridge.pulls.models import (
    Pull,
    PullPage,
    PullStatus,
    Subscription,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionUpdate,
)
from pullbridge.secrets import fetch_secret
from pullbridge.settings import ApiSettings, load_settings
from pullbridge.storage import Store, dynamodb_client

settings = load_settings(ApiSettings)
logger = Logger()
metrics = Metrics()
# A request with nothing to count is normal, not worth a warning in every log.
warnings.filterwarnings("ignore", message="No application metrics to publish")
dynamodb = dynamodb_client(settings.dynamodb_endpoint)
store = Store(dynamodb, settings)
codec = CursorCodec(settings.cursor_key(fetch_secret))
reader = EventReader(store, codec, write_deadline_seconds=settings.write_deadline_seconds)
launcher = PullLauncher(settings.puller_function_name)
consumers = consumer_leases.Consumers(store, codec, reader, observer=ConsumerMetrics(metrics))
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


def _tenant() -> str:
    return str(app.context["tenant_id"])


def _base_url() -> str:
    return request_base_url(app.current_event, settings.public_base_url)


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


@app.get("/console", summary="The console: a web page that signs in with an API key", include_in_schema=False)
def console_page() -> Response[str]:
    return console.respond(console.page(), app.current_event.headers.get("if-none-match"))


@app.get("/console/assets/<name>", summary="The console's scripts, styles and icon", include_in_schema=False)
def console_asset(name: Annotated[str, Path(max_length=100)]) -> Response[str]:
    return console.respond(console.asset(name), app.current_event.headers.get("if-none-match"))


@cache
def _openapi_schema() -> str:
    """Generated once per instance: the routes cannot change while it lives."""
    return document(app, public_paths=PUBLIC_ROUTES)


@app.get(
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
    page = reader.list_events(_tenant(), filters, cursor=cursor, limit=limit, wait=wait)
    return EventPage.model_validate(page, from_attributes=True)


@app.get("/events/<event_id>", summary="One event", responses=responses(200, "The event", 404))
def get_event(event_id: Annotated[str, Path(max_length=64)]) -> Event:
    return Event.model_validate(reader.get_event(_tenant(), event_id))


@app.post(
    "/connections",
    summary="Create a connection; answers 201 without its secrets",
    responses=responses(201, "Created", 409, 413),
)
def create_connection(request: Annotated[ConnectionCreate, Body()]) -> Response[Connection]:
    connection = connection_service.create_connection(store, settings, _tenant(), request)
    return Response(
        status_code=201,
        body=connection_service.public(store, connection, _base_url()),
        content_type=content_types.APPLICATION_JSON,
    )


@app.get("/connections", summary="Active connections, newest first", responses=responses(200, "A page", 410))
def list_connections(
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ConnectionPage:
    return connection_service.list_connections(
        store, codec, _tenant(), cursor=cursor, limit=limit, webhook_base_url=_base_url()
    )


@app.get(
    "/connections/<connection_id>", summary="One connection", responses=responses(200, "The connection", 404)
)
def get_connection(connection_id: Annotated[str, Path(max_length=64)]) -> Connection:
    connection = connection_service.get_connection(store, _tenant(), connection_id)
    return connection_service.public(store, connection, _base_url())


@app.patch(
    "/connections/<connection_id>",
    summary="Rename, rotate secrets, change credentials or settings",
    responses=responses(200, "The updated connection", 404, 409, 413),
)
def update_connection(
    connection_id: Annotated[str, Path(max_length=64)], request: Annotated[ConnectionUpdate, Body()]
) -> Connection:
    updated = connection_service.update_connection(store, settings, _tenant(), connection_id, request)
    return connection_service.public(store, updated, _base_url())


@app.delete(
    "/connections/<connection_id>",
    summary="Archive: its webhooks get 404, its events stay",
    responses=responses(200, "The archived connection", 404, 409),
)
def archive_connection(connection_id: Annotated[str, Path(max_length=64)]) -> Connection:
    archived = connection_service.archive_connection(store, _tenant(), connection_id)
    return connection_service.public(store, archived, _base_url())


@app.post(
    "/external-event-subscriptions",
    summary="Subscribe to a collection's scheduled full scans",
    responses=responses(201, "Created", 404, 409, 413),
)
def create_subscription(request: Annotated[SubscriptionCreate, Body()]) -> Response[Subscription]:
    subscription = pulls.create_subscription(store, _tenant(), request)
    return Response(status_code=201, body=subscription.public(), content_type=content_types.APPLICATION_JSON)


@app.get(
    "/external-event-subscriptions",
    summary="Subscriptions, newest first",
    responses=responses(200, "A page", 410),
)
def list_subscriptions(
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SubscriptionPage:
    return pulls.list_subscriptions(store, codec, _tenant(), cursor=cursor, limit=limit)


@app.get(
    "/external-event-subscriptions/<subscription_id>",
    summary="One subscription",
    responses=responses(200, "The subscription", 404),
)
def get_subscription(subscription_id: Annotated[str, Path(max_length=64)]) -> Subscription:
    return pulls.get_subscription(store, _tenant(), subscription_id).public()


@app.patch(
    "/external-event-subscriptions/<subscription_id>",
    summary="Change the interval or pause",
    responses=responses(200, "The updated subscription", 404, 409, 413),
)
def update_subscription(
    subscription_id: Annotated[str, Path(max_length=64)], request: Annotated[SubscriptionUpdate, Body()]
) -> Subscription:
    return pulls.update_subscription(store, _tenant(), subscription_id, request).public()


@app.delete(
    "/external-event-subscriptions/<subscription_id>",
    summary="Stop pulling; events stay",
    responses=responses(204, "Deleted", 404),
)
def delete_subscription(subscription_id: Annotated[str, Path(max_length=64)]) -> Response[str]:
    pulls.delete_subscription(store, _tenant(), subscription_id)
    return Response(status_code=204, body="")


@app.post(
    "/external-event-subscriptions/<subscription_id>/pull",
    summary="Start a full scan now: 202 with the pull, or 409 with the running pull's id",
    responses=responses(202, "The pull, queued", 404, 409),
)
def start_pull(subscription_id: Annotated[str, Path(max_length=64)]) -> Response[Pull]:
    pull = pulls.trigger_pull(store, _tenant(), subscription_id)
    launcher.launch(pull.id)
    return Response(status_code=202, body=pull.public(), content_type=content_types.APPLICATION_JSON)


@app.get(
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
    return pulls.list_pulls(store, codec, _tenant(), filters, cursor=cursor, limit=limit)


@app.get(
    "/external-event-pulls/<pull_id>", summary="One pull record", responses=responses(200, "The pull", 404)
)
def get_pull(pull_id: Annotated[str, Path(max_length=64)]) -> Pull:
    return pulls.get_pull(store, _tenant(), pull_id).public()


@app.get(
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
        store,
        codec,
        _tenant(),
        connection_id=connection_id,
        collection=collection,
        cursor=cursor,
        limit=limit,
        include_deleted=include_deleted,
        now=time.time(),
    )


@app.get(
    "/records/<connection_id>/<collection>/<record_id>",
    summary="One record: its latest state, or its tombstone",
    responses=responses(200, "The record", 404),
)
def get_record(
    connection_id: Annotated[str, Path(max_length=64)],
    collection: Annotated[str, Path(max_length=64)],
    record_id: Annotated[str, Path(max_length=1024)],
) -> Record:
    return record_service.get_record(store, _tenant(), connection_id, collection, record_id)


# --- consumers: every route takes the consumer's id or its name ---------------------------------------

ConsumerRef = Annotated[str, Path(min_length=1, max_length=64)]


@app.post("/consumers", summary="Create a consumer", responses=responses(201, "Created", 404, 409, 413))
def create_consumer(request: Annotated[ConsumerCreate, Body()]) -> Response[Consumer]:
    consumer = consumer_service.create_consumer(consumers, _tenant(), request)
    return Response(status_code=201, body=consumer, content_type=content_types.APPLICATION_JSON)


@app.get("/consumers", summary="Consumers, newest first", responses=responses(200, "A page", 410))
def list_consumers(
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ConsumerPage:
    return consumer_service.list_consumers(consumers, _tenant(), cursor=cursor, limit=limit)


@app.get(
    "/consumers/<consumer>",
    summary="One consumer, with its pending, ack-pending and dead counts and its lag",
    responses=responses(200, "The consumer", 404),
)
def get_consumer(consumer: ConsumerRef) -> Consumer:
    return consumer_service.get_consumer(consumers, _tenant(), consumer)


@app.patch(
    "/consumers/<consumer>",
    summary="Change ack_wait_seconds, max_deliveries or max_ack_pending",
    responses=responses(200, "The consumer", 404, 409, 413),
)
def update_consumer(consumer: ConsumerRef, request: Annotated[ConsumerUpdate, Body()]) -> Consumer:
    return consumer_service.update_consumer(consumers, _tenant(), consumer, request)


@app.delete(
    "/consumers/<consumer>",
    summary="Delete a consumer, its leases and its dead letters",
    responses=responses(204, "Deleted", 404),
)
def delete_consumer(consumer: ConsumerRef) -> Response[str]:
    consumer_service.delete_consumer(consumers, _tenant(), consumer)
    return Response(status_code=204, body="")


@app.post(
    "/consumers/<consumer>/receive",
    summary="Lease a batch of events; with wait, hold until one can be delivered",
    responses=responses(200, "The deliveries (maybe none)", 404, 413),
)
def receive(consumer: ConsumerRef, request: Annotated[ReceiveRequest | None, Body()] = None) -> ReceiveResult:
    asked = request or ReceiveRequest()  # no body: the defaults, a batch of 10 without waiting
    found = find_consumer(store, _tenant(), consumer)
    return consumer_leases.receive(consumers, found, asked.max_batch_size, asked.wait)


@app.post(
    "/consumers/<consumer>/ack",
    summary="Settle leased events; an ack whose lease ran out first is reported in expired",
    responses=responses(200, "What was acked", 404, 413),
)
def ack(consumer: ConsumerRef, request: Annotated[AckRequest, Body()]) -> AckResult:
    return consumer_leases.ack(consumers, find_consumer(store, _tenant(), consumer), request.ack_ids)


@app.post(
    "/consumers/<consumer>/nack",
    summary="Give leased events back, to be delivered again after delay_seconds",
    responses=responses(200, "What was given back", 404, 413),
)
def nack(consumer: ConsumerRef, request: Annotated[NackRequest, Body()]) -> NackResult:
    found = find_consumer(store, _tenant(), consumer)
    return consumer_leases.nack(consumers, found, request.ack_ids, request.delay_seconds)


@app.post(
    "/consumers/<consumer>/extend",
    summary="Extend leases to run until seconds from now (a heartbeat for long work)",
    responses=responses(200, "What was extended", 404, 413),
)
def extend(consumer: ConsumerRef, request: Annotated[ExtendRequest, Body()]) -> ExtendResult:
    found = find_consumer(store, _tenant(), consumer)
    return consumer_leases.extend(consumers, found, request.ack_ids, request.seconds)


@app.post(
    "/consumers/<consumer>/term",
    summary="Never deliver these again: they go to the dead letters",
    responses=responses(200, "What was termed", 404, 413),
)
def term(consumer: ConsumerRef, request: Annotated[TermRequest, Body()]) -> TermResult:
    found = find_consumer(store, _tenant(), consumer)
    return consumer_leases.term(consumers, found, request.ack_ids, request.reason)


@app.get(
    "/consumers/<consumer>/dead-letters",
    summary="Dead letters, oldest event first, with their delivery count and reason",
    responses=responses(200, "A page", 404),
)
def list_dead_letters(
    consumer: ConsumerRef,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterPage:
    return consumer_service.list_dead_letters(consumers, _tenant(), consumer, cursor=cursor, limit=limit)


@app.post(
    "/consumers/<consumer>/dead-letters/redrive",
    summary="Put dead letters back into rotation",
    responses=responses(200, "How many went back, and how many are still dead", 404, 413),
)
def redrive(consumer: ConsumerRef, request: Annotated[RedriveRequest, Body()]) -> RedriveResult:
    return consumer_service.redrive(consumers, _tenant(), consumer, request)


@app.delete(
    "/consumers/<consumer>/dead-letters/<event_id>",
    summary="Discard one dead letter",
    responses=responses(204, "Discarded", 404),
)
def discard_dead_letter(
    consumer: ConsumerRef, event_id: Annotated[str, Path(max_length=64)]
) -> Response[str]:
    consumer_service.discard_dead_letter(consumers, _tenant(), consumer, event_id)
    return Response(status_code=204, body="")


@app.post(
    "/consumers/<consumer>/seek",
    summary="Move the position (a cursor, a time, or the log's end); what is in flight is dropped",
    responses=responses(200, "The consumer", 404, 413),
)
def seek(consumer: ConsumerRef, request: Annotated[SeekRequest, Body()]) -> Consumer:
    return consumer_service.seek(consumers, _tenant(), consumer, request)


@cache
def _mutations() -> Any:
    """Built at the first mutation, once per instance: httpx and Powertools' Idempotency (boto3) stay out
    of the cold start of every other route."""
    import httpx

    from pullbridge.mutations.idempotency import IdempotentMutations
    from pullbridge.mutations.service import Mutations
    from pullbridge.storage.idempotency import idempotency_persistence

    http_client = httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0), follow_redirects=False)
    runner = Mutations(store, http_client, allow_private=settings.allow_private_urls)
    return IdempotentMutations(runner, idempotency_persistence(dynamodb, settings.idempotency_table))


@app.post(
    "/mutations",
    summary="Write to the provider; the change is logged and in the records when this answers",
    responses=responses(200, "The mutation, succeeded", 404, 409, 413, 422, 429, 502, 504),
)
def create_mutation(
    request: Annotated[MutationCreate, Body()],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="idempotency-key",
            min_length=1,
            max_length=255,
            description="The same key within 24 h answers the first request again; with another body, 409.",
        ),
    ] = None,
) -> Mutation:
    outcome = _mutations().run(_tenant(), request, idempotency_key, app.lambda_context)
    return mutation_service.answer(outcome)


@app.get("/mutations", summary="Mutations, newest first", responses=responses(200, "A page", 410))
def list_mutations(
    connection_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[MutationStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MutationPage:
    return mutation_service.list_mutations(
        store, codec, _tenant(), connection_id=connection_id, status=status, cursor=cursor, limit=limit
    )


@app.get("/mutations/<mutation_id>", summary="One mutation", responses=responses(200, "The mutation", 404))
def get_mutation(mutation_id: Annotated[str, Path(max_length=64)]) -> Mutation:
    return mutation_service.get_mutation(store, _tenant(), mutation_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
