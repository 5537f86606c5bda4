"""Integration fixtures: connections created through the API handler, and request counting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import TEST_SECRET, api_event, json_body, lambda_context


@pytest.fixture
def create_connection(api: ModuleType, api_key: str) -> Callable[..., dict[str, Any]]:
    def create(key: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"provider": "standard", "name": "billing", "webhook_secrets": [TEST_SECRET], **fields}
        response = api.lambda_handler(
            api_event("create_connection.json", key or api_key, body=body), lambda_context()
        )
        assert response["statusCode"] == 201, response["body"]
        return json_body(response)  # type: ignore[no-any-return]

    return create


@pytest.fixture
def connection(create_connection: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return create_connection()


def scan_events_table(store_client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of the events table. Tests only: no request path ever scans."""
    return store_client.scan(TableName=table)["Items"]  # type: ignore[no-any-return]


class DynamoCalls:
    """Counts (and can sabotage) the DynamoDB calls one client makes, via botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.names: list[str] = []
        self.written: list[str] = []
        """The partition key of every item a write asked to change, in order."""
        self._failures: dict[str, str] = {}
        client.meta.events.register("before-parameter-build.dynamodb.*", self._before_parameter_build)
        client.meta.events.register("before-call.dynamodb.*", self._before_call)

    def _before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        requests: list[dict[str, Any]] = []
        if model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            requests = [params]
        elif model.name == "TransactWriteItems":
            requests = [next(iter(action.values())) for action in params["TransactItems"]]
        elif model.name == "BatchWriteItem":
            requests = [
                next(iter(request.values())) for batch in params["RequestItems"].values() for request in batch
            ]
        for request in requests:
            key = request.get("Item") or request.get("Key") or {}
            if "pk" in key:
                self.written.append(next(iter(key["pk"].values())))

    def written_outside(self, *prefixes: str) -> list[str]:
        """The partition keys written that start with none of `prefixes`."""
        return [pk for pk in self.written if not pk.startswith(prefixes)]

    def _before_call(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)
        code = self._failures.get(model.name)
        if code:
            raise ClientError({"Error": {"Code": code, "Message": "injected fault"}}, model.name)

    def fail(self, operation: str, code: str = "ProvisionedThroughputExceededException") -> None:
        self._failures[operation] = code

    def close(self) -> None:
        self.client.meta.events.unregister("before-parameter-build.dynamodb.*", self._before_parameter_build)
        self.client.meta.events.unregister("before-call.dynamodb.*", self._before_call)


@contextmanager
def counting(client: Any) -> Iterator[DynamoCalls]:
    calls = DynamoCalls(client)
    try:
        yield calls
    finally:
        calls.close()
