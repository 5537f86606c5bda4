"""The webhook path: DynamoDB requests per accepted webhook, and the warm handler's time next to a
baseline doing the same HMAC verify + JSON parse + one PutItem through the same client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from pullbridge.connections import create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.providers.standard import decode_secret
from tests.bench.bench_common import TENANT, DynamoMeter, Rig, figure, log, median, metered
from tests.support import TEST_SECRET, lambda_context, standard_webhook_event

WARM_WEBHOOKS = 25
ROUNDS = 16
OWN_CODE_WEBHOOKS = 2_000
"""Each round is a new connection on a new instance (its first webhook reads the connection), then warm
webhooks. The tables keep growing over the rounds: the embedded DynamoDB's transactions cost what they
touch (`pullbridge_local.moto_transactions`), as on DynamoDB, not what the table holds."""


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
    figure("ingest_overhead_ratio", handler_ms / baseline_ms)
    # Where the time goes (mean ms per webhook), next to the baseline's single PutItem
    put_ms = warm.seconds["PutItem"] / baseline_puts * 1000
    dynamodb_ms = (sum(warm.seconds.values()) - warm.seconds["PutItem"]) / accepted * 1000
    handler_other_ms = sum(handler_times) / accepted * 1000 - dynamodb_ms
    baseline_other_ms = sum(baseline_times) / accepted * 1000 - put_ms
    per_operation = {
        name: round(warm.seconds[name] / warm.requests[name] * 1000, 2) for name in warm.requests
    }
    log(f"ingest: DynamoDB ms per request {per_operation}; requests {dict(warm.requests)}")
    # The same, had every DynamoDB request cost what the baseline's PutItem did (no moto transaction cost)
    neutral = (handler_requests / accepted * put_ms + handler_other_ms) / (put_ms + baseline_other_ms)
    figure("ingest_overhead_ratio_at_putitem_cost", neutral)
    figure("ingest_handler_ms_p50", handler_ms)
    figure("ingest_baseline_ms_p50", baseline_ms)
    figure("ingest_handler_dynamodb_ms", dynamodb_ms)
    figure("ingest_handler_other_ms", handler_other_ms)
    figure("ingest_baseline_putitem_ms", put_ms)
    figure("ingest_baseline_other_ms", baseline_other_ms)
    figure("ingest_handler_own_code_ms", _own_code_ms(ingest, connection.id, context, counter))


def _own_code_ms(ingest: Any, connection_id: str, context: Any, counter: int) -> float:
    """The handler with its one request answered at once, in process: what pullbridge and Powertools
    cost per webhook, without botocore building, sending and parsing the request."""
    client = ingest.store._client
    client.transact_write_items = lambda **_: {}  # shadows the client's method on this instance only
    try:
        events = [
            standard_webhook_event(connection_id, _body(n), message_id=f"own{n}")
            for n in range(counter, counter + OWN_CODE_WEBHOOKS)
        ]
        started = time.perf_counter()
        for event in events:
            ingest.lambda_handler(event, context)
        return (time.perf_counter() - started) / OWN_CODE_WEBHOOKS * 1000
    finally:
        del client.transact_write_items
