"""The log protocol in storage: positions, dedupe, release, waiting on and fencing empty positions."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from pullbridge.connections import StoredConnection, archive_connection, create_connection
from pullbridge.errors import StorageUnavailable
from pullbridge.models import ConnectionCreate
from pullbridge.settings import ApiSettings
from pullbridge.storage import ConnectionChanged, ConnectionGuard, EventDraft, Store, dynamodb_client
from pullbridge.storage.keys import connection_log, tenant_log
from pullbridge.storage.log_writer import HEAD_CONTENTION_SECONDS
from pullbridge.storage.planning import KnownHead
from tests.integration.conftest import counting
from tests.support import TEST_SECRET, labelled_event

TENANT = "t_alpha"


def _draft(connection: StoredConnection, label: str, *, delivery: bool = True) -> EventDraft:
    return EventDraft(
        connection.id, labelled_event(connection.id, label), delivery_id=label if delivery else None
    )


@pytest.fixture
def connection(store: Store, settings: ApiSettings) -> StoredConnection:
    return create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )


def _labels(store: Store, connection_id: str | None = None) -> list[str]:
    read = store.read_log(TENANT, connection_id, 0, 100)
    return [event.document["data"]["label"] for event in read.events]


def _clock_at(offset_seconds: float) -> Any:
    return lambda: time.time() + offset_seconds


def _reader_past_the_deadline(settings: ApiSettings) -> Store:
    """A reader whose clock is past the write deadline of everything written so far: it fences gaps."""
    return Store(
        dynamodb_client(settings.dynamodb_endpoint),
        settings,
        clock=_clock_at(settings.write_deadline_seconds + 1),
    )


def test_events_get_consecutive_positions_in_both_logs(store: Store, connection: StoredConnection) -> None:
    store.append(TENANT, connection.id, [_draft(connection, "a"), _draft(connection, "b")])
    store.append(TENANT, connection.id, [_draft(connection, "c")])
    read = store.read_log(TENANT, None, 0, 10)
    assert [event.position for event in read.events] == [1, 2, 3]
    assert _labels(store) == _labels(store, connection.id) == ["a", "b", "c"]
    assert store.log_head(TENANT, None) == store.log_head(TENANT, connection.id) == 3


def test_a_duplicate_delivery_is_not_logged_again_and_its_position_is_released(
    store: Store, connection: StoredConnection
) -> None:
    first = store.append(TENANT, connection.id, [_draft(connection, "a")])
    again = store.append(TENANT, connection.id, [_draft(connection, "a"), _draft(connection, "b")])
    assert again.duplicates == 1
    assert again.duplicate_event_ids == first.event_ids
    assert _labels(store) == ["a", "b"]
    # Nothing is left waiting: the unused position was tombstoned, so the log reads to its end at once
    assert store.read_log(TENANT, None, 0, 10).exhausted is True
    assert store.read_log(TENANT, None, 0, 10).position == store.log_head(TENANT, None)


def test_pull_events_without_delivery_ids_are_never_deduplicated(
    store: Store, connection: StoredConnection
) -> None:
    store.append(TENANT, connection.id, [_draft(connection, "a", delivery=False)])
    store.append(TENANT, connection.id, [_draft(connection, "a", delivery=False)])
    assert _labels(store) == ["a", "a"]


def test_a_stale_guard_fails_the_commit_and_logs_nothing(store: Store, connection: StoredConnection) -> None:
    archive_connection(store, TENANT, connection.id)
    with pytest.raises(ConnectionChanged):
        store.append(
            TENANT,
            connection.id,
            [_draft(connection, "a")],
            guard=ConnectionGuard(connection.id, connection.version),
        )
    assert _labels(store) == []
    assert store.read_log(TENANT, None, 0, 10).exhausted is True


def test_a_reader_waits_at_a_position_that_is_still_being_written(
    store: Store, connection: StoredConnection
) -> None:
    store._allocate(TENANT, connection.id, 1)  # a writer took position 1 and has not committed yet
    store.append(TENANT, connection.id, [_draft(connection, "b")])
    read = store.read_log(TENANT, None, 0, 10)
    assert (read.events, read.position, read.exhausted) == ([], 0, True)


def test_a_reader_fences_a_position_abandoned_past_the_deadline(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    store._allocate(TENANT, connection.id, 1)  # a writer took position 1 and died
    store.append(TENANT, connection.id, [_draft(connection, "b")])
    later = _reader_past_the_deadline(settings)
    assert _labels(later) == ["b"]
    assert _labels(later, connection.id) == ["b"]


def test_a_late_commit_into_a_fenced_position_moves_to_a_new_position(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    # Given a writer that took position 1, and a reader that fenced it after the deadline
    allocation = store._allocate(TENANT, connection.id, 1)
    store.append(TENANT, connection.id, [_draft(connection, "b")])
    later = _reader_past_the_deadline(settings)
    assert _labels(later) == ["b"]
    # When the stalled writer finally commits there, it fails and the event lands after the reader
    items, _ = store._commit_items(allocation, [(_draft(connection, "a"), *_encoded("a", connection))], None)
    with pytest.raises(ClientError):
        store._client.transact_write_items(TransactItems=items)
    store.append(TENANT, connection.id, [_draft(connection, "a")])
    assert _labels(later) == ["b", "a"]


def _encoded(label: str, connection: StoredConnection) -> tuple[str, Any]:
    from pullbridge.storage import _encode_document

    return _encode_document(_draft(connection, label).document)


def test_a_commit_landing_between_a_readers_look_and_its_fence_is_read_not_lost(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    # Given a stalled writer at position 1 and a committed event (of another connection) at position 2
    other = create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name="d", webhook_secrets=[TEST_SECRET]),
    )
    allocation = store._allocate(TENANT, connection.id, 1)
    store.append(TENANT, other.id, [_draft(other, "b")])
    reader_client = dynamodb_client(settings.dynamodb_endpoint)
    reader = Store(reader_client, settings, clock=_clock_at(settings.write_deadline_seconds + 1))

    # When the writer commits in the instant after the reader saw the gap and before its fence lands
    def commit_first(**_: Any) -> None:
        reader_client.meta.events.unregister("before-call.dynamodb.PutItem", commit_first)
        items, _ = store._commit_items(
            allocation, [(_draft(connection, "a"), *_encoded("a", connection))], None
        )
        store._client.transact_write_items(TransactItems=items)

    reader_client.meta.events.register("before-call.dynamodb.PutItem", commit_first)
    # Then the fence fails, and the reader returns the late event in its place
    assert _labels(reader) == ["a", "b"]


def test_positions_allocated_before_the_retention_window_are_skipped_without_writes(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    store._allocate(TENANT, connection.id, 3)  # positions whose rows expired and were deleted long ago
    store.append(TENANT, connection.id, [_draft(connection, "d")])
    far_future = Store(
        dynamodb_client(settings.dynamodb_endpoint),
        settings,
        clock=_clock_at(settings.retention_days * 86_400 + 60),
    )
    with counting(far_future._client) as calls:
        read = far_future.read_log(TENANT, None, 0, 10)
    assert read.position == 4
    assert "PutItem" not in calls.names


def test_a_throttled_commit_raises_storage_unavailable_and_releases_its_position(
    store: Store, connection: StoredConnection
) -> None:
    with counting(store._client) as calls:
        calls.fail("TransactWriteItems")
        with pytest.raises(StorageUnavailable):
            store.append(TENANT, connection.id, [_draft(connection, "a")])
    store.append(TENANT, connection.id, [_draft(connection, "b")])
    assert _labels(store) == ["b"]  # readable at once: position 1 was released, not left to the deadline


def test_a_throttled_read_of_the_heads_raises_storage_unavailable_and_writes_nothing(
    store: Store, settings: ApiSettings, connection: StoredConnection
) -> None:
    with counting(store._client) as calls:
        calls.fail("BatchGetItem", "ThrottlingException")
        with pytest.raises(StorageUnavailable) as raised:
            store.append(TENANT, connection.id, [_draft(connection, "a")])
    assert raised.value.data == {"code": "ThrottlingException"}
    assert store._client.scan(TableName=settings.events_table)["Items"] == []


def test_large_batches_are_split_into_transactions_and_keep_their_order(
    store: Store, connection: StoredConnection
) -> None:
    labels = [f"e{index:03d}" for index in range(70)]
    with counting(store._client) as calls:
        result = store.append(TENANT, connection.id, [_draft(connection, label) for label in labels])
    assert len(result.event_ids) == 70
    assert calls.names.count("TransactWriteItems") == 3
    assert _labels(store) == labels


# --- the head moved inside the commit: one request when a writer knows the head --------------------


def test_a_writer_that_knows_the_head_commits_in_one_request_and_a_duplicate_takes_no_position(
    store: Store, connection: StoredConnection
) -> None:
    with counting(store._client) as first:
        store.append(TENANT, connection.id, [_draft(connection, "a")])
    with counting(store._client) as second:
        store.append(TENANT, connection.id, [_draft(connection, "b")])
    with counting(store._client) as duplicate:
        again = store.append(TENANT, connection.id, [_draft(connection, "a")])

    assert first.names == ["BatchGetItem", "TransactWriteItems"]  # a new instance reads both heads once
    assert second.names == ["TransactWriteItems"]
    assert (duplicate.names, again.duplicates) == (["TransactWriteItems"], 1)
    assert store.log_head(TENANT, None) == store.log_head(TENANT, connection.id) == 2  # nothing to release
    assert _labels(store) == _labels(store, connection.id) == ["a", "b"]
    assert store.read_log(TENANT, None, 0, 10).exhausted is True


def test_a_stale_view_of_the_head_costs_one_cancelled_commit_and_lands_after_the_other_writer(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    other_writer = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    store.append(TENANT, connection.id, [_draft(connection, "a1")])
    other_writer.append(TENANT, connection.id, [_draft(connection, "b1"), _draft(connection, "b2")])

    with counting(store._client) as calls:
        store.append(TENANT, connection.id, [_draft(connection, "a2")])

    assert calls.names == ["TransactWriteItems", "TransactWriteItems"]
    assert _labels(store) == _labels(store, connection.id) == ["a1", "b1", "b2", "a2"]
    read = store.read_log(TENANT, None, 0, 10)
    assert (read.position, read.exhausted) == (4, True)  # no gap, no tombstone


def test_a_writer_outpaced_twice_takes_its_positions_with_add_for_a_while(
    settings: ApiSettings, connection: StoredConnection
) -> None:
    now = [time.time()]
    store = Store(dynamodb_client(settings.dynamodb_endpoint), settings, clock=lambda: now[0])
    other_writer = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    other = create_connection(
        store,
        settings,
        TENANT,
        ConnectionCreate(provider="standard", name="x", webhook_secrets=[TEST_SECRET]),
    )
    store.append(TENANT, connection.id, [_draft(connection, "a1")])
    interruptions = iter(["x1", "x2", "x3"])

    def another_commit_first(**_: Any) -> None:
        label = next(interruptions, None)
        if label:
            other_writer.append(TENANT, other.id, [_draft(other, label)])

    store._client.meta.events.register("before-call.dynamodb.TransactWriteItems", another_commit_first)
    try:
        with counting(store._client) as outpaced:
            store.append(TENANT, connection.id, [_draft(connection, "a2")])
    finally:
        store._client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", another_commit_first)
    with counting(store._client) as contended:
        store.append(TENANT, connection.id, [_draft(connection, "a3")])
    now[0] += HEAD_CONTENTION_SECONDS
    with counting(store._client) as calm_again:
        store.append(TENANT, connection.id, [_draft(connection, "a4")])

    assert outpaced.names == ["TransactWriteItems", "TransactWriteItems", "UpdateItem", "TransactWriteItems"]
    # Within the contention window it goes straight to ADD; after it, the commit moves the head again
    assert contended.names == ["UpdateItem", "TransactWriteItems"]
    assert calm_again.names == ["TransactWriteItems"]
    # a2 took its position by ADD before x3 was written, so x3 follows it
    assert _labels(store) == ["a1", "x1", "x2", "a2", "x3", "a3", "a4"]
    assert _labels(store, connection.id) == ["a1", "a2", "a3", "a4"]
    assert store.read_log(TENANT, None, 0, 10).exhausted is True


def test_after_a_commit_of_unknown_outcome_the_writer_trusts_its_view_no_more(
    store: Store, connection: StoredConnection
) -> None:
    store.append(TENANT, connection.id, [_draft(connection, "a")])
    timeouts = iter([True])

    def time_out_once(**_: Any) -> None:
        if next(timeouts, False):
            raise ReadTimeoutError(endpoint_url="http://dynamodb")

    store._client.meta.events.register("before-call.dynamodb.TransactWriteItems", time_out_once)
    try:
        with pytest.raises(StorageUnavailable):
            store.append(TENANT, connection.id, [_draft(connection, "lost")])
        with counting(store._client) as calls:
            store.append(TENANT, connection.id, [_draft(connection, "b")])
    finally:
        store._client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", time_out_once)

    assert calls.names == ["BatchGetItem", "TransactWriteItems"]  # both heads read again
    assert _labels(store) == ["a", "b"]


def test_a_stale_view_of_the_connections_head_cannot_reissue_its_positions(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    store.append(TENANT, connection.id, [_draft(connection, "a1")])
    Store(dynamodb_client(settings.dynamodb_endpoint), settings).append(
        TENANT, connection.id, [_draft(connection, "b1")]
    )
    # A view of the connection's head from before b1, with a current view of the tenant's
    store._remember(connection_log(TENANT, connection.id), KnownHead(1, 0))
    store._remember(tenant_log(TENANT), KnownHead(2, 0))

    store.append(TENANT, connection.id, [_draft(connection, "a2")])

    assert _labels(store) == _labels(store, connection.id) == ["a1", "b1", "a2"]
    assert store.log_head(TENANT, None) == store.log_head(TENANT, connection.id) + 0 == 3


def test_a_writer_holding_earlier_tenant_positions_cannot_commit_after_a_later_event_of_its_connection(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    # A writer took tenant position 2 by ADD and stalls; another commits position 3 for the same connection
    store.append(TENANT, connection.id, [_draft(connection, "a")])
    stalled = store._allocate(TENANT, connection.id, 1)
    other_writer = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    other_writer.append(TENANT, connection.id, [_draft(connection, "c")])
    # Its commit, even with a current view of the connection's head, is refused: the connection's log
    # would hold it after an event that is later in the tenant's log
    store._remember(connection_log(TENANT, connection.id), KnownHead(2, 0))
    late = store._plan(TENANT, connection.id, 1, stalled.tenant)
    items, _ = store._commit_items(late, [(_draft(connection, "b"), *_encoded("b", connection))], None)
    with pytest.raises(ClientError) as refused:
        store._client.transact_write_items(TransactItems=items)
    outcome = store._classify_cancellation(
        refused.value, [(_draft(connection, "b"), *_encoded("b", connection))], None, late
    )
    assert outcome.overtaken
    # Through `append`, the writer gives the position up and lands after: both logs keep one order
    store.append(TENANT, connection.id, [_draft(connection, "b")])
    reader = _reader_past_the_deadline(settings)
    assert _labels(reader) == _labels(reader, connection.id) == ["a", "c", "b"]


def test_a_writer_that_keeps_losing_the_race_for_its_connections_head_leases_it(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    other_writer = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    store.append(TENANT, connection.id, [_draft(connection, "a1")])
    interruptions = iter(["x1", "x2"])

    def another_commit_first(**_: Any) -> None:
        label = next(interruptions, None)
        if label:
            other_writer.append(TENANT, connection.id, [_draft(connection, label)])

    store._client.meta.events.register("before-call.dynamodb.TransactWriteItems", another_commit_first)
    try:
        with counting(store._client) as calls:
            store.append(TENANT, connection.id, [_draft(connection, "a2")])
    finally:
        store._client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", another_commit_first)

    # Two races lost; then a lease on the connection's head (and tenant positions by ADD), and the commit
    assert calls.names == [
        "TransactWriteItems",
        "TransactWriteItems",
        "UpdateItem",
        "UpdateItem",
        "TransactWriteItems",
    ]
    assert _labels(store) == _labels(store, connection.id) == ["a1", "x1", "x2", "a2"]
    # The commit gave the lease back: the next writer is not held up
    head = store._client.get_item(
        TableName=settings.events_table,
        Key={"pk": {"S": connection_log(TENANT, connection.id)}, "sk": {"N": "0"}},
    )["Item"]
    assert "lease_owner" not in head
    assert "lease_until" not in head
    started = time.monotonic()
    other_writer.append(TENANT, connection.id, [_draft(connection, "x3")])
    assert time.monotonic() - started < settings.write_deadline_seconds / 2


def test_a_writer_waits_for_a_lease_another_holds_and_commits_once_it_is_given_back(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    store.append(TENANT, connection.id, [_draft(connection, "a1")])
    holder = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    token = holder._lease_head(connection_log(TENANT, connection.id))
    assert token is not None
    assert holder._lease_head(connection_log(TENANT, connection.id)) is None  # one holder at a time
    release = threading.Timer(0.3, holder._release_lease, (connection_log(TENANT, connection.id), token))
    release.start()

    started = time.monotonic()
    store.append(TENANT, connection.id, [_draft(connection, "a2")])

    assert time.monotonic() - started >= 0.25  # it waited for the lease rather than failing
    assert _labels(store) == _labels(store, connection.id) == ["a1", "a2"]


def test_a_retried_lease_whose_first_attempt_landed_is_still_ours(
    settings: ApiSettings, store: Store, connection: StoredConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore retries an `UpdateItem` whose answer timed out with the same request: the lease its first
    attempt took must read as this writer's, not as another's to wait out (the fault switch's
    `dynamodb.timeout` found this)."""
    from pullbridge.storage import log_heads

    store.append(TENANT, connection.id, [_draft(connection, "a1")])
    monkeypatch.setattr(log_heads.secrets, "token_hex", lambda _: "retried-token")
    log_key = connection_log(TENANT, connection.id)
    first_attempt = store._lease_head(log_key)  # landed; pretend its answer was lost
    assert store._lease_head(log_key) == first_attempt == "retried-token"
    monkeypatch.setattr(log_heads.secrets, "token_hex", lambda _: "another-writer")
    assert store._lease_head(log_key) is None


