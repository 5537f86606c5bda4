"""The webhook path: DynamoDB requests per accepted webhook, and the warm handler's time next to a
baseline doing the same HMAC verify + JSON parse + one PutItem through the same client.

`ingest_own_code_ratio` compares the two without DynamoDB: every write request of both is answered in
process, so what is left is each one's own code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from bench.bench_common import (
    TENANT,
    WRITE_OPERATIONS,
    DynamoMeter,
    Rig,
    figure,
    log,
    median,
    metered,
)
from pullbridge.connections import create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.providers.standard import decode_secret
from tests.support import TEST_SECRET, lambda_context, standard_webhook_event

WARM_WEBHOOKS = 25
ROUNDS = 16
OWN_CODE_WEBHOOKS = 2_000
"""Each round is a new connection on a new instance (its first webhook reads the connection), then warm
webhooks. The tables keep growing over the rounds: the embedded DynamoDB's transactions cost what they
touch (`pullbridge_local.moto_transactions`), as on DynamoDB, not what the table holds."""
OWN_CODE_TENANT = "t_bench_own_code"
"""Where the own-code webhooks go: their commits are answered without being written."""


def _body(n: int) -> bytes:
    payload = {
        "type": "invoice.paid",
        "timestamp": "2026-11-24T00:00:00Z",
        "data": {"id": f"inv_{n}", "n": n},
    }
    return json.dumps(payload).encode()


def _baseline(client: Any, table: str, event: dict[str, Any], key: bytes, n: int) -> None:
    """The least a webhook must do: verify the HMAC over the raw bytes, parse the JSON, store one item."""
    headers = event["headers"]
    body = event["body"].encode()
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, headers["webhook-signature"].removeprefix("v1,")):
        raise AssertionError("the baseline's signature does not verify")
    document = json.loads(body)
    client.put_item(
        TableName=table,
        Item={
            "pk": {"S": f"B#{n}"},
            "sk": {"N": "0"},
            "doc": {"S": json.dumps(document, separators=(",", ":"))},
            "expires_at": {"N": str(int(time.time()) + 86_400)},
        },
    )


def run(rig: Rig) -> None:
    ingest = rig.function("ingest")
    client = ingest.store._client
    context = lambda_context("bench-ingest")
    key = decode_secret(TEST_SECRET)
    handler_times: list[float] = []
    baseline_times: list[float] = []
    warm = DynamoMeter(client)
    cold_requests: list[int] = []
    counter = 0
    settings = rig.fresh_tables()
    for round_number in range(ROUNDS):
        connection = create_connection(
            rig.store(settings),
            settings,
            TENANT,
            ConnectionCreate(provider="standard", name="bench", webhook_secrets=[TEST_SECRET]),
        )
        ingest.connections._entries.clear()  # a new instance: its first webhook reads the connection
        # The first webhook of an instance (cold connection cache)
        counter += 1
        with metered(client) as first:
            response = ingest.lambda_handler(
                standard_webhook_event(connection.id, _body(counter), message_id=f"m{counter}"), context
            )
        assert response["statusCode"] == 200, response
        cold_requests.append(first.total_requests)
        # Warm: handler and baseline alternate, so noise on the machine hits both alike
        warm.start()
        for _ in range(WARM_WEBHOOKS):
            counter += 1
            event = standard_webhook_event(connection.id, _body(counter), message_id=f"m{counter}")
            baseline_event = standard_webhook_event(connection.id, _body(-counter), message_id=f"b{counter}")
            started = time.perf_counter()
            response = ingest.lambda_handler(event, context)
            handler_times.append(time.perf_counter() - started)
            assert response["statusCode"] == 200, response
            assert json.loads(response["body"])["duplicates"] == 0
            started = time.perf_counter()
            _baseline(client, settings.events_table, baseline_event, key, counter)
            baseline_times.append(time.perf_counter() - started)
        warm.stop()
        log(f"ingest round {round_number + 1}/{ROUNDS}: {WARM_WEBHOOKS} warm webhooks")
    accepted = ROUNDS * WARM_WEBHOOKS
    baseline_puts = accepted
    handler_requests = warm.total_requests - baseline_puts
    figure("ingest_requests_per_webhook", handler_requests / accepted)
    figure("ingest_requests_first_webhook", max(cold_requests))
    handler_ms, baseline_ms = median(handler_times) * 1000, median(baseline_times) * 1000
    # Where the time goes (mean ms per webhook), next to the baseline's single PutItem
    put_ms = warm.seconds["PutItem"] / baseline_puts * 1000
    dynamodb_ms = (sum(warm.seconds.values()) - warm.seconds["PutItem"]) / accepted * 1000
    handler_other_ms = sum(handler_times) / accepted * 1000 - dynamodb_ms
    baseline_other_ms = sum(baseline_times) / accepted * 1000 - put_ms
    per_operation = {
        name: round(warm.seconds[name] / warm.requests[name] * 1000, 2) for name in warm.requests
    }
    log(f"ingest: DynamoDB ms per request {per_operation}; requests {dict(warm.requests)}")
    figure("ingest_handler_ms_p50", handler_ms)
    figure("ingest_baseline_ms_p50", baseline_ms)
    figure("ingest_handler_dynamodb_ms", dynamodb_ms)
    figure("ingest_handler_other_ms", handler_other_ms)
    figure("ingest_baseline_putitem_ms", put_ms)
    figure("ingest_baseline_other_ms", baseline_other_ms)
    own = _own_code(ingest, rig.store(settings), settings, context, key, counter)
    figure("ingest_own_code_ratio", own["handler"] / own["baseline"])
    figure("ingest_handler_own_code_ms", own["handler"] * 1000)
    figure("ingest_baseline_own_code_ms", own["baseline"] * 1000)
    figure("ingest_own_code_ratio_with_botocore", own["handler_botocore"] / own["baseline_botocore"])


@contextmanager
def _writes_answered_in_process(client: Any) -> Iterator[Counter[str]]:
    """Every write request of `client` answered at once with DynamoDB's empty success, in process: botocore
    neither validates, builds, signs nor sends it. Reads still go to the table. Yields the writes
    answered, by operation. (It shadows the client's one entry point for every operation, on this
    instance only, so it answers whichever writes a storage design makes.)"""
    real = client._make_api_call
    answered: Counter[str] = Counter()

    def answer(operation_name: str, params: dict[str, Any]) -> Any:
        if operation_name in WRITE_OPERATIONS:
            answered[operation_name] += 1
            return {}
        return real(operation_name, params)

    client._make_api_call = answer
    try:
        yield answered
    finally:
        del client._make_api_call


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b"{}"


@contextmanager
def _writes_answered_on_the_wire(client: Any) -> Iterator[Counter[str]]:
    """Every write request of `client` built, signed and sent to a `before-send` hook that answers
    `200 {}` in place of DynamoDB, which botocore then parses: the client-side cost of each request
    (its size) is kept, the server's is not."""
    answered: Counter[str] = Counter()

    def answer(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if operation not in WRITE_OPERATIONS:
            return None
        answered[operation] += 1
        headers = HTTPHeaders()
        headers["content-type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 200, headers, _EmptyBody())

    client.meta.events.register_first("before-send.dynamodb.*", answer)
    try:
        yield answered
    finally:
        client.meta.events.unregister("before-send.dynamodb.*", answer)


def _own_code(
    ingest: Any, store: Any, settings: Any, context: Any, key: bytes, counter: int
) -> dict[str, float]:
    """Median seconds per warm webhook of the handler and of the baseline, interleaved, with their write
    requests answered in process (`handler`, `baseline`) and answered after botocore has built and
    signed them (`handler_botocore`, `baseline_botocore`).

    The webhooks go to a tenant of their own: the instance believes the answered commits landed, so its
    view of that tenant's log is fiction afterwards, and no other benchmark should inherit it."""
    client = ingest.store._client
    table = settings.events_table
    connection_id = create_connection(
        store,
        settings,
        OWN_CODE_TENANT,
        ConnectionCreate(provider="standard", name="bench-own-code", webhook_secrets=[TEST_SECRET]),
    ).id
    for n in range(2):  # for real: the instance reads the connection and learns its log
        event = standard_webhook_event(connection_id, _body(n), message_id=f"own-warm{counter}-{n}")
        assert ingest.lambda_handler(event, context)["statusCode"] == 200
    times: dict[str, list[float]] = {}
    for suffix, answering in (("", _writes_answered_in_process), ("_botocore", _writes_answered_on_the_wire)):
        handler_times, baseline_times = times[f"handler{suffix}"], times[f"baseline{suffix}"] = [], []
        events = []
        for n in range(counter, counter + OWN_CODE_WEBHOOKS):
            message_id = f"own{suffix}{n}"
            events.append(
                (
                    standard_webhook_event(connection_id, _body(n), message_id=message_id),
                    standard_webhook_event(connection_id, _body(-n), message_id=f"base{suffix}{n}"),
                )
            )
        with answering(client) as answered:
            for n, (event, baseline_event) in enumerate(events, start=counter):
                started = time.perf_counter()
                response = ingest.lambda_handler(event, context)
                handler_times.append(time.perf_counter() - started)
                assert response["statusCode"] == 200, response
                started = time.perf_counter()
                _baseline(client, table, baseline_event, key, n)
                baseline_times.append(time.perf_counter() - started)
        where = "after botocore built them" if suffix else "in process"
        log(f"ingest: own code, writes answered {where}: {dict(answered)}")
        counter += OWN_CODE_WEBHOOKS
    return {name: median(values) for name, values in times.items()}
