"""The fault switch on the whole local stack: faults inside the functions' worker processes, answered as
API Gateway and Lambda answer them, every 5xx explained by the fault log; and a first taste of the soak's
checker: under `dynamodb:0.3`, every webhook answered 2xx (or answered 5xx, then redelivered) is in the
log exactly once."""

from __future__ import annotations

import concurrent.futures
import functools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pullbridge_local.dynamodb import dynamodb_client
from pullbridge_local.faults import FaultPlan
from pullbridge_local.quickstart import new_webhook_secret
from pullbridge_local.server import LocalStack
from tests.fakes.provider_server import FakeProviderServer
from tests.support import standard_webhook_headers

pytestmark = pytest.mark.e2e

KILLS = (
    "dynamodb.conflict@IngestFunction:1,kill.taken@IngestFunction:1,"
    "kill.before@PullerFunction:1,provider.rate_limit@ApiFunction:1"
)


def _stack(spec: str, seed: int, log: Path) -> LocalStack:
    return LocalStack(port=0, run_schedules=False, faults=FaultPlan.parse(spec, seed=seed, log_path=log))


def _faults_by_request(stack: LocalStack) -> dict[str, list[dict[str, Any]]]:
    faults = defaultdict(list)
    for fault in stack.injected_faults():
        faults[fault["request_id"]].append(fault)
    return faults


def _until_answered(
    send: Any, unexplained: list[str], stack: LocalStack, attempts: int = 20
) -> httpx.Response:
    """Sends until the answer is not a 5xx, as a client that retries does; each 5xx must be explained."""
    for _ in range(attempts):
        response: httpx.Response = send()
        if response.status_code < 500:
            return response
        request_id = response.headers["apigw-requestid"]
        if not _faults_by_request(stack).get(request_id):
            unexplained.append(
                f"{response.request.method} {response.request.url.path} {response.status_code}"
            )
    raise AssertionError(f"still 5xx after {attempts} attempts")


# --- kills and a provider fault, each where it was aimed ----------------------------------------------


@pytest.fixture(scope="module")
def killing_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with _stack(KILLS, 1, tmp_path_factory.mktemp("faults") / "faults.jsonl") as stack:
        yield stack


@pytest.fixture
def killing_client(killing_stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=killing_stack.url, timeout=30) as client:
        yield client


def _create_standard_connection(client: httpx.Client, api_key: str) -> tuple[str, str]:
    secret = new_webhook_secret()
    response = client.post(
        "/connections",
        headers={"authorization": f"Bearer {api_key}"},
        json={"provider": "standard", "name": "faults", "webhook_secrets": [secret]},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], secret


def test_a_worker_killed_between_taking_positions_and_committing_answers_as_lambda_does(
    killing_stack: LocalStack, killing_client: httpx.Client
) -> None:
    connection_id, secret = _create_standard_connection(killing_client, killing_stack.api_key)
    body = b'{"type": "invoice.paid", "data": {"id": "inv_killed"}}'

    response = killing_client.post(
        f"/webhooks/{connection_id}",
        content=body,
        headers=standard_webhook_headers(secret, "msg_killed", body),
    )

    assert response.status_code == 500
    assert response.json()["error"]["key"] == "function_error"
    faults = _faults_by_request(killing_stack)[response.headers["apigw-requestid"]]
    kinds = [(fault["target"], fault["kind"], fault["operation"]) for fault in faults]
    assert kinds[-1] == ("kill", "taken", "UpdateItem")
    assert set(kinds[:-1]) == {("dynamodb", "conflict", "TransactWriteItems")}
    # The positions were taken (the tenant head moved) and never committed: no event.
    head = dynamodb_client(killing_stack.dynamodb_endpoint).get_item(
        TableName="EventsTable", Key={"pk": {"S": "T#local"}, "sk": {"N": "0"}}, ConsistentRead=True
    )["Item"]
    assert int(head["seq"]["N"]) >= 1
    events = killing_client.get(
        "/events",
        params={"connection_id": connection_id},
        headers={"authorization": f"Bearer {killing_stack.api_key}"},
    )
    assert events.json()["data"] == []


def test_a_killed_asynchronous_invocation_goes_to_its_on_failure_destination(
    killing_stack: LocalStack, killing_client: httpx.Client
) -> None:
    started = killing_client.post(
        "/2015-03-31/functions/PullerFunction/invocations",
        headers={"x-amz-invocation-type": "Event"},
        content=b"{}",
    )
    assert started.status_code == 202

    deadline = time.monotonic() + 20
    while not killing_stack.failed_async_invocations:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (failed,) = killing_stack.failed_async_invocations
    # The template gives the puller `MaximumRetryAttempts: 0`: the next tick picks its work up.
    assert (failed["function"], failed["attempts"]) == ("PullerFunction", 1)
    assert "SIGKILL" in failed["error"]
    kills = [fault for fault in killing_stack.injected_faults() if fault["function"] == "PullerFunction"]
    assert [(fault["kind"], fault["landed"]) for fault in kills] == [("before", False)]