# --- a commit moving the head right now: what DynamoDB answers, and what the writers and readers do ------


def _fail_once(client: Any, operation: str, error: ClientError) -> None:
    """The next `operation` on `client` fails with `error`, as DynamoDB answers it; later ones go through."""

    def fail(**_: Any) -> None:
        client.meta.events.unregister(f"before-call.dynamodb.{operation}", fail)
        raise error

    client.meta.events.register(f"before-call.dynamodb.{operation}", fail)


def _transaction_conflict(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "TransactionConflictException", "Message": "item in a transaction"}}, operation
    )


def test_an_add_that_meets_another_instances_commit_on_the_head_is_retried(
    store: Store, connection: StoredConnection
) -> None:
    store.append(TENANT, connection.id, [_draft(connection, "first")])
    store._contended_until[tenant_log(TENANT)] = time.time() + 60  # the tenant's positions go by ADD
    _fail_once(store._client, "UpdateItem", _transaction_conflict("UpdateItem"))

    with counting(store._client) as calls:
        store.append(TENANT, connection.id, [_draft(connection, "a")])

    assert calls.names == ["UpdateItem", "UpdateItem", "TransactWriteItems"]
    assert _labels(store) == ["first", "a"]


def test_a_fence_that_meets_a_commit_in_flight_reads_again_instead_of_failing(
    settings: ApiSettings, store: Store, connection: StoredConnection
) -> None:
    store._allocate(TENANT, connection.id, 1)  # a writer took position 1 and died
    store.append(TENANT, connection.id, [_draft(connection, "b")])
    reader = _reader_past_the_deadline(settings)
    _fail_once(reader._client, "PutItem", _transaction_conflict("PutItem"))

    with counting(reader._client) as calls:
        labels = _labels(reader)

    # The first fence met the commit; the reader looked again, fenced, and read on, with no error
    assert labels == ["b"]
    assert calls.names.count("PutItem") == 2


