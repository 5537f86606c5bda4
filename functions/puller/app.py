"""Puller: runs every minute on the template's schedule. Full-scan pulls arrive with their own issue;
until then each tick only logs, so the schedule is wired and observable end to end."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("puller tick", extra={"scheduled_at": event.get("time")})
    return {"started_pulls": 0}
