"""The soak's checker (bench/soak/checker.py) catches what it claims: each hand-built history of a broken
product gives the matching violation, naming the history lines involved, and its correct twin gives none.

The histories are what the soak records (one dict a line); `Story` builds them line by line. The same
checker runs on real broken builds end to end in tests/e2e/test_soak.py.
"""

from __future__ import annotations

import copy
from typing import Any

from bench.soak.checker import (
    DELETE_FROM_FAILED_SCAN,
    MUTATION_DUPLICATED,
    MUTATION_LOG,
    MUTATION_UPSTREAM,
    PHANTOM_DELETE,
    POLLER_DUPLICATE,
    POLLER_GAP,
    POLLER_ORDER,
    PULL_UNFINISHED,
    RECORDS_MISMATCH,
    SCAN_REPLAY,
    UNEXPLAINED_5XX,
    WEBHOOK_ANSWER,
    WEBHOOK_DUPLICATED,
    WEBHOOK_LOST,
    WEBHOOK_UNKNOWN,
    Report,
    check,
    event_key,
)

CONN = "conn_s"
SUB = "sub_s"
CONSUMER = "cns_1"
T0 = 1_800_000_000.0


def iso(moment: float) -> str:
    from pullbridge.clock import to_iso

    return to_iso(moment)