def test_a_head_moving_commit_cancelled_by_a_conflict_is_planned_again_and_lands(
    store: Store, connection: StoredConnection
) -> None:
    store.append(TENANT, connection.id, [_draft(connection, "a")])
    cancelled = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * 3,
        },
        "TransactWriteItems",
    )
    _fail_once(store._client, "TransactWriteItems", cancelled)

    with counting(store._client) as calls:
        store.append(TENANT, connection.id, [_draft(connection, "b")])

    assert calls.names == ["TransactWriteItems", "TransactWriteItems"]
    assert _labels(store) == ["a", "b"]


def test_a_head_moving_commit_stopped_by_its_guard_takes_no_position(
    store: Store, connection: StoredConnection
) -> None:
    guard = ConnectionGuard(connection.id, connection.version)
    store.append(TENANT, connection.id, [_draft(connection, "a")], guard=guard)
    archive_connection(store, TENANT, connection.id)

    with counting(store._client) as calls, pytest.raises(ConnectionChanged):
        store.append(TENANT, connection.id, [_draft(connection, "b")], guard=guard)
    assert calls.names == ["TransactWriteItems"]
    assert store.log_head(TENANT, None) == 1
    assert store.read_log(TENANT, None, 0, 10).exhausted is True

    # Nothing landed, so the writer's view of the head still holds: the next commit moves it itself
    with counting(store._client) as next_commit:
        store.append(TENANT, connection.id, [_draft(connection, "c", delivery=False)])
    assert next_commit.names == ["TransactWriteItems"]
    assert _labels(store) == ["a", "c"]


