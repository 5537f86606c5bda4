"""Records at size and what connection health costs the webhook path.

`GET /records`: a collection of Stripe customers (the fake provider's own records), seeded straight into
the control table, is paged through with `limit=500` by `pullbridge.records.list_records`, the API's own
service function, following `next_cursor`. Every record must come back exactly once, in record id
order; the items DynamoDB read are counted by `DynamoMeter` (`ScannedCount` of each `Query`, `Item` of
each `GetItem`, from botocore's `after-call` on the store's client). The same sweep runs again after
every tenth record is deleted (a tombstone, skipped with `include_deleted=false`), and on two small
collections with half and nine tenths of them deleted, to show how the cost per record grows.

The items are the ones `record_write` produces: its `UpdateItem` applied to the item it finds (none, for
a new record), then written with `BatchWriteItem`. A transaction per 100 records, the writer's own path,
takes the embedded DynamoDB about 0.4 s, so 100,000 records would take 6 to 7 minutes to seed; puts take
about 0.32 ms a record. Before seeding, the first 100 records and 10 tombstones are also written through
`record_write` in real transactions, to a partition of their own, and must read back identical to the
seeded ones.

Connection health: the median write units of one accepted 1 KB webhook, priced by `bench_cost`'s own
`WriteUnitMeter` and `measure_write_units`, and the size of the connection log's head, which a webhook's
commit now stamps with `webhook_at`.

The size is `PULLBRIDGE_BENCH_RECORDS` records (100,000 by default, about 9 minutes on moto): moto answers each page's `Query` by
walking and sorting the whole partition, about 0.2 s plus 11 us a record, so a sweep of N records takes
N / 500 pages of that: 75 s at 50,000 and 250 s at 100,000, and a run makes two.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.bench_common import (
    CURSOR_SECRET,
    READ_UNIT_BYTES,
    TENANT,
    Rig,
    figure,
    item_size,
    log,
    median,
    metered,
    number_size,
)
from bench.bench_cost import TENANT as COST_TENANT
from bench.bench_cost import (
    WriteUnitMeter,
    _forget_moto_instances,
    _Tenant,
    measure_write_units,
    webhook_body,
)
from pullbridge.connections import create_connection
from pullbridge.cursors import CursorCodec
from pullbridge.models import ConnectionCreate
from pullbridge.records import list_records
from pullbridge.storage import Store, dynamodb_client
from pullbridge.storage.attributes import Item
from pullbridge.storage.keys import HEAD_POSITION, connection_log
from pullbridge.storage.model import RecordChange
from pullbridge.storage.records import record_write
from tests.fakes.provider_server import _stripe_factory, fixture_json
from tests.support import lambda_context

RECORDS = int(os.environ.get("PULLBRIDGE_BENCH_RECORDS", "100000"))
"""The collection's size: 100,000 is the target, and a run with it took 9 minutes here (see above)."""
PAGE = 500  # GET /records's largest `limit`
TOMBSTONE_EVERY = 10  # every tenth record deleted: 10% tombstones
GROWTH = {"50pct": 2, "90pct": 10}
"""Collections with more deletes, by their share of tombstones: one record in `step` stays live."""
GROWTH_RECORDS = 2_500
LAYOUT_CHECKED = 100
COLLECTION = "customers"
BATCH = 25  # BatchWriteItem's most
CHANGED_AT = "2026-12-01T00:00:00Z"
DELETED_AT = "2026-12-02T00:00:00Z"
RETENTION_SECONDS = 30 * 86_400

_CLAUSES = re.compile(r",\s*(?![^()]*\))")
_IF_NOT_EXISTS = re.compile(r"if_not_exists\((#?\w+), (:\w+)\)")


# --- the items record_write produces ------------------------------------------------------------------


