"""Starting a queued pull at once: the API invokes the puller function asynchronously.

If the invoke fails, nothing is lost: the queued pull is due, and the next scheduled tick runs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def lambda_client() -> Any:
    """`AWS_ENDPOINT_URL_LAMBDA` points it at the local stack in `make dev`."""
    return botocore.session.get_session().create_client(
        "lambda", config=Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 2})
    )


class PullLauncher:
    """Makes its Lambda client at its first launch, once per instance: only `POST …/pull` needs one, and
    loading Lambda's service model would add about 40 ms to every API cold start."""

    def __init__(self, function_name: str, client_factory: Callable[[], Any] = lambda_client) -> None:
        self._function_name = function_name
        self._client_factory = client_factory
        self._client: Any = None

    def launch(self, pull_id: str) -> bool:
        """True when the puller was started; False leaves the pull to the schedule."""
        try:
            if self._client is None:
                self._client = self._client_factory()
            self._client.invoke(
                FunctionName=self._function_name,
                InvocationType="Event",
                Payload=json.dumps({"pull_id": pull_id}).encode(),
            )
        except (ClientError, BotoCoreError):
            return False
        return True
