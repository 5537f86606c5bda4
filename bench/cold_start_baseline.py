"""The baseline of `cold_init_ratio_*` (bench/bench_cold_start.py): the least any function of this stack
does at cold start, one botocore DynamoDB client and a Powertools Logger. It is loaded the way Lambda
loads a handler module, in a fresh interpreter; nothing else imports it."""

from __future__ import annotations

import os
from typing import Any

import botocore.session
from aws_lambda_powertools import Logger

client = botocore.session.get_session().create_client("dynamodb", region_name=os.environ["AWS_REGION"])
logger = Logger()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 204}
