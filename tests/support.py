"""Shared test helpers: paths, sample events from `events/`, and signing."""

from __future__ import annotations

import base64
import copy
import json
import time
from functools import cache
from types import ModuleType
from typing import Any

from pullbridge.providers.standard import sign
from pullbridge_local.lambda_runtime import LambdaContext, import_function_module
from tests.paths import EVENTS_DIR, REPO_ROOT

TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@cache
def _load_sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())  # type: ignore[no-any-return]


def sample_event(name: str) -> dict[str, Any]:
    """A deep copy of `events/<name>`, the same file `sam local invoke -e` uses."""
    return copy.deepcopy(_load_sample(name))


def load_function(name: str) -> ModuleType:
    """Import `functions/<name>/app.py` under a unique module name, as its own Lambda would (and as the
    local stack does): with its directory first on sys.path while it is imported."""
    return import_function_module(f"function_{name}_app", REPO_ROOT / "functions" / name / "app.py")


def lambda_context(function_name: str = "pullbridge-test") -> LambdaContext:
    return LambdaContext(function_name=function_name, memory_limit_in_mb=1024, timeout_seconds=29)


def standard_webhook_headers(
    secret: str, message_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of a Standard Webhooks delivery of `body`, signed now (or at `timestamp`), for real HTTP."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, message_id, stamp, body),
    }


def standard_webhook_event(
    connection_id: str,
    body: bytes | str,
    *,
    secret: str = TEST_SECRET,
    message_id: str = "msg_1",
    timestamp: int | None = None,
    signature: str | None = None,
) -> dict[str, Any]:
    """The `webhook_standard.json` sample, re-targeted and freshly signed."""
    raw = body.encode() if isinstance(body, str) else body
    stamp = int(time.time()) if timestamp is None else timestamp
    event = sample_event("webhook_standard.json")
    event["pathParameters"] = {"connection_id": connection_id}
    event["rawPath"] = f"/webhooks/{connection_id}"
    event["requestContext"]["http"]["path"] = event["rawPath"]
    try:
        event["body"] = raw.decode()
    except UnicodeDecodeError:  # API Gateway passes bodies that are not UTF-8 as base64
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    event["headers"].update(
        {
            "webhook-id": message_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature or sign(secret, message_id, stamp, raw),
        }
    )
    return event


def api_event(
    sample: str,
    api_key: str | None,
    *,
    path: str | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    method: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API sample event with the caller's key and the given path, query and JSON body."""
    event = sample_event(sample)
    if api_key is None:
        event["headers"].pop("authorization", None)
    else:
        event["headers"]["authorization"] = f"Bearer {api_key}"
    if path is not None:
        event["rawPath"] = path
        event["requestContext"]["http"]["path"] = path
    if method is not None:
        event["requestContext"]["http"]["method"] = method
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    return event


def json_body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def labelled_event(connection_id: str, label: str) -> dict[str, Any]:
    """A public event document (without its id) whose `data.label` and `record_id` name it, for tests
    that write the log directly."""
    return {
        "connection_id": connection_id,
        "provider": "standard",
        "collection": None,
        "type": "test.written",
        "action": None,
        "record_id": label,
        "source": "webhook",
        "pull_id": None,
        "occurred_at": None,
        "received_at": "2026-11-24T00:00:00.000Z",
        "data": {"label": label},
    }


class MovingClock:
    """Wall time plus an offset the test moves; sleeping moves it too (so waits take no time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
