"""Write units: what DynamoDB would bill for the writes of one accepted webhook, and how that changes when
the tenant has 10,000 connections instead of one.

The figures observe only the requests the ingest handler's client sends and the items in the table, never
storage's internals, so they measure any head layout alike.

Billing rules (DynamoDB's, for on-demand and provisioned tables alike):

- An item's size is the sum over its attributes of the UTF-8 length of the name plus the size of the
  value: S the UTF-8 bytes, N about one byte per two significant digits plus one, B the bytes, BOOL and
  NULL one byte, L and M three bytes plus each element's size and one byte for each element (an M
  element also counts its name), sets the sum of their elements. The key attributes are attributes.
- PutItem, UpdateItem, DeleteItem and BatchWriteItem's requests: 1 write unit per 1 KB, rounded up, per
  item. TransactWriteItems: 2 write units per 1 KB of each item.
- A Put or an Update is billed on the larger of the item's size before and after the write, a Delete on
  the size of the item it deletes.
- **Assumption**: a ConditionCheck in a transaction is billed as a transactional write of the checked
  item's current size (2 units per 1 KB). It is an item of the transaction, and this is the costlier
  reading of how DynamoDB prices it; without it a warm webhook costs 2 units less.
- Every request is counted as if it took effect, whether it succeeded or not: a cancelled transaction
  or a failed condition still consumes write capacity. A request botocore retries is counted once.

`WriteUnitMeter` learns each item's size around the request: its botocore hooks (`before-call` and
`after-call` on the metered client) read every key the request names with a consistent `GetItem` on a
separate, unmetered client, before the request is sent and, for an Update, after it returns. A Put's
new size is the size of the item it sends.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.bench_common import Rig, figure, item_size, log, median
from pullbridge.connections import create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.storage import dynamodb_client
from tests.support import TEST_SECRET, lambda_context, standard_webhook_event

KB = 1024
TENANT = "t_bench_cost"
"""A tenant of its own: the ingest instance is shared with the other benchmarks of the run, and its
view of another tenant's log may be stale (which would cost retries, not the figure asked for)."""
CONNECTIONS = 10_000
CHECKPOINTS = (1, 100, 1_000, 5_000, CONNECTIONS)
"""Connection counts at which the write units are measured on the way to 10,000."""
MEASURED_WEBHOOKS = 20
"""Warm webhooks per checkpoint, one to each of 20 connections spread across the tenant."""

_WRITE_REQUESTS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_CONTEXT_KEY = "bench_cost_planned_writes"


# --- sizes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemWrite:
    """One item one request wrote (or checked), with the sizes its bill depends on."""

    request: str
    """The request's operation: TransactWriteItems, PutItem, UpdateItem, DeleteItem or BatchWriteItem."""
    action: str
    """Put, Update, Delete or ConditionCheck."""
    table: str
    key: Mapping[str, Any]
    size_before: int
    """The item's size before the request (0 if it did not exist)."""
    size_after: int
    """After the request: the item sent for a Put, the item read back for an Update; 0 otherwise."""

    @property
    def transactional(self) -> bool:
        return self.request == "TransactWriteItems"

    @property
    def billed_bytes(self) -> int:
        if self.action in ("Put", "Update"):
            return max(self.size_before, self.size_after)
        return self.size_before  # a Delete: the item it deletes; a ConditionCheck: the item it checks

    @property
    def units(self) -> int:
        kilobytes = max(1, math.ceil(self.billed_bytes / KB))
        return 2 * kilobytes if self.transactional else kilobytes

    def describe(self) -> str:
        key = ",".join(str(next(iter(value.values()))) for value in self.key.values())
        return f"{self.action} {self.table}[{key}] {self.billed_bytes} B = {self.units} WCU"


def write_units(writes: Iterable[ItemWrite]) -> int:
    """The write units DynamoDB bills for these item writes."""
    return sum(write.units for write in writes)


# --- the meter ----------------------------------------------------------------------------------------


