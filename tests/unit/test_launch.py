"""The API's launcher: an async invoke of the puller, its Lambda client made once, at the first launch."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from pullbridge.launch import PullLauncher


class FakeLambda:
    def __init__(self, error: Exception | None = None) -> None:
        self.invocations: list[dict[str, Any]] = []
        self._error = error

    def invoke(self, **request: Any) -> dict[str, Any]:
        if self._error is not None:
            raise self._error
        self.invocations.append(request)
        return {"StatusCode": 202}


def test_the_client_is_made_at_the_first_launch_and_reused() -> None:
    made: list[FakeLambda] = []

    def factory() -> FakeLambda:
        made.append(FakeLambda())
        return made[-1]

    launcher = PullLauncher("pullbridge-puller", client_factory=factory)
    assert made == []  # importing the API function makes no Lambda client

    assert launcher.launch("pull_1") is True
    assert launcher.launch("pull_2") is True

    assert len(made) == 1
    assert [
        (call["FunctionName"], call["InvocationType"], json.loads(call["Payload"]))
        for call in made[0].invocations
    ] == [
        ("pullbridge-puller", "Event", {"pull_id": "pull_1"}),
        ("pullbridge-puller", "Event", {"pull_id": "pull_2"}),
    ]


def test_a_failed_invoke_leaves_the_pull_to_the_schedule() -> None:
    throttled = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "Invoke")
    unreachable = EndpointConnectionError(endpoint_url="http://lambda")

    assert PullLauncher("p", client_factory=lambda: FakeLambda(throttled)).launch("pull_1") is False
    assert PullLauncher("p", client_factory=lambda: FakeLambda(unreachable)).launch("pull_1") is False
