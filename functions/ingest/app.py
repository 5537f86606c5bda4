"""Ingest: `POST /webhooks/{connection_id}`. Wiring only; the work is `pullbridge.ingest`."""

from __future__ import annotations

import json
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullbridge.errors import PullbridgeError
from pullbridge.http import install_error_handlers, webhook_request
from pullbridge.ingest import ConnectionCache, handle_webhook
from pullbridge.observability import record_webhook_accepted, record_webhook_rejected
from pullbridge.settings import IngestSettings, load_settings
from pullbridge.storage import Store, dynamodb_client

settings = load_settings(IngestSettings)
logger = Logger()
metrics = Metrics()
# A tick or a rejection with nothing else to count is normal, not worth a warning in every log.
warnings.filterwarnings("ignore", message="No application metrics to publish")
store = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
connections = ConnectionCache(store)
app = APIGatewayHttpResolver()
install_error_handlers(app, logger, validation=False)


@app.post("/webhooks/<connection_id>")
def receive_webhook(connection_id: str) -> Response[str]:
    request = webhook_request(app.current_event, settings.public_base_url)
    try:
        outcome = handle_webhook(store, connections, connection_id, request)
    except PullbridgeError as error:
        record_webhook_rejected(metrics, error)
        raise
    record_webhook_accepted(metrics, outcome.event_ids, outcome.duplicates)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"event_ids": outcome.event_ids, "duplicates": outcome.duplicates}),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
