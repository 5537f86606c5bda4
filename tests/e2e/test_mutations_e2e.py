"""Mutations over real HTTP on the local stack, against a fake provider on a real port: the API answers
with the change already in the log and the records, a scan after it emits nothing, `Idempotency-Key`
replays, and the CLI's `pullbridge mutate` and `pullbridge mutations` (issue 16)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from pullbridge_client.cli import cli
from pullbridge_local.server import LocalStack
from tests.fakes.provider_server import FakeProviderServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def _stripe_connection(
    client: httpx.Client, auth: dict[str, str], fake: FakeProviderServer
) -> dict[str, Any]:
    response = client.post(
        "/connections",
        headers=auth,
        json={
            "provider": "stripe",
            "name": "mutations-e2e",
            "webhook_secrets": ["whsec_e2e"],
            "credentials": fake.credentials("stripe"),
            "api_base_url": fake.base_url,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_mutation_is_in_the_log_and_the_records_when_it_answers_and_a_scan_emits_nothing(
    client: httpx.Client, auth: dict[str, str], fake: FakeProviderServer
) -> None:
    fake.dataset("stripe", "products").clear()
    connection = _stripe_connection(client, auth, fake)
    body = {
        "connection_id": connection["id"],
        "collection": "products",
        "kind": "create",
        "data": {"name": "Mug"},
    }
    created = client.post("/mutations", headers={**auth, "Idempotency-Key": "e2e-mug"}, json=body)
    assert created.status_code == 200, created.text
    mutation = created.json()
    assert mutation["status"] == "succeeded"
    product_id = mutation["record_id"]
    assert fake.dataset("stripe", "products").get(product_id)["name"] == "Mug"

    event = client.get(f"/events/{mutation['event_id']}", headers=auth).json()
    assert (event["source"], event["type"], event["data"]) == (
        "mutation",
        "products.created",
        mutation["record"],
    )
    record = client.get(f"/records/{connection['id']}/products/{product_id}", headers=auth).json()
    assert record["data"] == mutation["record"]

    again = client.post("/mutations", headers={**auth, "Idempotency-Key": "e2e-mug"}, json=body)
    assert again.json() == mutation
    assert len(fake.dataset("stripe", "products")) == 1

    subscription = client.post(
        "/external-event-subscriptions",
        headers=auth,
        json={"connection_id": connection["id"], "collection": "products", "backfill": True},
    ).json()
    pull_id = client.post(f"/external-event-subscriptions/{subscription['id']}/pull", headers=auth).json()[
        "id"
    ]
    deadline = time.monotonic() + 30
    while (pull := client.get(f"/external-event-pulls/{pull_id}", headers=auth).json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, pull
        time.sleep(0.1)
    assert pull["status"] == "success", pull
    assert pull["collected_events_count"] == 0, "the mutation's change is already in the snapshot"
    listed = client.get("/mutations", headers=auth, params={"connection_id": connection["id"]}).json()
    assert [m["id"] for m in listed["data"]] == [mutation["id"]]


def test_the_cli_mutates_from_a_file_and_lists_what_it_did(
    local_stack: LocalStack,
    client: httpx.Client,
    auth: dict[str, str],
    fake: FakeProviderServer,
    tmp_path: Path,
) -> None:
    fake.dataset("stripe", "customers").clear()
    connection = _stripe_connection(client, auth, fake)
    data = tmp_path / "customer.json"
    data.write_text(json.dumps({"email": "cli@example.com", "metadata": {"source": "cli"}}))
    env = {"PULLBRIDGE_URL": local_stack.url, "PULLBRIDGE_API_KEY": local_stack.api_key}
    runner = CliRunner()

    created = runner.invoke(
        cli,
        [
            "mutate",
            "create",
            "--connection",
            connection["id"],
            "--collection",
            "customers",
            "--data",
            f"@{data}",
        ],
        env=env,
        catch_exceptions=False,
    )
    assert created.exit_code == 0, created.output
    mutation = json.loads(created.stdout)
    assert mutation["status"] == "succeeded"
    assert fake.dataset("stripe", "customers").get(mutation["record_id"])["metadata"] == {"source": "cli"}

    deleted = runner.invoke(
        cli,
        [
            "mutate",
            "delete",
            "--connection",
            connection["id"],
            "--collection",
            "customers",
            "--id",
            mutation["record_id"],
        ],
        env=env,
        catch_exceptions=False,
    )
    assert deleted.exit_code == 0, deleted.output
    assert len(fake.dataset("stripe", "customers")) == 0

    listed = runner.invoke(cli, ["mutations", "list", "--connection", connection["id"], "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    kinds = [json.loads(line)["kind"] for line in listed.stdout.splitlines()]
    assert kinds == ["delete", "create"]

    refused = runner.invoke(
        cli,
        [
            "mutate",
            "update",
            "--connection",
            connection["id"],
            "--collection",
            "customers",
            "--id",
            "cus_missing",
            "--data",
            "{}",
        ],
        env=env,
    )
    assert refused.exit_code == 2
    assert "404" in refused.output or "No such customer" in refused.output