class Story:
    """A history, line by line, with the setup line first and the end's lines added by `end()`."""

    def __init__(self, *, consumers: list[dict[str, Any]] | None = None) -> None:
        self.lines: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.pulls: list[dict[str, Any]] = []
        self.mutations: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.add(
            "setup",
            connections={"stripe": {"id": CONN, "provider": "stripe"}},
            subscriptions=[
                {"id": SUB, "connection_id": CONN, "provider": "stripe", "collection": "customers"}
            ],
            consumers=consumers or [],
            markers={"stripe/customers": "description"},
        )

    def add(self, kind: str, /, **fields: Any) -> int:
        line = {"n": len(self.lines), "t": kind, "actor": "test", **fields}
        self.lines.append(line)
        return int(line["n"])

    def event(
        self,
        event_id: str,
        *,
        record: str = "cus_1",
        data: Any = None,
        source: str = "webhook",
        action: str = "updated",
        pull_id: str | None = None,
        at: float = T0,
        type_: str | None = None,
    ) -> dict[str, Any]:
        event = {
            "id": event_id,
            "connection_id": CONN,
            "provider": "stripe",
            "collection": "customers",
            "type": type_ or f"customer.{action}",
            "action": action,
            "record_id": record,
            "source": source,
            "pull_id": pull_id,
            "received_at": iso(at),
            "data": {"id": record} if data is None else data,
            "stale": False,
        }
        self.log.append(event)
        return event

    def webhook(self, delivery: str, event: dict[str, Any] | None, status: int | None, **fields: Any) -> int:
        key = (
            event_key(CONN, event["type"], event["record_id"], event["data"]) if event else fields.pop("key")
        )
        answered = [event["id"]] if event and status == 200 else None
        return self.add(
            "webhook",
            connection_id=CONN,
            delivery_id=delivery,
            key=key,
            after=fields.pop("after", "first"),
            status=status,
            event_ids=fields.pop("event_ids", answered),
            **fields,
        )

    def upstream(self, record: str, change: str, state: dict[str, Any], at: float) -> int:
        return self.add(
            "upstream",
            provider="stripe",
            collection="customers",
            record_id=record,
            change=change,
            state=state,
            changed_at=at,
        )

    def end(self, *, initial: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The history with the end's lines: the log, the pulls, the mutations (the log's order is its
        position order)."""
        lines = copy.deepcopy(self.lines)
        story = Story.__new__(Story)
        story.lines = lines
        story.add("upstream_initial", provider="stripe", collection="customers", records=initial or {})
        for position, event in enumerate(self.log, start=1):
            story.add("log", position=position, event=event)
        story.add("pulls", pulls=self.pulls)
        story.add("mutations", mutations=self.mutations)
        return story.lines


def kinds(report: Report) -> list[str]:
    return sorted(violation.kind for violation in report.violations)


def run(story: Story, **end: Any) -> tuple[Report, list[dict[str, Any]]]:
    history = story.end(**end)
    return check(history, story.faults), history


# --- webhooks --------------------------------------------------------------------------------------------


def test_a_webhook_answered_2xx_once_in_the_log_and_one_redelivered_after_a_5xx_are_correct() -> None:
    story = Story()
    first = story.event("evt_1", data={"id": "cus_1", "v": 1})
    second = story.event("evt_2", data={"id": "cus_1", "v": 2})
    story.webhook("d1", first, 200)
    story.webhook("d1", first, 200, after="2xx")  # a redelivery after a 2xx: the same event
    story.webhook("d2", second, 503)
    story.webhook("d2", second, None, after="5xx")  # a lost answer
    story.webhook("d2", second, 200, after="5xx")
    report, _ = run(story)
    assert report.violations == []
    assert report.checked["deliveries answered 2xx after a 5xx"] == 1


def test_a_webhook_answered_2xx_but_not_in_the_log_is_lost() -> None:
    story = Story()
    event = story.event("evt_1")
    story.log.clear()  # the commit never happened, yet the answer was 2xx
    line = story.webhook("d1", event, 200)
    report, _ = run(story)
    assert kinds(report) == [WEBHOOK_LOST]
    assert report.violations[0].lines == (line,)


def test_a_webhook_answered_5xx_then_redelivered_and_logged_twice_is_duplicated() -> None:
    story = Story()
    event = story.event("evt_1", data={"id": "cus_1", "v": 1})
    again = copy.deepcopy(event) | {"id": "evt_2"}
    story.log.append(again)  # the first attempt landed, and the redelivery was stored anew
    first = story.webhook("d1", event, 500)
    second = story.webhook("d1", again, 200, after="5xx")
    report, history = run(story)
    assert kinds(report) == [WEBHOOK_DUPLICATED]
    violation = report.violations[0]
    assert {first, second} <= set(violation.lines)
    logged = [history[line]["event"]["id"] for line in violation.lines if history[line]["t"] == "log"]
    assert logged == ["evt_1", "evt_2"]


def test_a_redelivery_answered_with_another_event_id_is_reported() -> None:
    story = Story()
    event = story.event("evt_1")
    story.webhook("d1", event, 200)
    line = story.webhook("d1", event, 200, after="2xx", event_ids=["evt_other"])
    report, _ = run(story)
    assert kinds(report) == [WEBHOOK_ANSWER]
    assert report.violations[0].lines[-1] == line


def test_a_webhook_event_no_delivery_sent_is_reported() -> None:
    story = Story()
    story.event("evt_1")
    report, _ = run(story)
    assert kinds(report) == [WEBHOOK_UNKNOWN]


# --- pollers ---------------------------------------------------------------------------------------------


def _logged(story: Story, count: int) -> list[str]:
    ids = []
    for index in range(1, count + 1):
        event = story.event(f"evt_{index}", record=f"r{index}")
        story.webhook(f"d{index}", event, 200)
        ids.append(event["id"])
    return ids


def test_a_poller_that_saw_every_event_once_in_order_is_correct() -> None:
    story = Story()
    ids = _logged(story, 4)
    story.add("poll", poller="p", filters={}, cursor=None, event_ids=ids[:2], next_cursor="c1")
    story.add("poll", poller="p", filters={}, cursor="c1", event_ids=[], next_cursor="c1")
    story.add("poll", poller="p", filters={}, cursor="c1", event_ids=ids[2:], next_cursor="c2")
    story.add("poll", poller="q", filters={"connection_id": "conn_other"}, cursor=None, event_ids=[])
    report, _ = run(story)
    assert report.violations == []


def test_a_reader_that_skips_a_gap_leaves_its_poller_without_the_event_written_there() -> None:
    story = Story()
    ids = _logged(story, 3)
    story.add("poll", poller="p", filters={}, cursor=None, event_ids=ids[:1], next_cursor="c1")
    passed = story.add("poll", poller="p", filters={}, cursor="c1", event_ids=ids[2:], next_cursor="c2")
    report, history = run(story)
    assert kinds(report) == [POLLER_GAP]
    violation = report.violations[0]
    assert "evt_2" in violation.message
    # the event's log line, then the page that went past it
    assert history[violation.lines[0]]["event"]["id"] == "evt_2"
    assert violation.lines[1] == passed


def test_a_poller_that_saw_an_event_twice_or_out_of_order_is_reported() -> None:
    story = Story()
    ids = _logged(story, 3)
    story.add("poll", poller="p", filters={}, cursor=None, event_ids=[ids[0], ids[2]], next_cursor="c1")
    story.add("poll", poller="p", filters={}, cursor="c1", event_ids=[ids[1], ids[2]], next_cursor="c2")
    report, _ = run(story)
    assert kinds(report) == [POLLER_DUPLICATE, POLLER_ORDER]


# --- consumers -------------------------------------------------------------------------------------------

WAIT = 4


def _consumer_story() -> tuple[Story, str]:
    story = Story(
        consumers=[
            {
                "id": CONSUMER,
                "name": "c",
                "filters": {},
                "ordering": "record",
                "max_deliveries": None,
                "ack_wait_seconds": WAIT,
            }
        ]
    )
    event = story.event("evt_1")
    story.webhook("d1", event, 200)
    return story, event["id"]


def _receive(story: Story, worker: str, at: float, event_id: str, ack_id: str, count: int) -> int:
    return story.add(
        "receive",
        consumer=CONSUMER,
        worker=worker,
        status=200,
        deliveries=[
            {
                "event_id": event_id,
                "ack_id": ack_id,
                "delivery_count": count,
                "lease_expires_at": iso(at + WAIT),
            }
        ],
        at=at,
        until=at,
    )


def _settle(story: Story, worker: str, at: float, op: str, ack_ids: list[str], **fields: Any) -> int:
    fields.setdefault("expired", [])
    return story.add(
        "settle", consumer=CONSUMER, worker=worker, op=op, ack_ids=ack_ids, ok=True, at=at, until=at, **fields
    )


def _drained(story: Story, at: float) -> None:
    story.add("dead_letters", consumer=CONSUMER, worker="d", rows=[], at=at, until=at)
    story.add("drained", consumer=CONSUMER, worker="d", at=at)


def test_a_late_ack_reported_expired_and_the_redelivery_acked_is_correct() -> None:
    story, event_id = _consumer_story()
    _receive(story, "w1", T0, event_id, "a1", 1)
    _receive(story, "w2", T0 + WAIT + 1, event_id, "a2", 2)
    _settle(story, "w1", T0 + WAIT + 2, "ack", ["a1"], expired=["a1"])
    _settle(story, "w2", T0 + WAIT + 3, "ack", ["a2"])
    _drained(story, T0 + 20)
    report, _ = run(story)
    assert report.violations == []


def test_an_ack_answered_acked_while_its_lease_ran_out_on_the_way_counts_as_acked() -> None:
    story, event_id = _consumer_story()
    _receive(story, "w1", T0, event_id, "a1", 1)
    story.add(  # sent before the lease ran out, answered after: the server acked it in time
        "settle", consumer=CONSUMER, worker="w1", op="ack", ack_ids=["a1"], expired=[], ok=True,
        at=T0 + WAIT - 0.5, until=T0 + WAIT + 0.5,
    )  # fmt: skip
    _drained(story, T0 + 20)
    report, _ = run(story)
    assert report.violations == []


def test_a_consumer_that_acks_before_the_lease_check_answers_a_late_ack_as_acked() -> None:
    story, event_id = _consumer_story()
    first = _receive(story, "w1", T0, event_id, "a1", 1)
    _receive(story, "w2", T0 + WAIT + 1, event_id, "a2", 2)
    late = _settle(story, "w1", T0 + WAIT + 2, "ack", ["a1"])  # answered acked: the bug
    _settle(story, "w2", T0 + WAIT + 3, "ack", ["a2"])
    _drained(story, T0 + 20)
    report, _ = run(story)
    assert kinds(report) == ["consumer.ack_after_expiry"]
    assert report.violations[0].lines == (first, late)


def test_a_lease_given_to_a_second_worker_while_the_first_holds_it_is_reported() -> None:
    story, event_id = _consumer_story()
    first = _receive(story, "w1", T0, event_id, "a1", 1)
    second = _receive(story, "w2", T0 + 1, event_id, "a2", 2)
    _settle(story, "w2", T0 + 2, "ack", ["a2"])
    _drained(story, T0 + 20)
    report, _ = run(story)
    assert kinds(report) == ["consumer.overlapping_leases"]
    assert report.violations[0].lines == (first, second)


def test_a_higher_delivery_count_after_a_receive_that_lost_its_answer_is_explained() -> None:
    story, event_id = _consumer_story()
    story.add("receive", consumer=CONSUMER, worker="w1", status=503, deliveries=[], at=T0, until=T0)
    _receive(story, "w2", T0 + WAIT + 1, event_id, "a2", 2)  # the lost receive leased it once
    _settle(story, "w2", T0 + WAIT + 2, "ack", ["a2"])
    _drained(story, T0 + 20)
    report, _ = run(story)
    assert report.violations == []
    ((violation, why),) = report.explained
    assert violation.kind == "consumer.delivery_count"
    assert "no answer" in why


def test_a_higher_delivery_count_with_every_receive_answered_is_a_violation() -> None:
    story, event_id = _consumer_story()
    _receive(story, "w2", T0, event_id, "a2", 2)
    _settle(story, "w2", T0 + 1, "ack", ["a2"])
    _drained(story, T0 + 20)
    report, _ = run(story)
    assert kinds(report) == ["consumer.delivery_count"]


def test_an_event_never_delivered_by_the_end_is_skipped() -> None:
    story, _ = _consumer_story()
    _drained(story, T0 + 20)
    report, _ = run(story)
    assert kinds(report) == ["consumer.skipped"]


# --- scans: deletes and the log replayed ---------------------------------------------------------------


def _pull(story: Story, pull_id: str, status: str, start: float, end: float, *, full: bool = True) -> None:
    story.pulls.append(
        {
            "id": pull_id,
            "external_event_subscription_id": SUB,
            "status": status,
            "is_full_scan": full,
            "start_datetime": iso(start),
            "end_datetime": iso(end),
            "error": {"type": "bad_gateway", "message": "502"} if status == "error" else None,
        }
    )


def test_a_scan_whose_events_replay_to_the_provider_state_is_correct() -> None:
    story = Story()
    story.upstream("cus_2", "updated", {"id": "cus_2", "v": 2}, T0 + 5)  # changed during the scan
    story.upstream("cus_3", "deleted", {"id": "cus_3"}, T0 + 6)
    story.event("evt_1", record="cus_2", data={"id": "cus_2", "v": 2}, source="pull", pull_id="p1", at=T0 + 7)
    story.event("evt_2", record="cus_3", source="pull", action="deleted", pull_id="p1", at=T0 + 8)
    _pull(story, "p1", "success", T0, T0 + 10)
    initial = {"cus_1": {"id": "cus_1"}, "cus_2": {"id": "cus_2", "v": 1}, "cus_3": {"id": "cus_3"}}
    # cus_1 came in a scan before the soak: a baseline the log holds
    story.log.insert(
        0, {**story.event("evt_0", record="cus_1", source="pull", action="created", at=T0 - 100)}
    )
    story.log.pop()
    report, _ = run(story, initial=initial)
    assert report.violations == []
    assert report.checked["successful full scans replayed"] == 1


def test_a_scan_that_missed_an_update_does_not_replay_to_the_provider_state() -> None:
    story = Story()
    change = story.upstream("cus_1", "updated", {"id": "cus_1", "v": 2}, T0 - 50)  # before the scan
    story.event(
        "evt_0", record="cus_1", data={"id": "cus_1", "v": 1}, source="pull", action="created", at=T0 - 100
    )
    _pull(story, "p1", "success", T0, T0 + 10)
    report, history = run(story, initial={"cus_1": {"id": "cus_1", "v": 1}})
    assert kinds(report) == [SCAN_REPLAY]
    violation = report.violations[0]
    assert "cus_1" in violation.message
    assert change not in violation.lines  # made before the scan: not one of the states it could see
    assert history[violation.lines[-1]]["event"]["id"] == "evt_0"  # the state the log holds


def test_a_late_webhook_of_an_older_state_that_could_not_be_told_stale_is_explained_not_hidden() -> None:
    story = Story()
    story.upstream("cus_1", "updated", {"id": "cus_1", "v": 2}, T0 - 50)
    story.event("evt_0", record="cus_1", data={"id": "cus_1", "v": 2}, source="pull", pull_id="p1", at=T0 + 1)
    # Stripe's delivery of the creation, late: the record from the scan has no version to compare with
    late = story.event("evt_1", record="cus_1", data={"id": "cus_1", "v": 1}, action="created", at=T0 + 2)
    story.webhook("d1", late, 200)
    _pull(story, "p1", "success", T0, T0 + 10)
    report, _ = run(story, initial={"cus_1": {"id": "cus_1", "v": 1}})
    assert report.violations == []
    ((violation, why),) = report.explained
    assert violation.kind == SCAN_REPLAY
    assert "stale" in why


def test_a_scan_that_deletes_on_failure_logs_a_delete_from_a_failed_pull_of_a_record_still_there() -> None:
    story = Story()
    initial = {"cus_1": {"id": "cus_1"}, "cus_2": {"id": "cus_2"}}
    story.event("evt_0", record="cus_1", source="pull", action="created", at=T0 - 100)
    story.event("evt_1", record="cus_2", source="pull", action="created", at=T0 - 100)
    deleted = story.event("evt_2", record="cus_2", source="pull", action="deleted", pull_id="p2", at=T0 + 5)
    _pull(story, "p2", "error", T0, T0 + 6)
    report, history = run(story, initial=initial)
    assert kinds(report) == [DELETE_FROM_FAILED_SCAN, PHANTOM_DELETE]
    for violation in report.violations:
        assert history[violation.lines[-1]]["event"]["id"] == deleted["id"]
        assert history[violation.lines[0]]["t"] == "pulls"


def test_a_real_delete_from_a_pull_whose_worker_died_after_listing_is_explained_not_hidden() -> None:
    story = Story()
    story.event("evt_0", record="cus_1", source="pull", action="created", at=T0 - 100)
    story.upstream("cus_1", "deleted", {"id": "cus_1"}, T0 + 2)
    story.event("evt_1", record="cus_1", source="pull", action="deleted", pull_id="p1", at=T0 + 5)
    _pull(story, "p1", "error", T0, T0 + 130)
    story.pulls[-1]["error"] = {"type": "timeout", "key": "lease_expired", "message": "its lease ran out"}
    report, _ = run(story, initial={"cus_1": {"id": "cus_1"}})
    assert report.violations == []
    ((violation, why),) = report.explained
    assert violation.kind == DELETE_FROM_FAILED_SCAN
    assert "phantom_delete" in why


def test_a_delete_the_provider_reported_to_an_incremental_pull_that_failed_later_is_correct() -> None:
    story = Story()
    story.event("evt_0", record="cus_1", source="pull", action="created", at=T0 - 100)
    story.upstream("cus_1", "deleted", {"id": "cus_1"}, T0 - 10)
    story.event("evt_1", record="cus_1", source="pull", action="deleted", pull_id="p1", at=T0 + 1)
    _pull(story, "p1", "error", T0, T0 + 3, full=False)  # its second page failed
    report, _ = run(story, initial={"cus_1": {"id": "cus_1"}})
    assert report.violations == []


def test_a_pull_left_queued_or_running_at_the_end_is_reported() -> None:
    story = Story()
    _pull(story, "p1", "success", T0, T0 + 5)
    _pull(story, "p2", "error", T0 + 6, T0 + 9)
    assert kinds(run(story)[0]) == []
    story.pulls.append({**story.pulls[0], "id": "p3", "status": "queued", "end_datetime": None})
    story.add("trigger", subscription_id=SUB, status=202, pull_id="p3")
    report, history = run(story)
    assert kinds(report) == [PULL_UNFINISHED]
    assert history[report.violations[0].lines[-1]]["t"] == "trigger"


def test_a_delete_from_a_successful_scan_of_a_record_deleted_meanwhile_is_correct() -> None:
    story = Story()
    story.event("evt_0", record="cus_1", source="pull", action="created", at=T0 - 100)
    story.upstream("cus_1", "deleted", {"id": "cus_1"}, T0 + 2)
    story.event("evt_1", record="cus_1", source="pull", action="deleted", pull_id="p1", at=T0 + 5)
    _pull(story, "p1", "success", T0, T0 + 6)
    report, _ = run(story, initial={"cus_1": {"id": "cus_1"}})
    assert report.violations == []


# --- the records at the end ----------------------------------------------------------------------------


def _records_story(served: dict[str, Any]) -> Story:
    story = Story()
    story.add("final_scan", subscription_id=SUB, pull_id="p9", status="success")
    story.add(
        "upstream_final",
        provider="stripe",
        collection="customers",
        records={"cus_1": {"id": "cus_1", "v": 2}},
    )
    story.add("records", subscription_id=SUB, records=served)
    return story


def test_records_equal_to_the_provider_after_the_final_scan_are_correct() -> None:
    report, _ = run(_records_story({"cus_1": {"id": "cus_1", "v": 2}}))
    assert report.violations == []


def test_records_that_differ_from_the_provider_are_reported_per_record() -> None:
    report, _ = run(_records_story({"cus_1": {"id": "cus_1", "v": 1}, "cus_9": {"id": "cus_9"}}))
    assert kinds(report) == [RECORDS_MISMATCH, RECORDS_MISMATCH]
    assert {"cus_1", "cus_9"} == {
        violation.message.split(" has ")[1].split()[0] for violation in report.violations
    }


# --- mutations -------------------------------------------------------------------------------------------


def _mutation_story(*, upstream: int = 1, logged: int = 1) -> Story:
    story = Story()
    for index in range(upstream):
        story.upstream(f"cus_m{index}", "created", {"id": f"cus_m{index}", "description": "soak-m1"}, T0)
    for index in range(logged):
        story.event(f"evt_m{index}", record="cus_m0", source="mutation", action="created")
    story.add(
        "mutation",
        key="k1",
        connection_id=CONN,
        collection="customers",
        kind="create",
        record_id="cus_m0",
        marker="soak-m1",
        statuses=[200],
        status="succeeded",
        mutation_id="mut_1",
        event_id="evt_m0",
    )
    story.mutations.append(
        {
            "id": "mut_1",
            "connection_id": CONN,
            "collection": "customers",
            "kind": "create",
            "record_id": "cus_m0",
            "status": "succeeded",
            "event_id": "evt_m0",
        }
    )
    return story


def test_a_succeeded_mutation_at_the_provider_and_in_the_log_once_is_correct() -> None:
    report, _ = run(_mutation_story())
    assert report.violations == []


def test_a_succeeded_mutation_missing_upstream_or_made_twice_is_reported() -> None:
    assert kinds(run(_mutation_story(upstream=0))[0]) == [MUTATION_UPSTREAM]
    assert kinds(run(_mutation_story(upstream=2))[0]) == [MUTATION_DUPLICATED]


def test_a_succeeded_mutation_not_in_the_log_once_is_reported() -> None:
    missing = run(_mutation_story(logged=0))[0]
    assert kinds(missing) == [MUTATION_LOG]
    twice = run(_mutation_story(logged=2))[0]
    assert kinds(twice) == [MUTATION_LOG]  # the second event is no mutation's
    assert "no mutation's" in twice.violations[0].message


# --- 5xx -------------------------------------------------------------------------------------------------


def test_a_5xx_of_a_request_that_met_a_fault_is_explained_and_one_that_met_none_is_not() -> None:
    story = Story()
    explained = {"stack": "soak", "method": "GET", "path": "/events", "status": 503, "request_id": "r1"}
    story.add("http", **explained)
    unexplained = story.add("http", **{**explained, "request_id": "r2"})
    clean_stack = story.add("http", **{**explained, "stack": "audit", "request_id": "r3"})
    story.add("http", **{**explained, "status": 200, "request_id": "r4"})
    story.faults = [{"target": "dynamodb", "kind": "throttle", "request_id": "r1"}]
    report, _ = run(story)
    assert kinds(report) == [UNEXPLAINED_5XX, UNEXPLAINED_5XX]
    assert [violation.lines for violation in report.violations] == [(unexplained,), (clean_stack,)]
    assert report.faults == {"dynamodb.throttle": 1}