def from_wire(value: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute value from a request's JSON body (B and BS base64) as botocore takes it (bytes)."""
    ((kind, content),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(content)}
    if kind == "BS":
        return {"BS": [base64.b64decode(element) for element in content]}
    if kind == "L":
        return {"L": [from_wire(element) for element in content]}
    if kind == "M":
        return {"M": {name: from_wire(element) for name, element in content.items()}}
    return {kind: content}


def _item_from_wire(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: from_wire(value) for name, value in item.items()}


@dataclass
class _Planned:
    action: str
    table: str
    key: dict[str, Any]
    sent_size: int
    size_before: int = 0


@dataclass
class WriteUnitMeter:
    """The items written by the requests one botocore client sends, with their sizes before and after.

    `reader` must be another client on the same endpoint: its reads are neither metered nor billed to
    the figure. Requests are matched to their reads through botocore's per-request `context`.
    """

    client: Any
    reader: Any
    writes: list[ItemWrite] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    _key_names: dict[str, list[str]] = field(default_factory=dict)

    def start(self) -> WriteUnitMeter:
        events = self.client.meta.events
        events.register("before-call.dynamodb.*", self._before_call)
        events.register("after-call.dynamodb.*", self._after_call)
        return self

    def stop(self) -> None:
        events = self.client.meta.events
        events.unregister("before-call.dynamodb.*", self._before_call)
        events.unregister("after-call.dynamodb.*", self._after_call)

    def reset(self) -> None:
        self.writes.clear()
        self.requests.clear()

    @property
    def units(self) -> int:
        return write_units(self.writes)

    def _before_call(self, model: Any, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        self.requests.append(model.name)
        if model.name not in _WRITE_REQUESTS:
            return
        body = json.loads(params["body"] or b"{}")
        planned = list(self._named_items(model.name, body))
        for item in planned:
            item.size_before = self._size_now(item.table, item.key)
        context[_CONTEXT_KEY] = planned
        # Returning nothing: a value here would answer the request instead of sending it.

    def _after_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        planned: list[_Planned] | None = context.pop(_CONTEXT_KEY, None)
        if planned is None:
            return
        for item in planned:
            if item.action == "Update":
                size_after = self._size_now(item.table, item.key)
            elif item.action == "Put":
                size_after = item.sent_size
            else:
                size_after = 0
            self.writes.append(
                ItemWrite(model.name, item.action, item.table, item.key, item.size_before, size_after)
            )

    def _named_items(self, operation: str, body: Mapping[str, Any]) -> Iterator[_Planned]:
        if operation == "TransactWriteItems":
            for entry in body["TransactItems"]:
                ((action, request),) = entry.items()
                yield self._planned(action, request)
        elif operation == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        yield self._planned("Put", {"TableName": table, **request["PutRequest"]})
                    else:
                        yield self._planned("Delete", {"TableName": table, **request["DeleteRequest"]})
        else:
            yield self._planned(operation.removesuffix("Item"), body)

    def _planned(self, action: str, request: Mapping[str, Any]) -> _Planned:
        table = request["TableName"]
        if action == "Put":
            item = _item_from_wire(request["Item"])
            key = {name: item[name] for name in self._key_attributes(table)}
            return _Planned(action, table, key, item_size(item))
        return _Planned(action, table, _item_from_wire(request["Key"]), 0)

    def _key_attributes(self, table: str) -> list[str]:
        if table not in self._key_names:
            schema = self.reader.describe_table(TableName=table)["Table"]["KeySchema"]
            self._key_names[table] = [element["AttributeName"] for element in schema]
        return self._key_names[table]

    def _size_now(self, table: str, key: Mapping[str, Any]) -> int:
        item = self.reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(item) if item else 0


# --- the benchmark ----------------------------------------------------------------------------------------


def webhook_body(n: int) -> bytes:
    """A Standard Webhooks delivery of about 1 KB (1,016 bytes): a Stripe-like paid invoice."""
    payload = {
        "type": "invoice.paid",
        "timestamp": "2026-11-24T00:00:00Z",
        "data": {
            "id": f"in_1QbX7v2eZvKYlo2C{n:08d}",
            "object": "invoice",
            "account_name": "Acme Robotics, Inc.",
            "amount_due": 4900,
            "amount_paid": 4900,
            "amount_remaining": 0,
            "attempt_count": 1,
            "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically",
            "created": 1795478400,
            "currency": "usd",
            "customer": f"cus_R4nd0mCust{n:08d}",
            "customer_email": "billing@acme-robotics.example",
            "customer_name": "Acme Robotics",
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_1Ab2Cd3Ef4Gh5Ij6/test_{n:08d}",
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": f"il_1QbX7v2eZvKYlo2C{n:08d}",
                        "amount": 4900,
                        "currency": "usd",
                        "description": "1 \u00d7 Pro plan (at $49.00 / month)",
                        "period": {"start": 1795478400, "end": 1798070400},
                        "price": {
                            "id": "price_1PqR2s3T4u5V6w7X",
                            "unit_amount": 4900,
                            "recurring": {"interval": "month"},
                        },
                        "quantity": 1,
                    }
                ],
                "has_more": False,
                "total_count": 1,
            },
            "number": f"ACME-{n:06d}",
            "paid": True,
            "status": "paid",
            "subscription": "sub_1PqR2s3T4u5V6w7XyZ",
            "subtotal": 4900,
            "total": 4900,
        },
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _small_body(n: int) -> bytes:
    return json.dumps({"type": "customer.created", "data": {"id": f"cus_{n}"}}).encode()


