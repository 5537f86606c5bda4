"""Admin: operator actions (API keys), invoked directly with AWS credentials; it has no HTTP route.
Wiring only; the work is `pullbridge.admin`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pullbridge.admin import run_admin_action
from pullbridge.settings import AdminSettings, load_settings
from pullbridge.storage import Store, dynamodb_client

settings = load_settings(AdminSettings)
logger = Logger()
store = Store(dynamodb_client(settings.dynamodb_endpoint), settings)


# The event is never logged: a revoke carries the key itself, and the answer to a create is the new key.
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = run_admin_action(store, event)
    logger.info("admin action", extra={"action": event.get("action"), "refused": "error" in answer})
    return answer
