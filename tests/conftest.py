"""Fixtures: a real (embedded, single-threaded) moto DynamoDB server with tables made from
template.yaml, a Store over it, tenants with API keys, and the three functions loaded as Lambda would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from pullbridge.auth import issue_api_key
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store, dynamodb_client
from pullbridge_local.dynamodb import EmbeddedDynamoDB
from pullbridge_local.template import create_tables, load_template
from tests.support import load_function

CURSOR_SECRET = "test-cursor-secret-" + "x" * 40

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "PullbridgeTests",
        "POWERTOOLS_SERVICE_NAME": "pullbridge",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[EmbeddedDynamoDB]:
    with EmbeddedDynamoDB(isolated=True) as server:
        yield server


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def tables(dynamodb_server: EmbeddedDynamoDB, template: dict[str, Any]) -> dict[str, str]:
    """Empty tables, created from template.yaml's own definitions, for each test."""
    dynamodb_server.reset()
    return create_tables(dynamodb_client(dynamodb_server.endpoint_url), template)


@pytest.fixture
def settings(dynamodb_server: EmbeddedDynamoDB, tables: dict[str, str]) -> ApiSettings:
    """The API's settings, which hold every other function's (storage, outbound URLs) too."""
    return ApiSettings(
        events_table=tables["EventsTable"],
        control_table=tables["ControlTable"],
        cursor_secret=CURSOR_SECRET,
        puller_function_name="PullerFunction",
        idempotency_table=tables["IdempotencyTable"],
        dynamodb_endpoint=dynamodb_server.endpoint_url,
        write_deadline_seconds=5,
    )


@pytest.fixture
def store(settings: ApiSettings) -> Store:
    return Store(dynamodb_client(settings.dynamodb_endpoint), settings)


@pytest.fixture
def api_key(store: Store) -> str:
    return issue_api_key(store, "t_alpha", name="tests")


@pytest.fixture
def other_api_key(store: Store) -> str:
    return issue_api_key(store, "t_beta", name="tests")


@pytest.fixture(scope="session")
def functions(dynamodb_server: EmbeddedDynamoDB) -> dict[str, ModuleType]:
    """The function modules, imported once with the deployment's environment, like a cold start."""
    os.environ.update(
        {
            "EVENTS_TABLE": "EventsTable",
            "CONTROL_TABLE": "ControlTable",
            "DYNAMODB_ENDPOINT": dynamodb_server.endpoint_url,
            "CURSOR_SECRET": CURSOR_SECRET,
            "PULLER_FUNCTION_NAME": "PullerFunction",
            "IDEMPOTENCY_TABLE": "IdempotencyTable",
            # Nothing listens there: `POST .../pull` finds no puller to start, as when an invoke fails,
            # and the pull waits for the schedule.
            "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:9",
        }
    )
    return {name: load_function(name) for name in ("ingest", "api", "puller", "admin")}


@pytest.fixture
def ingest(functions: dict[str, ModuleType], tables: dict[str, str]) -> ModuleType:
    # A fresh "instance" per test: the tables are new, so nothing it remembers of them holds
    functions["ingest"].connections._entries.clear()
    functions["ingest"].store._heads.clear()
    functions["ingest"].store._contended_until.clear()
    return functions["ingest"]


@pytest.fixture
def api(functions: dict[str, ModuleType], tables: dict[str, str]) -> ModuleType:
    return functions["api"]