@dataclass
class _Tenant:
    """One tenant's connections, each created by the connection service and sent one webhook through
    the ingest handler (so whatever a connection's counters are, they exist)."""

    store: Any
    settings: Any
    ingest: Any
    context: Any
    connection_ids: list[str] = field(default_factory=list)
    sent: int = 0
    refused: str | None = None
    """Why the tenant stopped accepting webhooks, if it did."""

    def grow_to(self, count: int) -> None:
        request = ConnectionCreate(provider="standard", name="bench", webhook_secrets=[TEST_SECRET])
        while len(self.connection_ids) < count and self.refused is None:
            connection = create_connection(self.store, self.settings, TENANT, request)
            response = self.send(connection.id, _small_body(self.sent))
            if response["statusCode"] != 200:
                self.refused = (
                    f"connection {len(self.connection_ids) + 1}'s first webhook got "
                    f"{response['statusCode']} {response['body'][:300]}"
                )
                return
            self.connection_ids.append(connection.id)
            if len(self.connection_ids) % 500 == 0:
                _forget_moto_instances()
            if len(self.connection_ids) % 1_000 == 0:
                log(f"cost: {len(self.connection_ids)} connections, each with its first webhook")

    def send(self, connection_id: str, body: bytes) -> dict[str, Any]:
        self.sent += 1
        event = standard_webhook_event(connection_id, body, message_id=f"msg_cost_{self.sent}")
        response: dict[str, Any] = self.ingest.lambda_handler(event, self.context)
        return response

    def spread(self, count: int) -> list[str]:
        """`count` connections spread evenly across the tenant (all the same one if it has one)."""
        ids = self.connection_ids
        return [ids[index * len(ids) // count] for index in range(count)]


def _forget_moto_instances() -> None:
    """Let moto drop the objects it registers for its dashboard. moto appends every model object it
    creates to a class-level list until a reset, and `pullbridge_local.moto_transactions` makes a table
    object per transaction (its backup, with a copy of the table's partition index): at thousands of
    connections that kept gigabytes alive. The embedded DynamoDB runs in this process, so the
    benchmark can clear the lists itself; it changes no table."""
    from moto.core.model_instances import reset_model_data

    reset_model_data()


def measure_write_units(tenant: _Tenant, meter: WriteUnitMeter) -> tuple[float, list[ItemWrite], float]:
    """(median write units, the writes of a median webhook, requests per webhook) over warm webhooks to
    connections spread across the tenant, each sent by the instance that sent every webhook before."""
    per_webhook: list[tuple[int, list[ItemWrite]]] = []
    requests = 0
    for connection_id in tenant.spread(MEASURED_WEBHOOKS):
        meter.reset()
        meter.start()
        try:
            response = tenant.send(connection_id, webhook_body(tenant.sent))
        finally:
            meter.stop()
        assert response["statusCode"] == 200, response
        assert json.loads(response["body"])["duplicates"] == 0, response
        per_webhook.append((meter.units, list(meter.writes)))
        requests += len(meter.requests)
    units = median([float(units) for units, _ in per_webhook])
    typical = min(per_webhook, key=lambda entry: abs(entry[0] - units))[1]
    return units, typical, requests / len(per_webhook)


def run(rig: Rig) -> None:
    started = time.perf_counter()
    settings = rig.fresh_tables()
    ingest = rig.function("ingest")
    ingest.connections._entries.clear()  # one instance for the whole run, warm after its first webhook
    tenant = _Tenant(rig.store(settings), settings, ingest, lambda_context("bench-cost"))
    meter = WriteUnitMeter(ingest.store._client, dynamodb_client(rig.endpoint))
    log(f"cost: the measured webhooks' bodies are {len(webhook_body(0))} bytes")
    measured: dict[int, float] = {}
    for checkpoint in CHECKPOINTS:
        began = time.perf_counter()
        tenant.grow_to(checkpoint)
        if tenant.refused is not None:
            log(f"cost: the tenant stopped accepting webhooks at {len(tenant.connection_ids)} connections")
            break
        units, writes, requests_per_webhook = measure_write_units(tenant, meter)
        measured[checkpoint] = units
        log(
            f"cost: {checkpoint} connections ({time.perf_counter() - began:.0f} s to grow): median "
            f"{units:g} WCU, {requests_per_webhook:.1f} requests a webhook; a median webhook: "
            + "; ".join(write.describe() for write in writes)
        )
        if checkpoint == 1:
            figure("ingest_write_units_per_webhook", units)
        else:
            figure(f"ingest_write_units_at_{checkpoint}_connections", units)
    if tenant.refused is None:
        figure("ingest_write_units_flatness", measured[CONNECTIONS] / measured[1])
    else:
        largest = max(measured)
        figure(
            "ingest_write_units_flatness",
            f"not measurable: the tenant refused webhooks from connection "
            f"{len(tenant.connection_ids) + 1} on ({tenant.refused})",
        )
        figure(f"ingest_write_units_flatness_at_{largest}_connections", measured[largest] / measured[1])
    figure("ingest_write_units_seconds", time.perf_counter() - started)