def test_a_killed_synchronous_invocation_is_a_function_error(killing_client: httpx.Client) -> None:
    response = killing_client.post("/2015-03-31/functions/PullerFunction/invocations", content=b"{}")

    assert response.status_code == 200
    assert response.headers["x-amz-function-error"] == "Unhandled"
    assert response.json()["errorType"] == "Runtime.ExitError"
    assert "SIGKILL" in response.json()["errorMessage"]


def test_a_provider_rate_limit_reaches_the_mutations_client(
    killing_stack: LocalStack, killing_client: httpx.Client
) -> None:
    auth = {"authorization": f"Bearer {killing_stack.api_key}"}
    with FakeProviderServer() as fake:
        connection = killing_client.post(
            "/connections",
            headers=auth,
            json={
                "provider": "stripe",
                "name": "faults",
                "webhook_secrets": ["whsec_faults"],
                "credentials": fake.credentials("stripe"),
                "api_base_url": fake.base_url,
            },
        ).json()
        body = {
            "connection_id": connection["id"],
            "collection": "products",
            "kind": "create",
            "data": {"name": "Mug"},
        }

        response = killing_client.post("/mutations", headers=auth, json=body)

        assert len(fake.dataset("stripe", "products")) == 0
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "1"
    (fault,) = _faults_by_request(killing_stack)[response.headers["apigw-requestid"]]
    assert (fault["target"], fault["kind"], fault["function"], fault["status"]) == (
        "provider",
        "rate_limit",
        "ApiFunction",
        429,
    )


# --- a first taste of the soak's checker --------------------------------------------------------------

WEBHOOKS = 30


@pytest.fixture(scope="module")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with _stack("dynamodb:0.3", 2026, tmp_path_factory.mktemp("faults") / "faults.jsonl") as stack:
        yield stack


def _all_events(
    client: httpx.Client, auth: dict[str, str], connection_id: str, unexplained: list[str], stack: LocalStack
) -> list[Any]:
    events: list[Any] = []
    cursor = None
    while True:
        params = {"connection_id": connection_id, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = _until_answered(
            functools.partial(client.get, "/events", params=params, headers=auth), unexplained, stack
        )
        assert page.status_code == 200, page.text
        events += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if not page.json()["has_more"]:
            return events


def test_under_dynamodb_faults_every_webhook_is_logged_once_and_every_5xx_is_explained(
    faulty_stack: LocalStack,
) -> None:
    auth = {"authorization": f"Bearer {faulty_stack.api_key}"}
    unexplained: list[str] = []
    first_answers: list[int] = []
    with httpx.Client(base_url=faulty_stack.url, timeout=30) as client:
        secret = new_webhook_secret()
        created = _until_answered(
            lambda: client.post(
                "/connections",
                headers=auth,
                json={"provider": "standard", "name": "faults", "webhook_secrets": [secret]},
            ),
            unexplained,
            faulty_stack,
        )
        assert created.status_code == 201, created.text
        connection_id = created.json()["id"]

        def deliver(index: int) -> httpx.Response:
            body = json.dumps({"type": "invoice.paid", "data": {"id": f"inv_{index}"}}).encode()
            headers = standard_webhook_headers(secret, f"msg_{index}", body)
            with httpx.Client(base_url=faulty_stack.url, timeout=30) as own:
                first = own.post(f"/webhooks/{connection_id}", content=body, headers=headers)
                first_answers.append(first.status_code)
                if first.status_code < 500:
                    return first
                unexplained.extend(_explain(faulty_stack, first))
                # A provider redelivers a 5xx'd webhook: the same id and body.
                return _until_answered(
                    lambda: own.post(f"/webhooks/{connection_id}", content=body, headers=headers),
                    unexplained,
                    faulty_stack,
                )

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(deliver, range(WEBHOOKS)))
        events = _all_events(client, auth, connection_id, unexplained, faulty_stack)

    assert unexplained == []
    assert {answer.status_code for answer in answers} == {200}
    assert set(first_answers) <= {200, 500, 503}
    counts = Counter(event["record_id"] for event in events)
    assert counts == Counter({f"inv_{index}": 1 for index in range(WEBHOOKS)})
    for index, answer in enumerate(answers):
        (event,) = [event for event in events if event["record_id"] == f"inv_{index}"]
        assert answer.json()["event_ids"] == [event["id"]]
    faults = faulty_stack.injected_faults()
    assert {fault["kind"] for fault in faults} == {"throttle", "internal", "timeout", "conflict"}
    assert {fault["seed"] for fault in faults} == {2026}


def _explain(stack: LocalStack, response: httpx.Response) -> list[str]:
    if _faults_by_request(stack).get(response.headers["apigw-requestid"]):
        return []
    return [f"{response.request.method} {response.request.url.path} {response.status_code}"]