# --- an `ADD` that botocore sent twice (its first attempt landed, then timed out) --------------------


def _land_then_time_out_once(client: Any, operation: str) -> None:
    """The next `operation` reaches the table and is applied, then its answer is lost (a read timeout):
    botocore sends it again, as it does after any timeout."""
    from botocore.httpsession import URLLib3Session

    def land(request: Any, **_: Any) -> None:
        client.meta.events.unregister(f"before-send.dynamodb.{operation}", land)
        URLLib3Session(timeout=10).send(request).content  # noqa: B018 - read it whole: it landed
        raise ReadTimeoutError(endpoint_url=request.url, error="Read timed out.")

    client.meta.events.register(f"before-send.dynamodb.{operation}", land)


def test_positions_of_an_add_sent_twice_keep_when_the_positions_before_them_were_taken(
    store: Store, connection: StoredConnection, settings: ApiSettings
) -> None:
    # Found by the soak: the retried `ADD` sets `alloc_at` to the value its first attempt set, and the
    # local DynamoDB leaves an attribute set to its own value out of `UPDATED_OLD`. The writer's rows then
    # said the positions before them were taken at 0 (expired history), so readers skipped that gap
    # without fencing it, and an event committed into it later was behind every reader.
    store.append(TENANT, connection.id, [_draft(connection, "first")])
    store._allocate(TENANT, connection.id, 1)  # another writer holds position 2, not yet committed
    store._contended_until[tenant_log(TENANT)] = time.time() + 60  # positions go by `ADD`
    _land_then_time_out_once(store._client, "UpdateItem")

    store.append(TENANT, connection.id, [_draft(connection, "after")])  # positions 3 (orphaned) and 4

    rows = store._client.query(
        TableName=settings.events_table,
        KeyConditionExpression="pk = :pk AND sk > :zero",
        ExpressionAttributeValues={":pk": {"S": tenant_log(TENANT)}, ":zero": {"N": "0"}},
        ConsistentRead=True,
    )["Items"]
    (row,) = [item for item in rows if item.get("kind", {}).get("S") == "event" and item["sk"]["N"] == "4"]
    assert int(row["prev_at"]["N"]) > (time.time() - 60) * 1000
    # A reader within the write deadline waits at the gap (2 and 3): it does not pass it
    read = store.read_log(TENANT, None, 0, 100)
    assert [event.document["data"]["label"] for event in read.events] == ["first"]
    assert read.position == 1
