"""The request counting and the redelivery bookkeeping of `make bench`'s consumers benchmark
(bench/bench_consumers.py), on a stand-in WSGI application and made-up deliveries."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from bench.bench_consumers import (
    COUNTS_PATH,
    CountingApp,
    Redeliveries,
    RequestCounts,
    epoch,
    items_read,
)


def _stand_in(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Refuses a transaction (as DynamoDB cancels one), answers anything else."""
    refused = environ.get("HTTP_X_AMZ_TARGET", "").endswith("TransactWriteItems")
    start_response("400 Bad Request" if refused else "200 OK", [("content-type", "application/json")])
    return [b"{", b"}"]


def _call(app: CountingApp, target: str | None = None, path: str = "/", query: str = "") -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query}
    if target is not None:
        environ["HTTP_X_AMZ_TARGET"] = target
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return statuses[0], body


def test_requests_are_counted_by_operation_with_the_refused_ones() -> None:
    app = CountingApp(_stand_in)
    for target in ["DynamoDB_20120810.Query"] * 2 + ["DynamoDB_20120810.TransactWriteItems", None]:
        assert _call(app, target) != ("", b"")

    assert app.counts.requests == {"Query": 2, "TransactWriteItems": 1, "other": 1}
    assert app.counts.refused == {"TransactWriteItems": 1}
    assert app.counts.total == 4
    assert set(app.counts.seconds) == {"Query", "TransactWriteItems", "other"}


def test_the_answer_passes_through_whole() -> None:
    assert _call(CountingApp(_stand_in), "DynamoDB_20120810.GetItem") == ("200 OK", b"{}")


def test_the_counts_path_answers_the_counts_and_resets_them_only_when_asked() -> None:
    app = CountingApp(_stand_in)
    _call(app, "DynamoDB_20120810.GetItem")

    status, body = _call(app, path=COUNTS_PATH)
    assert status == "200 OK"
    assert RequestCounts.from_json(json.loads(body)).requests == {"GetItem": 1}
    assert app.counts.total == 1  # reading is not a request, and did not reset

    _call(app, path=COUNTS_PATH, query="reset=1")
    assert app.counts.total == 0


def test_counts_add_up_and_survive_json() -> None:
    counts = RequestCounts()
    counts.requests.update({"Query": 2})
    counts.refused.update({"Query": 1})
    counts.seconds["Query"] = 0.5
    total = RequestCounts.from_json(counts.to_json())
    total.add(counts)

    assert total.requests == {"Query": 4}
    assert total.refused == {"Query": 2}
    assert total.seconds == {"Query": 1.0}
    assert total.describe() == "Query 4 (2 refused, 1000 ms)"


def _read(app: CountingApp, target: str, request: dict[str, Any]) -> None:
    body = json.dumps(request).encode()
    environ: dict[str, Any] = {
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{target}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    b"".join(app(environ, lambda status, headers, exc_info=None: None))


def test_queries_and_gets_are_told_apart_by_what_they_read() -> None:
    app = CountingApp(_stand_in)
    pk = {"ExpressionAttributeValues": {":pk": {"S": "T#t_1#K#cns_1"}}}
    _read(app, "Query", pk)
    _read(app, "Query", {"ExpressionAttributeValues": {":pk": {"S": "T#t_1#C#conn_1"}}})
    _read(app, "GetItem", {"Key": {"pk": {"S": "KEY#abc"}, "sk": {"S": "KEY"}}})
    _read(app, "GetItem", {"Key": {"pk": {"S": "CONSUMER#cns_1"}, "sk": {"S": "CONSUMER"}}})

    assert app.counts.queries == {
        "Query consumer": 1,
        "Query log": 1,
        "GetItem API key": 1,
        "GetItem consumer record": 1,
    }
    assert app.counts.requests == {"Query": 2, "GetItem": 2}
    assert "Query 2 (1 consumer (0 returned" in app.counts.describe()


def test_reads_count_the_items_they_read() -> None:
    assert items_read("Query", b'{"Items": [{}, {}], "Count": 2, "ScannedCount": 3}') == 3
    assert items_read("GetItem", b'{"Item": {"pk": {"S": "a"}}}') == 1
    assert items_read("GetItem", b"{}") == 0
    assert items_read("BatchGetItem", b'{"Responses": {"t": [{}, {}]}, "UnprocessedKeys": {}}') == 2


def _delivery(event_id: str, count: int, expires: str) -> dict[str, Any]:
    return {
        "ack_id": f"ack-{event_id}-{count}",
        "delivery_count": count,
        "lease_expires_at": expires,
        "event": {"id": event_id},
    }


def test_a_redelivery_is_late_by_the_time_since_the_previous_lease_expired_and_is_acked() -> None:
    seen = Redeliveries()
    seen.received([_delivery("evt_a", 1, "2026-11-30T12:00:01.000Z")], at=epoch("2026-11-30T12:00:00.000Z"))
    assert seen.late_ms == []
    assert seen.acks.empty()  # a first delivery is left to expire

    seen.received([_delivery("evt_a", 2, "2026-11-30T12:00:02.250Z")], at=epoch("2026-11-30T12:00:01.250Z"))

    assert [round(ms) for ms in seen.late_ms] == [250]
    assert seen.acks.get_nowait() == "ack-evt_a-2"
    assert seen.delivery_counts == {1: 1, 2: 1}


def test_a_redelivery_of_a_lease_never_seen_is_no_sample() -> None:
    seen = Redeliveries()
    seen.received([_delivery("evt_b", 3, "2026-11-30T12:00:02.000Z")], at=epoch("2026-11-30T12:00:01.000Z"))
    assert seen.late_ms == []


def test_epoch_reads_the_contracts_time_format() -> None:
    assert epoch("1970-01-01T00:00:01.500Z") == 1.5
