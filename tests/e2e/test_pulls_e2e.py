"""Pulls over real HTTP on the local stack: a triggered pull starts at once, without a scheduler tick."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.provider_server import FakeProviderServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def test_a_triggered_pull_runs_at_once_and_its_events_are_served(
    client: httpx.Client, auth: dict[str, str], fake: FakeProviderServer
) -> None:
    fake.dataset("stripe", "customers").clear()
    fake.dataset("stripe", "customers").seed(4)
    connection = client.post(
        "/connections",
        headers=auth,
        json={
            "provider": "stripe",
            "name": "e2e",
            "webhook_secrets": ["whsec_e2e"],
            "credentials": fake.credentials("stripe"),
            "api_base_url": fake.base_url,
        },
    ).json()
    subscription = client.post(
        "/external-event-subscriptions",
        headers=auth,
        json={"connection_id": connection["id"], "collection": "customers"},
    ).json()
    started = client.post(f"/external-event-subscriptions/{subscription['id']}/pull", headers=auth)
    assert started.status_code == 202
    pull_id = started.json()["id"]
    # The schedule is off in this stack: only the trigger's own start can run the pull
    deadline = time.monotonic() + 20
    while (pull := client.get(f"/external-event-pulls/{pull_id}", headers=auth).json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, pull
        time.sleep(0.1)
    assert pull["status"] == "success", pull
    assert pull["collected_events_count"] == 4
    events = client.get(
        "/events", headers=auth, params={"source": "pull", "connection_id": connection["id"]}
    ).json()
    assert {e["type"] for e in events["data"]} == {"customers.created"}
    assert {e["pull_id"] for e in events["data"]} == {pull_id}
    listed = client.get("/external-event-pulls", headers=auth, params={"status": "success"}).json()["data"]
    assert pull_id in [p["id"] for p in listed]


def test_the_template_schedule_starts_due_subscriptions(
    local_stack: object, client: httpx.Client, auth: dict[str, str], fake: FakeProviderServer
) -> None:
    fake.dataset("hubspot", "contacts").clear()
    fake.dataset("hubspot", "contacts").seed(3)
    connection = client.post(
        "/connections",
        headers=auth,
        json={
            "provider": "hubspot",
            "name": "scheduled",
            "webhook_secrets": ["hubspot-client-secret"],
            "credentials": fake.credentials("hubspot"),
            "api_base_url": fake.base_url,
        },
    ).json()
    subscription = client.post(
        "/external-event-subscriptions",
        headers=auth,
        json={"connection_id": connection["id"], "collection": "contacts"},
    ).json()
    # One tick of the template's `rate(1 minute)` schedule, run now
    result = local_stack.invoke_schedule("PullerFunction")  # type: ignore[attr-defined]
    assert len(result["pulls"]) >= 1
    refreshed = client.get(f"/external-event-subscriptions/{subscription['id']}", headers=auth).json()
    assert refreshed["last_pull_id"] in result["pulls"]
    assert (
        client.get(f"/external-event-pulls/{refreshed['last_pull_id']}", headers=auth).json()["status"]
        == "success"
    )
