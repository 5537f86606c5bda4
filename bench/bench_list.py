"""`GET /events` read amplification: items DynamoDB read ÷ items returned, through the API handler, for an
unfiltered page and for a page filtered to a connection holding 1% of a 10,000-event log."""

from __future__ import annotations

import json
from typing import Any

from bench.bench_common import TENANT, Rig, figure, log, metered
from pullbridge.auth import issue_api_key
from pullbridge.connections import create_connection
from pullbridge.models import ConnectionCreate
from pullbridge.storage import EventDraft, Store, _encode_document
from pullbridge.storage.planning import head_after
from tests.support import TEST_SECRET, api_event, labelled_event, lambda_context

LOG_SIZE = 10_000
RARE_EVERY = 100  # one event in 100 belongs to the rare connection: 1% of the log
PAGE = 100
RARE_TYPE = "rare.happened"


def seed_log(store: Store, tenant_id: str, plan: list[tuple[str, str]]) -> None:
    """Log events in `plan` order ((connection, type) each) in the store's own row format, but with batched
    unconditional puts: one transaction per event would cost moto O(table) each (it deep-copies tables).
    Tenant positions are allocated by the real `ADD` on the head, one allocation per run of a connection,
    and each run's commit moves the connection's head with its own conditional update, as
    `_commit_as_puts` in tests/integration/test_storage_engines.py does: readers of a connection's log
    read no further than its head."""
    runs: list[list[tuple[str, str, int]]] = []
    for n, (connection_id, event_type) in enumerate(plan):
        if runs and runs[-1][0][0] == connection_id and len(runs[-1]) < 500:
            runs[-1].append((connection_id, event_type, n))
        else:
            runs.append([(connection_id, event_type, n)])
    requests: list[dict[str, Any]] = []
    for run in runs:
        connection_id = run[0][0]
        pending = []
        for _, event_type, n in run:
            draft = EventDraft(
                connection_id, {**labelled_event(connection_id, f"inv_{n}"), "type": event_type}
            )
            pending.append((draft, *_encode_document(draft.document)))
        allocation = store._allocate(tenant_id, connection_id, len(pending))
        items, _ = store._commit_items(allocation, pending, None)
        for item in items:
            if "Update" in item:
                head_move: dict[str, Any] = dict(item["Update"])
                head_move.pop("ReturnValuesOnConditionCheckFailure", None)
                store._client.update_item(**head_move)
            else:
                requests.append({"PutRequest": {"Item": item["Put"]["Item"]}})
        store._remember(allocation.connection.log_key, head_after(allocation.connection))
    table = store._events_table
    for start in range(0, len(requests), 25):
        store._batch_write(table, requests[start : start + 25])


def _page(api: Any, key: str, query: dict[str, str]) -> tuple[int, int, dict[str, Any]]:
    """(items read, items returned, page) of one `GET /events`, read by the handler's own client."""
    with metered(api.store._client) as meter:
        response = api.lambda_handler(api_event("list_events.json", key, query=query), lambda_context())
    assert response["statusCode"] == 200, response
    page = json.loads(response["body"])
    log(f"GET /events {query}: {len(page['data'])} returned, reads {dict(meter.items_read)}")
    return meter.total_items_read, len(page["data"]), page


def run(rig: Rig) -> None:
    settings = rig.fresh_tables()
    store = rig.store(settings)
    api = rig.function("api")
    key = issue_api_key(store, TENANT, name="bench")
    common, rare = (
        create_connection(
            store,
            settings,
            TENANT,
            ConnectionCreate(provider="standard", name=name, webhook_secrets=[TEST_SECRET]),
        )
        for name in ("common", "rare")
    )
    plan = [
        (rare.id, RARE_TYPE) if n % RARE_EVERY == RARE_EVERY // 2 else (common.id, "common.happened")
        for n in range(LOG_SIZE)
    ]
    seed_log(store, TENANT, plan)
    log(f"seeded a {LOG_SIZE}-event log, {LOG_SIZE // RARE_EVERY} of them on one connection")
    ratios = {}
    # An unfiltered page from the middle of the log, reached by its cursor
    _, _, first = _page(api, key, {"limit": str(PAGE)})
    read, returned, _ = _page(api, key, {"limit": str(PAGE), "cursor": first["next_cursor"]})
    ratios["unfiltered"] = read / returned
    read, returned, _ = _page(api, key, {"limit": str(PAGE), "connection_id": rare.id})
    ratios["connection_1pct"] = read / returned
    figure("list_read_amplification", max(ratios.values()))
    for name, ratio in ratios.items():
        figure(f"list_read_amplification_{name}", ratio)
    # Not in the table, but a bound worth knowing: a filter no index serves reads up to 1,000 log rows
    read, returned, _ = _page(api, key, {"limit": str(PAGE), "type": RARE_TYPE})
    figure("list_read_amplification_type_filter_1pct", read / max(returned, 1))
