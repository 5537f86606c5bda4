"""Starting a queued pull at once: the API invokes the puller function asynchronously.

If the invoke fails, nothing is lost: the queued pull is due, and the next scheduled tick runs it.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def lambda_client() -> Any:
    """Created once per cold start. `AWS_ENDPOINT_URL_LAMBDA` points it at the local stack in `make dev`."""
    return botocore.session.get_session().create_client(
        "lambda", config=Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 2})
    )


class PullLauncher:
    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function_name = function_name

    def launch(self, pull_id: str) -> bool:
        """True when the puller was started; False leaves the pull to the schedule."""
        try:
            self._client.invoke(
                FunctionName=self._function_name,
                InvocationType="Event",
                Payload=json.dumps({"pull_id": pull_id}).encode(),
            )
        except (ClientError, BotoCoreError):
            return False
        return True
