"""What the API's routes share: settings, clients and services, built once per instance (its cold start),
and the request's tenant and base URL. Routes read the services here at each request (`wiring.store`),
so a test swaps one in one place."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pullbridge.consumers import delivery as consumer_leases
from pullbridge.cursors import CursorCodec
from pullbridge.events import EventReader
from pullbridge.http import request_base_url
from pullbridge.launch import PullLauncher
from pullbridge.observability import ConsumerMetrics
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


def tenant(router: APIGatewayHttpRouter) -> str:
    """The tenant whose API key the gate (`app.admit`) accepted for this request."""
    return str(router.context["tenant_id"])


def base_url(router: APIGatewayHttpRouter) -> str:
    return request_base_url(router.current_event, settings.public_base_url)


@cache
def idempotent_mutations() -> Any:
    """Built at the first mutation, once per instance: httpx and Powertools' Idempotency (boto3) stay out
    of the cold start of every other route."""
    import httpx

    from pullbridge.mutations.idempotency import IdempotentMutations
    from pullbridge.mutations.service import Mutations
    from pullbridge.storage.idempotency import idempotency_persistence

    http_client = httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0), follow_redirects=False)
    runner = Mutations(store, http_client, allow_private=settings.allow_private_urls)
    return IdempotentMutations(runner, idempotency_persistence(dynamodb, settings.idempotency_table))
