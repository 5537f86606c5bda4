"""The local stack (`make dev`) in this process, on a free port, with embedded moto: real HTTP end to end."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pullbridge_local.quickstart import StandardConnection, create_standard_connection
from pullbridge_local.server import LocalStack


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    # Scheduled runs are left to the tests (`invoke_schedule`), so a background tick never races them.
    with LocalStack(port=0, run_schedules=False) as stack:
        yield stack


@pytest.fixture
def client(local_stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_stack.url, timeout=30) as http_client:
        yield http_client


@pytest.fixture
def auth(local_stack: LocalStack) -> dict[str, str]:
    return {"authorization": f"Bearer {local_stack.api_key}"}


@pytest.fixture
def standard_connection(local_stack: LocalStack) -> StandardConnection:
    """A fresh `standard` connection of the local tenant, with its webhook secret."""
    return create_standard_connection(local_stack.url, local_stack.api_key, name="e2e")
