"""Storage behaviour on two independent DynamoDB engines: moto and dynalite (npm).

dynalite 4 implements no TransactWriteItems, so here committed rows are written as the plain puts of the
real commit's items, and the transactional commit itself is proven on moto (test_event_log.py).
Everything else the storage layer asks of DynamoDB runs on both: conditional writes, the atomic
`ADD`/`UPDATED_OLD` allocation, consistent queries, GSI paging, waiting and fencing.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pullbridge.auth import authenticate, issue_api_key
from pullbridge.connections import (
    StoredConnection,
    archive_connection,
    create_connection,
    get_connection,
    list_connections,
    update_connection,
)
from pullbridge.cursors import CursorCodec
from pullbridge.errors import Conflict, NotFound, Unauthorized
from pullbridge.models import ConnectionCreate, ConnectionUpdate
from pullbridge.settings import StorageSettings
from pullbridge.storage import EventDraft, Store, _encode_document, dynamodb_client
from pullbridge.storage.planning import head_after
from pullbridge_local.dynamodb import EmbeddedDynamoDB
from pullbridge_local.template import create_tables
from tests.conftest import CURSOR_SECRET
from tests.paths import REPO_ROOT
from tests.support import TEST_SECRET

DYNALITE = REPO_ROOT / "node_modules" / ".bin" / "dynalite"
TENANT = "t_alpha"
_table_prefixes = itertools.count()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    if shutil.which("node") is None or not DYNALITE.exists():
        pytest.skip("dynalite is not installed (needs npm: `make test` installs it into node_modules/)")
    port = _free_port()
    process = subprocess.Popen(
        [
            str(DYNALITE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
            "--updateTableMs",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("dynalite did not start within 15 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(params=["moto", "dynalite"])
def engine_settings(
    request: pytest.FixtureRequest, dynamodb_server: EmbeddedDynamoDB, template: dict[str, Any]
) -> StorageSettings:
    endpoint = (
        dynamodb_server.endpoint_url
        if request.param == "moto"
        else request.getfixturevalue("dynalite_endpoint")
    )
    names = create_tables(dynamodb_client(endpoint), template, prefix=f"t{next(_table_prefixes)}-")
    return StorageSettings(
        events_table=names["EventsTable"],
        control_table=names["ControlTable"],
        dynamodb_endpoint=endpoint,
        write_deadline_seconds=5,
    )


@pytest.fixture
def engine_store(engine_settings: StorageSettings) -> Store:
    return Store(dynamodb_client(engine_settings.dynamodb_endpoint), engine_settings)


@pytest.fixture
def connection(engine_store: Store, engine_settings: StorageSettings) -> StoredConnection:
    request = ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET])
    return create_connection(engine_store, engine_settings, TENANT, request)


def _commit_as_puts(store: Store, connection: StoredConnection, labels: list[str]) -> None:
    """Take tenant positions through the real `ADD`, then write the real commit's items one by one (its
    conditional puts, and its conditional move of the connection's head): dynalite has no transactions."""
    allocation = store._allocate(TENANT, connection.id, len(labels))
    pending = []
    for label in labels:
        document = {
            "connection_id": connection.id,
            "provider": "standard",
            "type": "t",
            "source": "webhook",
            "received_at": "2026-11-24T00:00:00.000Z",
            "data": {"label": label},
        }
        pending.append((EventDraft(connection.id, document, delivery_id=label), *_encode_document(document)))
    items, _ = store._commit_items(allocation, pending, None)
    for item in items:
        if "Update" in item:
            update = dict(item["Update"])
            update.pop("ReturnValuesOnConditionCheckFailure", None)
            store._client.update_item(**update)
        else:
            store._client.put_item(**item["Put"])  # type: ignore[typeddict-item]
    store._remember(allocation.connection.log_key, head_after(allocation.connection))


def _labels(store: Store, connection_id: str | None = None) -> list[str]:
    return [event.document["data"]["label"] for event in store.read_log(TENANT, connection_id, 0, 100).events]


def _later(settings: StorageSettings, seconds: float) -> Store:
    return Store(dynamodb_client(settings.dynamodb_endpoint), settings, clock=lambda: time.time() + seconds)


# --- control records -----------------------------------------------------------------------------


def test_api_keys_authenticate_their_tenant_only(engine_store: Store) -> None:
    key = issue_api_key(engine_store, TENANT)
    assert authenticate(engine_store, f"Bearer {key}") == TENANT
    assert issue_api_key(engine_store, TENANT, key=key) == key  # re-issuing to the same tenant is a no-op
    with pytest.raises(Conflict):
        issue_api_key(engine_store, "t_beta", key=key)
    with pytest.raises(Unauthorized):
        authenticate(engine_store, f"Bearer {key}x")


def test_connections_round_trip_with_optimistic_versions(
    engine_store: Store, engine_settings: StorageSettings, connection: StoredConnection
) -> None:
    renamed = update_connection(
        engine_store, engine_settings, TENANT, connection.id, ConnectionUpdate(name="renamed")
    )
    assert (renamed.version, get_connection(engine_store, TENANT, connection.id).name) == (2, "renamed")
    # A write based on the old version is refused
    from pullbridge.connection_records import save_connection

    assert save_connection(engine_store, connection, expected_version=connection.version) is False
    with pytest.raises(NotFound):
        get_connection(engine_store, "t_beta", connection.id)


