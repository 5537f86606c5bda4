"""Puller: every minute it advances the due subscriptions; invoked with a `pull_id`, it runs that queued
pull at once. Wiring only; the work is `pullbridge.pulls.engine`."""

from __future__ import annotations

import time
import warnings
from typing import Any

import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullbridge.health import record_pull as record_pull_health
from pullbridge.observability import record_pull_finished
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.records import StoredPull
from pullbridge.settings import PullerSettings, load_settings
from pullbridge.storage import Store, dynamodb_client

settings = load_settings(PullerSettings)
logger = Logger()
metrics = Metrics()
# A tick or a rejection with nothing else to count is normal, not worth a warning in every log.
warnings.filterwarnings("ignore", message="No application metrics to publish")
store = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
http_client = httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0), follow_redirects=False)


def pull_finished(pull: StoredPull) -> None:
    record_pull_finished(metrics, pull)
    record_pull_health(store, pull)


engine = PullEngine(store, settings, http_client, on_finished=pull_finished)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000
    if "pull_id" in event:
        worked = [pull_id] if (pull_id := engine.run_pull(str(event["pull_id"]), deadline=deadline)) else []
    else:
        worked = engine.run_due(deadline=deadline)
    logger.info("puller done", extra={"pulls": worked})
    return {"pulls": worked}