def applied(write: Mapping[str, Any], found: Item | None) -> Item:
    """The item one `record_write` update leaves when it finds `found` (None: no item yet). Only the
    forms `record_write` uses are understood (`SET a = :v`, `SET a = if_not_exists(a, :v)`, `REMOVE a`),
    and only unconditional writes: anything else raises rather than guess."""
    update = write["Update"]
    if "ConditionExpression" in update:
        raise ValueError("a versioned record write is conditional: seed records without a version")
    names: Mapping[str, str] = update.get("ExpressionAttributeNames", {})
    values: Mapping[str, Any] = update["ExpressionAttributeValues"]
    expression: str = update["UpdateExpression"]
    if not expression.startswith("SET "):
        raise ValueError(f"unexpected update: {expression}")
    sets, _, removes = expression.removeprefix("SET ").partition(" REMOVE ")
    item: Item = dict(found) if found is not None else dict(update["Key"])
    for clause in _CLAUSES.split(sets):
        target, value = clause.split(" = ", 1)
        name = names.get(target, target)
        if match := _IF_NOT_EXISTS.fullmatch(value):
            if names.get(match.group(1), match.group(1)) != name:
                raise ValueError(f"unexpected update: {clause}")
            if name in item:
                continue
            value = match.group(2)
        item[name] = values[value]  # a KeyError for any other form
    for target in removes.split(", ") if removes else []:
        item.pop(names.get(target, target), None)
    return item


@dataclass
class Collection:
    """Stripe customers 0..count-1 of one connection's collection: their record writes and items."""

    table: str
    connection_id: str
    collection: str = COLLECTION
    make: Any = field(default_factory=lambda: _stripe_factory(fixture_json("stripe/objects/customer.json")))

    def record_id(self, n: int) -> str:
        return f"cus_fake{n:010d}"  # the factory's ids: zero-padded, so id order is key order

    def write(self, n: int) -> Any:
        record = self.make(n)
        assert record["id"] == self.record_id(n)
        change = RecordChange(self.connection_id, self.collection, record["id"], record)
        return record_write(
            self.table, change, event_id=f"evt_seed{n:010d}", at=CHANGED_AT, tombstone_expires_at=0
        )

    def delete(self, n: int, expires_at: int) -> Any:
        change = RecordChange(self.connection_id, self.collection, self.record_id(n), None, deleted=True)
        return record_write(
            self.table, change, event_id=f"evt_gone{n:010d}", at=DELETED_AT, tombstone_expires_at=expires_at
        )

    def item(self, n: int, *, deleted_expiring: int | None = None) -> Item:
        item = applied(self.write(n), None)
        return item if deleted_expiring is None else applied(self.delete(n, deleted_expiring), item)


def put_all(store: Store, items: Iterator[Item]) -> int:
    table, batch, written = store._control_table, [], 0
    for item in items:
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == BATCH:
            store._batch_write(table, batch)
            written, batch = written + len(batch), []
    if batch:
        store._batch_write(table, batch)
        written += len(batch)
    return written


def check_layout(store: Store, expires_at: int) -> None:
    """`record_write`'s own transactions, 100 new records and then 10 deletes in a partition of their
    own, must leave exactly the items `applied` builds."""
    check = Collection(store._control_table, "conn_layoutcheck")
    numbers = range(LAYOUT_CHECKED)
    deleted = set(numbers[::TOMBSTONE_EVERY])
    store._client.transact_write_items(TransactItems=[check.write(n) for n in numbers])
    store._client.transact_write_items(TransactItems=[check.delete(n, expires_at) for n in sorted(deleted)])
    response = store._client.query(
        TableName=store._control_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": check.write(0)["Update"]["Key"]["pk"]},
        ConsistentRead=True,
    )
    written = {item["sk"]["S"]: item for item in response["Items"]}
    built = {
        check.record_id(n): check.item(n, deleted_expiring=expires_at if n in deleted else None)
        for n in numbers
    }
    if written != built:
        differing = sorted(key for key in built.keys() | written.keys() if built.get(key) != written.get(key))
        raise AssertionError(f"seeded items differ from record_write's for {differing[:5]}")
    log(
        f"records: the seeded layout matches record_write's transactions ({len(written)} items, 10 tombstones)"
    )