def test_connection_listing_pages_through_the_index_and_skips_archived(
    engine_store: Store, engine_settings: StorageSettings, connection: StoredConnection
) -> None:
    others = [
        create_connection(
            engine_store, engine_settings, TENANT, ConnectionCreate(provider="standard", name=f"n{i}")
        )
        for i in range(3)
    ]
    archive_connection(engine_store, TENANT, others[0].id)
    codec = CursorCodec(CURSOR_SECRET)
    seen, cursor = [], None
    for _ in range(5):
        page = list_connections(
            engine_store, codec, TENANT, cursor=cursor, limit=2, webhook_base_url="https://x"
        )
        seen.extend(item.id for item in page.data)
        cursor = page.next_cursor
        if not page.has_more:
            break
    assert sorted(seen) == sorted([connection.id, others[1].id, others[2].id])


# --- the log ---------------------------------------------------------------------------------------


def test_allocation_hands_out_consecutive_positions_per_log(
    engine_store: Store, connection: StoredConnection
) -> None:
    # Tenant positions are taken by `ADD`: consecutive, each allocation knowing when the one before was made
    first = engine_store._allocate(TENANT, connection.id, 2)
    second = engine_store._allocate(TENANT, connection.id, 1)
    assert (first.first_seq, second.first_seq) == (1, 3)
    assert second.tenant.prev_at_ms == first.tenant.at_ms
    # The connection's positions are only ever taken by the commit that moves its head: none yet
    assert (first.first_cseq, second.first_cseq) == (1, 1)
    assert (first.connection.expected, second.connection.expected) == (0, 0)


def test_committed_rows_read_in_order_from_both_logs(
    engine_store: Store, connection: StoredConnection
) -> None:
    _commit_as_puts(engine_store, connection, ["a", "b"])
    _commit_as_puts(engine_store, connection, ["c"])
    assert _labels(engine_store) == _labels(engine_store, connection.id) == ["a", "b", "c"]


def test_a_reader_waits_at_a_fresh_gap_and_fences_it_after_the_deadline(
    engine_store: Store, engine_settings: StorageSettings, connection: StoredConnection
) -> None:
    engine_store._allocate(TENANT, connection.id, 1)
    _commit_as_puts(engine_store, connection, ["b"])
    assert _labels(engine_store) == []
    later = _later(engine_settings, engine_settings.write_deadline_seconds + 1)
    assert _labels(later) == _labels(later, connection.id) == ["b"]
    # The fence is durable: a late writer's conditional row put now fails
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        engine_store._client.put_item(
            TableName=engine_settings.events_table,
            Item={"pk": {"S": f"T#{TENANT}"}, "sk": {"N": "1"}, "kind": {"S": "event"}},
            ConditionExpression="attribute_not_exists(pk)",
        )


def test_paging_by_limit_resumes_exactly_after_the_last_row(
    engine_store: Store, connection: StoredConnection
) -> None:
    _commit_as_puts(engine_store, connection, [f"e{i}" for i in range(5)])
    first = engine_store.read_log(TENANT, None, 0, 2)
    rest = engine_store.read_log(TENANT, None, first.position, 10)
    assert [e.document["data"]["label"] for e in first.events + rest.events] == [f"e{i}" for i in range(5)]
    assert (first.exhausted, rest.exhausted) == (False, True)


def test_a_revoked_key_stops_at_once_and_others_keep_working(engine_store: Store) -> None:
    from pullbridge.auth import hash_api_key, revoke_api_key

    old, new = issue_api_key(engine_store, TENANT), issue_api_key(engine_store, TENANT)
    assert revoke_api_key(engine_store, old) == TENANT
    with pytest.raises(Unauthorized):
        authenticate(engine_store, f"Bearer {old}")
    assert authenticate(engine_store, f"Bearer {new}") == TENANT
    assert revoke_api_key(engine_store, hash_api_key(new)) == TENANT  # by hash, as logs and listings show it
    with pytest.raises(NotFound):
        revoke_api_key(engine_store, "pb_never_issued_anywhere_000")


def test_a_blob_larger_than_an_item_round_trips_and_expires(
    engine_store: Store, engine_settings: StorageSettings
) -> None:
    import os

    data = os.urandom(900_000)  # incompressible: it must be split over several items
    engine_store.save_blob("PULL#p1", "SEEN", data)
    assert engine_store.load_blob("PULL#p1", "SEEN") == data
    assert engine_store.load_blob("PULL#p2", "SEEN") is None
    items = engine_store._client.query(
        TableName=engine_settings.control_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "PULL#p1"}},
    )["Items"]
    assert len(items) == 3
    assert all(int(item["expires_at"]["N"]) > time.time() + 86_400 for item in items)


# --- snapshots --------------------------------------------------------------------------------------------


def test_snapshots_round_trip_with_any_record_id(engine_store: Store) -> None:
    from pullbridge.storage import HASHED_KEY_PREFIX, SnapshotChange

    ids = [
        "cus_1",
        "r" * 2_000,
        "x\ud83d",
        HASHED_KEY_PREFIX + "looks-hashed",
        *(f"cus_{n:03d}" for n in range(30)),
    ]
    engine_store.write_snapshots(
        [SnapshotChange("conn_1", "customers", record_id, "h1") for record_id in ids]
    )
    assert engine_store.load_snapshot("conn_1", "customers") == dict.fromkeys(ids, "h1")
    assert engine_store.load_snapshot("conn_1", "invoices") == {}
    engine_store.write_snapshots(
        [SnapshotChange("conn_1", "customers", record_id, None) for record_id in ids[1:]]
    )
    assert engine_store.load_snapshot("conn_1", "customers") == {"cus_1": "h1"}
