"""Records: the latest state of each upstream record, kept by the webhooks that carry the whole object in
the same commit as their event, and served by `GET /records` in record id order."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from pullbridge.connections import create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.settings import ApiSettings
from pullbridge.storage import EventDraft, RecordChange, Store
from tests.integration.test_ingest_providers import _create, _github, _stripe, _webhook
from tests.paths import FIXTURES_DIR
from tests.support import TEST_SECRET, api_event, json_body, labelled_event, lambda_context

CUSTOMER_UPDATED = FIXTURES_DIR / "stripe" / "webhook_events" / "customer_updated.json"


def _get(api: ModuleType, api_key: str, path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
    response = api.lambda_handler(
        api_event("list_events.json", api_key, path=path, query=query), lambda_context()
    )
    return response["statusCode"], json_body(response)


def _stripe_webhook(ingest: ModuleType, connection_id: str, body: bytes) -> list[str]:
    response = ingest.lambda_handler(
        _webhook(connection_id, body, _stripe(body, connection_id)), lambda_context()
    )
    assert response["statusCode"] == 200, response["body"]
    return list(json_body(response)["event_ids"])


def test_a_webhook_that_carries_the_object_keeps_its_record_with_its_event(
    api: ModuleType, ingest: ModuleType, api_key: str
) -> None:
    connection_id = _create(api, api_key, "stripe", None)
    body = CUSTOMER_UPDATED.read_bytes()
    (event_id,) = _stripe_webhook(ingest, connection_id, body)
    customer = json.loads(body)["data"]["object"]

    status, page = _get(api, api_key, "/records", {"connection_id": connection_id, "collection": "customers"})
    assert status == 200
    (record,) = page["data"]
    assert record["record_id"] == customer["id"]
    assert record["data"] == customer
    assert (record["provider"], record["collection"], record["deleted"]) == ("stripe", "customers", False)
    assert record["last_event_id"] == event_id
    assert record["first_seen_at"] == record["changed_at"]
    assert page["has_more"] is False

    status, one = _get(api, api_key, f"/records/{connection_id}/customers/{customer['id']}")
    assert (status, one) == (200, record)


def test_a_delete_leaves_a_tombstone_with_the_data_last_seen(
    api: ModuleType, ingest: ModuleType, api_key: str
) -> None:
    connection_id = _create(api, api_key, "stripe", None)
    updated = json.loads(CUSTOMER_UPDATED.read_bytes())
    _stripe_webhook(ingest, connection_id, json.dumps(updated).encode())
    deleted = updated | {"id": "evt_deleted_1", "type": "customer.deleted"}
    (delete_id,) = _stripe_webhook(ingest, connection_id, json.dumps(deleted).encode())

    query = {"connection_id": connection_id, "collection": "customers"}
    assert _get(api, api_key, "/records", query)[1]["data"] == []
    (tombstone,) = _get(api, api_key, "/records", query | {"include_deleted": "true"})[1]["data"]
    assert (tombstone["deleted"], tombstone["last_event_id"]) == (True, delete_id)
    assert tombstone["data"]["id"] == updated["data"]["object"]["id"]
    assert tombstone["first_seen_at"] <= tombstone["changed_at"]


def test_a_hundred_thousandth_of_a_collection_pages_through_in_record_id_order(
    api: ModuleType, api_key: str, store: Store, settings: ApiSettings
) -> None:
    """250 records (written as pull events with their records), read back completely, 100 a page."""
    connection = create_connection(
        store,
        settings,
        "t_alpha",
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )
    ids = [f"rec_{n:04d}" for n in range(250)]
    for start in range(0, len(ids), 20):
        drafts = [
            EventDraft(
                connection.id,
                labelled_event(connection.id, record_id) | {"collection": "things"},
                record=RecordChange(connection.id, "things", record_id, {"n": record_id}),
            )
            for record_id in ids[start : start + 20]
        ]
        store.append("t_alpha", connection.id, drafts)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        query = {"connection_id": connection.id, "collection": "things", "limit": "100"}
        if cursor:
            query["cursor"] = cursor
        status, page = _get(api, api_key, "/records", query)
        assert status == 200
        assert len(page["data"]) <= 100
        seen += [record["record_id"] for record in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == sorted(ids)


@pytest.mark.parametrize(
    ("query", "status", "key"),
    [
        ({"collection": "customers"}, 400, "validation_error"),
        ({"connection_id": "conn_x"}, 400, "validation_error"),
        ({"connection_id": "conn_unknown", "collection": "customers"}, 404, "connection_not_found"),
        (
            {"connection_id": "{own}", "collection": "customers", "cursor": "forged.cursor"},
            400,
            "invalid_cursor",
        ),
        ({"connection_id": "{own}", "collection": "customers", "limit": "501"}, 400, "validation_error"),
    ],
)
def test_bad_record_queries_get_the_contracts_error(
    api: ModuleType, api_key: str, query: dict[str, str], status: int, key: str
) -> None:
    own = _create(api, api_key, "stripe", None)
    query = {name: value.replace("{own}", own) for name, value in query.items()}
    answer_status, answer = _get(api, api_key, "/records", query)
    assert (answer_status, answer["error"]["key"]) == (status, key)


def test_another_tenants_connection_and_records_are_unknown(
    api: ModuleType, ingest: ModuleType, api_key: str, other_api_key: str
) -> None:
    connection_id = _create(api, api_key, "stripe", None)
    body = CUSTOMER_UPDATED.read_bytes()
    _stripe_webhook(ingest, connection_id, body)
    customer_id = json.loads(body)["data"]["object"]["id"]
    query = {"connection_id": connection_id, "collection": "customers"}
    assert _get(api, other_api_key, "/records", query)[0] == 404
    assert _get(api, other_api_key, f"/records/{connection_id}/customers/{customer_id}")[0] == 404
    assert (
        _get(api, api_key, f"/records/{connection_id}/customers/cus_nobody")[1]["error"]["key"]
        == "record_not_found"
    )


def test_an_older_delivery_is_logged_as_stale_and_leaves_the_newer_record(
    store: Store, settings: ApiSettings
) -> None:
    connection = create_connection(
        store,
        settings,
        "t_alpha",
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )

    def deliver(label: str, version: float) -> str:
        draft = EventDraft(
            connection.id,
            labelled_event(connection.id, label) | {"collection": "things"},
            delivery_id=f"d_{label}",
            record=RecordChange(connection.id, "things", "thing_1", {"label": label}, version=version),
        )
        (event_id,) = store.append("t_alpha", connection.id, [draft]).event_ids
        return event_id

    newer = deliver("newer", 200.0)
    deliver("older", 100.0)  # arrives late: an earlier state of the same record
    same_second = deliver("same", 200.0)  # equal versions cannot be ordered: the later arrival stands

    events = store.read_log("t_alpha", None, 0, 10).events
    assert [(event.document["data"]["label"], event.document.get("stale", False)) for event in events] == [
        ("newer", False),
        ("older", True),
        ("same", False),
    ]
    record = store.get_record(connection.id, "things", "thing_1")
    assert record is not None
    assert (record.data, record.last_event_id) == ({"label": "same"}, same_second)
    assert newer != same_second


def test_real_github_deliveries_replayed_out_of_order_leave_the_newer_issue(
    api: ModuleType, ingest: ModuleType, api_key: str
) -> None:
    """GitHub's published `issues` payloads for issue #1: reopened (updated 2021-10-11) arrives before
    opened (updated 2019-05-15), as redeliveries can. The older is logged stale; the record stays newer."""
    connection_id = _create(api, api_key, "github", None)
    for name in ("reopened", "opened"):
        body = (FIXTURES_DIR / "github" / "issues" / f"{name}.payload.json").read_bytes()
        response = ingest.lambda_handler(
            _webhook(connection_id, body, _github("issues")(body, connection_id)), lambda_context()
        )
        assert response["statusCode"] == 200, response["body"]

    events = _get(api, api_key, "/events", {"connection_id": connection_id})[1]["data"]
    assert [(event["type"], event["stale"]) for event in events] == [
        ("issues.reopened", False),
        ("issues.opened", True),
    ]
    status, record = _get(api, api_key, f"/records/{connection_id}/issues/1")
    assert status == 200
    assert record["upstream_updated_at"].startswith("2021-10-11T16:40:56")
    assert record["last_event_id"] == events[0]["id"]
    assert record["data"]["state"] == "open"


def test_a_change_without_its_object_is_checked_against_the_record_and_writes_nothing(
    store: Store, settings: ApiSettings
) -> None:
    """HubSpot's webhooks tell of a property change, not the object: an older one is logged stale, a
    newer one is not, and neither touches the record the scans keep."""
    connection = create_connection(
        store,
        settings,
        "t_alpha",
        ConnectionCreate(provider="standard", name="c", webhook_secrets=[TEST_SECRET]),
    )

    def draft(label: str, change: RecordChange) -> EventDraft:
        document = labelled_event(connection.id, label) | {"collection": "contacts"}
        return EventDraft(connection.id, document, delivery_id=f"d_{label}", record=change)

    scanned = RecordChange(connection.id, "contacts", "101", {"email": "a@example.com"}, version=200.0)
    (scan_event,) = store.append("t_alpha", connection.id, [draft("scan", scanned)]).event_ids
    for label, version in (("before", 150.0), ("after", 250.0)):
        check = RecordChange(connection.id, "contacts", "101", None, version=version, check_only=True)
        store.append("t_alpha", connection.id, [draft(label, check)])

    events = store.read_log("t_alpha", None, 0, 10).events
    assert [(e.document["data"]["label"], e.document.get("stale", False)) for e in events] == [
        ("scan", False),
        ("before", True),
        ("after", False),
    ]
    record = store.get_record(connection.id, "contacts", "101")
    assert record is not None
    assert (record.data, record.last_event_id) == ({"email": "a@example.com"}, scan_event)


def test_one_records_history_is_its_events_in_log_order(
    api: ModuleType, ingest: ModuleType, api_key: str
) -> None:
    """`GET /events?record_id=` (what the console shows beside a record): its events and no other's."""
    connection_id = _create(api, api_key, "stripe", None)
    updated = json.loads(CUSTOMER_UPDATED.read_bytes())
    first = _stripe_webhook(ingest, connection_id, json.dumps(updated).encode())
    other = json.loads(json.dumps(updated))
    other["id"], other["data"]["object"]["id"] = "evt_other_1", "cus_someone_else"
    _stripe_webhook(ingest, connection_id, json.dumps(other).encode())
    deleted = updated | {"id": "evt_deleted_2", "type": "customer.deleted"}
    second = _stripe_webhook(ingest, connection_id, json.dumps(deleted).encode())

    record_id = updated["data"]["object"]["id"]
    status, page = _get(api, api_key, "/events", {"connection_id": connection_id, "record_id": record_id})
    assert status == 200
    assert [event["id"] for event in page["data"]] == first + second
    assert {event["record_id"] for event in page["data"]} == {record_id}
    status, none = _get(api, api_key, "/events", {"connection_id": connection_id, "record_id": "cus_nobody"})
    assert (status, none["data"]) == (200, [])
    # The cursor is bound to the filter: it cannot be replayed on another record's history.
    status, error = _get(
        api,
        api_key,
        "/events",
        {"connection_id": connection_id, "record_id": "cus_x", "cursor": page["next_cursor"]},
    )
    assert (status, error["error"]["type"]) == (400, "bad_request")