# --- paging -------------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """One walk through a collection with GET /records's semantics."""

    record_ids: list[str] = field(default_factory=list)
    deleted_returned: int = 0
    query_items_read: list[int] = field(default_factory=list)
    """Per page: the `ScannedCount` of its `Query`, the items DynamoDB read before the filter."""
    other_items_read: int = 0
    """The connection's `GetItem`s (list_records checks the tenant owns it)."""
    requests: int = 0
    seconds: list[float] = field(default_factory=list)
    bytes_read: list[int] = field(default_factory=list)
    """Per page where the filter dropped nothing: the size of the items its `Query` read."""

    @property
    def pages(self) -> int:
        return len(self.query_items_read)

    @property
    def items_read(self) -> int:
        return sum(self.query_items_read) + self.other_items_read

    def read_per_page_ratio(self) -> float:
        """Items read per page (the connection's `GetItem` included) ÷ limit."""
        return self.items_read / self.pages / PAGE

    def complete(self, expected: list[str]) -> bool:
        return self.record_ids == expected and self.deleted_returned == 0

    def read_units_per_page(self) -> float:
        """The median page's read units by DynamoDB's rules: one per 4 KB of the items read, as the
        `Query` is consistent (pages whose filter dropped items are not sized: their response lacks them)."""
        return median([float(max(1, -(-size // READ_UNIT_BYTES))) for size in self.bytes_read])


def _sizing(result: Sweep) -> Callable[..., None]:
    def after_call(parsed: Mapping[str, Any], **_: Any) -> None:
        if parsed.get("Count") == parsed.get("ScannedCount"):
            result.bytes_read.append(sum(item_size(item) for item in parsed.get("Items", [])))

    return after_call


def sweep(store: Store, codec: CursorCodec, connection_id: str, collection: str = COLLECTION) -> Sweep:
    result = Sweep()
    cursor: str | None = None
    events = store._client.meta.events
    sizing = _sizing(result)
    events.register("after-call.dynamodb.Query", sizing)
    try:
        with metered(store._client) as meter:
            while True:
                meter.reset()
                began = time.perf_counter()
                page = list_records(
                    store,
                    codec,
                    TENANT,
                    connection_id=connection_id,
                    collection=collection,
                    cursor=cursor,
                    limit=PAGE,
                    include_deleted=False,
                    now=time.time(),
                )
                result.seconds.append(time.perf_counter() - began)
                result.query_items_read.append(meter.items_read["Query"])
                result.other_items_read += meter.total_items_read - meter.items_read["Query"]
                result.requests += meter.total_requests
                result.record_ids.extend(record.record_id for record in page.data)
                result.deleted_returned += sum(record.deleted for record in page.data)
                if not page.has_more:
                    return result
                cursor = page.next_cursor
    finally:
        events.unregister("after-call.dynamodb.Query", sizing)


def report(name: str, result: Sweep, expected: list[str]) -> None:
    complete = result.complete(expected)
    log(
        f"records {name}: {result.pages} pages, {len(result.record_ids)} records of {len(expected)} live, "
        f"{result.requests} requests, items read per page {min(result.query_items_read)}-"
        f"{max(result.query_items_read)} + {result.other_items_read} GetItem in all, median page "
        f"{median(result.seconds) * 1000:.0f} ms, {sum(result.seconds):.0f} s, complete {complete}"
    )


def run_records(rig: Rig) -> None:
    settings = rig.fresh_tables()
    store = rig.store(settings)
    codec = CursorCodec(CURSOR_SECRET)
    expires_at = int(time.time()) + RETENTION_SECONDS
    check_layout(store, expires_at)

    def connected(name: str) -> Collection:
        request = ConnectionCreate(provider="stripe", name=name)
        connection = create_connection(store, settings, TENANT, request)
        return Collection(settings.control_table, connection.id)

    main = connected("records")
    began = time.perf_counter()
    written = put_all(store, (main.item(n) for n in range(RECORDS)))
    seeded = time.perf_counter() - began
    _forget_moto_instances()
    log(f"records: seeded {written} records in {seeded:.1f} s ({seeded / written * 1000:.2f} ms a record)")
    figure("records_count", written)
    figure("records_seed_seconds", seeded)

    every = [main.record_id(n) for n in range(RECORDS)]
    clean = sweep(store, codec, main.connection_id)
    _forget_moto_instances()
    report("no deletes", clean, every)
    figure("records_pages_complete", int(clean.complete(every)))
    figure("records_read_per_page_ratio", clean.read_per_page_ratio())
    figure("records_pages", clean.pages)
    figure("records_requests_per_page", clean.requests / clean.pages)
    figure("records_page_ms_median", median(clean.seconds) * 1000)
    figure("records_read_units_per_page", clean.read_units_per_page())
    figure("records_item_bytes_mean", sum(clean.bytes_read) / sum(clean.query_items_read))

    # Every tenth record deleted: its item stays, as a tombstone holding its last data.
    deleted = range(TOMBSTONE_EVERY - 1, RECORDS, TOMBSTONE_EVERY)
    put_all(store, (main.item(n, deleted_expiring=expires_at) for n in deleted))
    live = [main.record_id(n) for n in range(RECORDS) if n % TOMBSTONE_EVERY != TOMBSTONE_EVERY - 1]
    tombstoned = sweep(store, codec, main.connection_id)
    _forget_moto_instances()
    report("10% tombstones", tombstoned, live)
    figure("records_pages_complete_tombstones_10pct", int(tombstoned.complete(live)))
    figure("records_read_per_page_ratio_tombstones_10pct", tombstoned.read_per_page_ratio())
    figure("records_returned_per_page_tombstones_10pct", len(tombstoned.record_ids) / tombstoned.pages)
    figure("records_read_per_record_tombstones_10pct", tombstoned.items_read / len(tombstoned.record_ids))

    # How it grows: smaller collections, most of them deleted
    for name, step in GROWTH.items():
        grown = connected(f"records-{name}")
        kept = [n for n in range(GROWTH_RECORDS) if n % step == step - 1]
        kept_set = set(kept)
        put_all(
            store,
            (
                grown.item(n, deleted_expiring=None if n in kept_set else expires_at)
                for n in range(GROWTH_RECORDS)
            ),
        )
        expected = [grown.record_id(n) for n in kept]
        result = sweep(store, codec, grown.connection_id)
        report(f"{GROWTH_RECORDS} records, {name} tombstones", result, expected)
        figure(f"records_read_per_page_ratio_tombstones_{name}", result.read_per_page_ratio())
        figure(
            f"records_read_per_record_tombstones_{name}", result.items_read / max(len(result.record_ids), 1)
        )
        figure(f"records_pages_complete_tombstones_{name}", int(result.complete(expected)))


# --- connection health on the webhook path ----------------------------------------------------------------


def run_health(rig: Rig) -> None:
    settings = rig.fresh_tables()
    ingest = rig.function("ingest")
    ingest.connections._entries.clear()
    tenant = _Tenant(rig.store(settings), settings, ingest, lambda_context("bench-records"))
    tenant.grow_to(1)
    if tenant.refused is not None:
        raise AssertionError(tenant.refused)
    reader = dynamodb_client(rig.endpoint)
    meter = WriteUnitMeter(ingest.store._client, reader)
    units, writes, requests = measure_write_units(tenant, meter)
    (connection_id,) = tenant.connection_ids
    head_key = {"pk": {"S": connection_log(COST_TENANT, connection_id)}, "sk": {"N": str(HEAD_POSITION)}}
    head = reader.get_item(TableName=settings.events_table, Key=head_key, ConsistentRead=True)["Item"]
    if "webhook_at" not in head:
        raise AssertionError(f"the connection head has no webhook_at: {sorted(head)}")
    (head_write,) = [write for write in writes if dict(write.key) == head_key]
    webhook_at_bytes = len(b"webhook_at") + number_size(head["webhook_at"]["N"])
    log(
        f"health: a {len(webhook_body(0))}-byte webhook, median {units:g} WCU, {requests:.1f} requests; "
        + "; ".join(write.describe() for write in writes)
    )
    log(f"health: the connection head holds {sorted(head)}")
    figure("health_write_units_per_webhook", units)
    figure("health_requests_per_webhook", requests)
    figure("health_transaction_items_per_webhook", len(writes))
    figure("health_connection_head_bytes", item_size(head))
    figure("health_connection_head_write_units", head_write.units)
    figure("health_webhook_at_bytes", webhook_at_bytes)


def run(rig: Rig) -> None:
    started = time.perf_counter()
    run_records(rig)
    run_health(rig)
    figure("records_seconds", time.perf_counter() - started)
