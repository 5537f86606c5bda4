"""The soak's checker: reads a history (`bench.soak.history`) and the fault log, and proves each guarantee
or reports the operations that break it. Pure: it knows nothing of the run but what the lines say.

What the history holds, by line kind (`t`):

| kind | what | fields |
|---|---|---|
| `setup` | the world | `connections` {name: {id, provider}}, `subscriptions` [{id, connection_id, provider, collection}], `consumers` [{id, name, filters, ordering, max_deliveries, ack_wait_seconds}], `markers` {provider/collection: field} |
| `http` | one HTTP attempt to a stack | `stack` (`soak`: the faulty one; `audit`: the fault-free one of the end), `method`, `path`, `status` (None: no answer), `request_id` (`apigw-requestid`) |
| `webhook` | one attempt of one delivery | `connection_id`, `delivery_id`, `key` (`event_key` of what it carries), `after` (`first`, `5xx`, `2xx`, `concurrent`), `status`, `event_ids` |
| `poll` | one `GET /events` page a poller took | `poller`, `filters`, `cursor`, `event_ids`, `next_cursor` |
| `receive`, `settle`, `death`, `dead_letters`, `drained` | consumer workers (`bench.soak.consumer_check`) | |
| `mutation` | one mutation, all its attempts | `key`, `connection_id`, `collection`, `kind`, `record_id`, `marker`, `statuses`, `status` (the last answer's), `mutation_id`, `event_id` |
| `trigger` | `POST …/pull` | `subscription_id`, `status`, `pull_id` |
| `upstream_initial`, `upstream` | the fake providers' records at the start, then every change, with its time | `provider`, `collection`, `records` / `record_id`, `change`, `state`, `changed_at` |
| `final_scan` (`initial_scan`) | the end's (the setup's, when asked for) full scan of a subscription, faults off | `subscription_id`, `pull_id`, `status` |
| `log` | the log at the end, read from the table itself (not through the API), one event a line | `position`, `event` |
| `pulls`, `mutations` | every pull and mutation, as the API lists them at the end | `pulls` / `mutations` |
| `records` | `GET /records` of a subscription at the end | `subscription_id`, `records` {id: data} |
| `upstream_final` | the fake provider's records at the end | `provider`, `collection`, `records` |
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.soak.history import Line, by_key, canonical

WINDOW_SLACK_SECONDS = 0.5
"""How far around a pull's start and end the checker looks upstream: the clocks are one, but a pull's
times are taken a moment before its first request and after its last."""

LATE_WEBHOOK = (
    "a late webhook carried an older state, not marked stale: the record it met had no version to compare "
    "it with (a scan's record of an object without an update time, as Stripe customers), and PRODUCT.md says "
    "`stale` is false where it cannot be told; the record and the snapshot went back to that state, and the "
    "next full scan logs the provider's state again"
)
"""Why a replayed state that the provider had before the scan is documented behaviour, not a violation."""
ENDED_AFTER_LISTING = (
    "the pull's listing did not fail: its worker died (`lease_expired`) or its storage failed (`internal`), "
    "which a correct build meets only after a complete listing when it has logged deletes; whether each "
    "delete is real is `phantom_delete`'s to say. The pull still reads `error`"
)

# The violations, by kind.
WEBHOOK_LOST = "webhook_lost"
"""A delivery answered 2xx whose event is not in the log."""
WEBHOOK_DUPLICATED = "webhook_duplicated"
"""One delivery logged more than once."""
WEBHOOK_ANSWER = "webhook_answer"
"""A 2xx named other event ids than the one the log holds for its delivery."""
WEBHOOK_UNKNOWN = "webhook_unknown"
"""A webhook event in the log that no delivery sent."""
POLLER_GAP = "poller_gap"
POLLER_DUPLICATE = "poller_duplicate"
POLLER_ORDER = "poller_order"
POLLER_UNKNOWN = "poller_unknown"
SCAN_REPLAY = "scan_replay"
"""After a successful full scan, the log replayed does not give a state the provider had meanwhile."""
RECORDS_MISMATCH = "records_mismatch"
MUTATION_UPSTREAM = "mutation_upstream"
"""A succeeded mutation whose change is not at the provider."""
MUTATION_DUPLICATED = "mutation_duplicated"
"""A create made upstream more than once."""
MUTATION_LOG = "mutation_log"
"""A succeeded mutation not in the log exactly once, or a mutation event no mutation names."""
DELETE_FROM_FAILED_SCAN = "delete_from_failed_scan"
PHANTOM_DELETE = "phantom_delete"
"""A pull logged `deleted` for a record the provider held all through the pull."""
PULL_UNFINISHED = "pull_unfinished"
"""A pull still `queued` or `running` at the end: its worker died and nothing ended it."""
UNEXPLAINED_5XX = "unexplained_5xx"
CONSUMER = "consumer."
"""The consumer checks' kinds (`tests/consumer_history.py`) carry this prefix."""


@dataclass(frozen=True)
class Violation:
    kind: str
    message: str
    lines: tuple[int, ...]
    """The history lines involved, the offending one last where there is one."""
    note: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message} (lines {list(self.lines)})"


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    explained: list[tuple[Violation, str]] = field(default_factory=list)
    """What looked like a violation but the history explains (an answer lost to a fault), with why."""
    notes: list[str] = field(default_factory=list)
    """What could not be checked, and why."""
    operations: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    """How many things each check looked at (deliveries, pages, scans, mutations, ...)."""

    def add(self, kind: str, message: str, lines: Iterable[int | None], note: str = "") -> None:
        ordered = tuple(dict.fromkeys(line for line in lines if line is not None))
        self.violations.append(Violation(kind, message, ordered, note))

    def kinds(self) -> Counter[str]:
        return Counter(violation.kind for violation in self.violations)


def event_key(connection_id: str, event_type: str, record_id: Any, data: Any) -> str:
    """What identifies a webhook's event in the log: its connection, type, record and content. The soak
    makes every upstream state unique, so one key is one delivery."""
    return f"{connection_id}|{event_type}|{record_id}|{canonical(data)}"


def epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- the world -------------------------------------------------------------------------------------------


@dataclass
class World:
    """The history, indexed."""

    history: Sequence[Line]
    setup: Line
    log: list[Line]
    """`log` lines in position order: `event` is the document."""
    position_of: dict[str, int]
    line_of_event: dict[str, int]
    pulls: dict[str, dict[str, Any]]
    pulls_line: int | None
    journal: dict[tuple[str, str, str], list[Line]]
    """(provider, collection, record id) -> its `upstream` lines, in order."""
    initial: dict[tuple[str, str], Line]

    @classmethod
    def of(cls, history: Sequence[Line]) -> World:
        setup = next((line for line in history if line["t"] == "setup"), {"n": None})
        log = sorted((line for line in history if line["t"] == "log"), key=lambda line: line["position"])
        pulls_line = next((line for line in history if line["t"] == "pulls"), None)
        journal: dict[tuple[str, str, str], list[Line]] = {}
        for line in history:
            if line["t"] == "upstream":
                journal.setdefault((line["provider"], line["collection"], line["record_id"]), []).append(line)
        return cls(
            history=history,
            setup=setup,
            log=log,
            position_of={line["event"]["id"]: line["position"] for line in log},
            line_of_event={line["event"]["id"]: line["n"] for line in log},
            pulls={pull["id"]: pull for pull in (pulls_line or {}).get("pulls", [])},
            pulls_line=pulls_line["n"] if pulls_line else None,
            journal=journal,
            initial={
                (line["provider"], line["collection"]): line
                for line in history
                if line["t"] == "upstream_initial"
            },
        )

    def lines(self, kind: str) -> list[Line]:
        return [line for line in self.history if line["t"] == kind]

    def states_between(
        self, provider: str, collection: str, record_id: str, start: float, end: float
    ) -> tuple[set[str | None], list[int]]:
        """Every state the record had upstream at some moment in [start, end] (None: it did not exist),
        as canonical JSON, and the journal lines that made them."""
        initial = self.initial.get((provider, collection))
        state: str | None = None
        if initial is not None and record_id in initial["records"]:
            state = canonical(initial["records"][record_id])
        states: set[str | None] = set()
        lines: list[int] = []
        for change in self.journal.get((provider, collection, record_id), []):
            if change["changed_at"] <= start:
                state = _state_after(change)
                continue
            if change["changed_at"] > end:
                break
            states.add(_state_after(change))
            lines.append(change["n"])
        states.add(state)
        return states, lines

    def states_before(self, provider: str, collection: str, record_id: str, moment: float) -> set[str]:
        """Every state the record had upstream before `moment` (canonical JSON)."""
        initial = self.initial.get((provider, collection))
        states = set()
        if initial is not None and record_id in initial["records"]:
            states.add(canonical(initial["records"][record_id]))
        for change in self.journal.get((provider, collection, record_id), []):
            if change["changed_at"] <= moment and change["change"] != "deleted":
                states.add(canonical(change["state"]))
        return states

    def record_ids(self, provider: str, collection: str) -> set[str]:
        ids = set((self.initial.get((provider, collection)) or {}).get("records", {}))
        ids.update(rid for (p, c, rid) in self.journal if (p, c) == (provider, collection))
        return ids


def _state_after(change: Line) -> str | None:
    return None if change["change"] == "deleted" else canonical(change["state"])


# --- webhooks --------------------------------------------------------------------------------------------


def check_webhooks(world: World, report: Report) -> None:
    """Every delivery answered 2xx (at once, or after 5xx and redeliveries) is in the log exactly once,
    as the event its answers named; none is in the log twice; the log holds no webhook nobody sent."""
    logged: dict[str, list[Line]] = {}
    for line in world.log:
        event = line["event"]
        if event.get("source") == "webhook":
            key = event_key(event["connection_id"], event["type"], event.get("record_id"), event.get("data"))
            logged.setdefault(key, []).append(line)
    deliveries = by_key(world.lines("webhook"), lambda line: (line["connection_id"], line["delivery_id"]))
    keys = set()
    for (_, delivery_id), attempts in deliveries.items():
        key = attempts[0]["key"]
        keys.add(key)
        _check_delivery(report, delivery_id, attempts, logged.get(key, []))
    for key, lines in logged.items():
        if key not in keys:
            report.add(
                WEBHOOK_UNKNOWN,
                f"the log holds webhook event {lines[0]['event']['id']} that no delivery sent",
                [line["n"] for line in lines],
            )


def _check_delivery(report: Report, delivery_id: str, attempts: list[Line], logged: list[Line]) -> None:
    report.checked["deliveries"] += 1
    answered = [line for line in attempts if line["status"] is not None and 200 <= line["status"] < 300]
    failed = [line for line in attempts if line["status"] is None or line["status"] >= 500]
    if answered and failed and failed[0]["n"] < answered[0]["n"]:
        report.checked["deliveries answered 2xx after a 5xx"] += 1
    if not answered:
        report.checked["deliveries never answered 2xx"] += 1
    lines = [line["n"] for line in attempts]
    if len(logged) > 1:
        ids = [line["event"]["id"] for line in logged]
        report.add(
            WEBHOOK_DUPLICATED,
            f"delivery {delivery_id} is in the log {len(logged)} times: {ids}",
            [*lines, *(line["n"] for line in logged)],
        )
        return
    if answered and not logged:
        report.add(
            WEBHOOK_LOST,
            f"delivery {delivery_id} was answered {answered[0]['status']} but is not in the log",
            lines,
        )
        return
    for answer in answered:
        if logged and answer.get("event_ids") != [logged[0]["event"]["id"]]:
            report.add(
                WEBHOOK_ANSWER,
                f"delivery {delivery_id} was answered with {answer.get('event_ids')}, but the log holds it as "
                f"{logged[0]['event']['id']}",
                [logged[0]["n"], answer["n"]],
            )


# --- pollers ---------------------------------------------------------------------------------------------


def matches(event: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    return all(event.get(name) == value for name, value in filters.items() if value is not None)


def check_pollers(world: World, report: Report) -> None:
    """Each poller, following `next_cursor` from the start, saw every event of the log that matches its
    filters exactly once, in the log's order."""
    for poller, pages in by_key(world.lines("poll"), lambda line: line["poller"]).items():
        filters = pages[0].get("filters") or {}
        expected = [line for line in world.log if matches(line["event"], filters)]
        _check_poller(world, report, poller, pages, expected)


def _check_poller(world: World, report: Report, poller: str, pages: list[Line], expected: list[Line]) -> None:
    report.checked["poller pages"] += len(pages)
    first_seen: dict[str, int] = {}
    last_position = 0
    last_line: int | None = None
    for page in pages:
        for event_id in page["event_ids"]:
            if event_id in first_seen:
                report.add(
                    POLLER_DUPLICATE,
                    f"{poller} saw {event_id} twice",
                    [first_seen[event_id], page["n"]],
                )
                continue
            first_seen[event_id] = page["n"]
            position = world.position_of.get(event_id)
            if position is None:
                report.add(
                    POLLER_UNKNOWN, f"{poller} saw {event_id}, which the log does not hold", [page["n"]]
                )
                continue
            if position < last_position:
                report.add(
                    POLLER_ORDER,
                    f"{poller} saw {event_id} (position {position}) after position {last_position}",
                    [last_line, world.line_of_event[event_id], page["n"]],
                )
            last_position, last_line = max(last_position, position), page["n"]
    for line in expected:
        event_id = line["event"]["id"]
        if event_id not in first_seen:
            passed = _page_past(world, pages, line["position"])
            report.add(
                POLLER_GAP,
                f"{poller} never saw {event_id} (position {line['position']}, {line['event'].get('type')}"
                f"{_source_of(line['event'])})",
                [line["n"], passed],
            )


def _page_past(world: World, pages: list[Line], position: int) -> int | None:
    """The first page that served an event after `position`: the one that went past it."""
    for page in pages:
        if any((world.position_of.get(event_id) or 0) > position for event_id in page["event_ids"]):
            return int(page["n"])
    return None


def _source_of(event: Mapping[str, Any]) -> str:
    return f", from {event.get('source')}" + (f" {event['pull_id']}" if event.get("pull_id") else "")


# --- pulls: deletes, and replaying the log after each full scan --------------------------------------


def _window(pull: Mapping[str, Any]) -> tuple[float, float] | None:
    start, end = epoch(pull.get("start_datetime")), epoch(pull.get("end_datetime"))
    if start is None or end is None:
        return None
    return start - WINDOW_SLACK_SECONDS, end + WINDOW_SLACK_SECONDS


def _subscriptions(world: World) -> dict[str, dict[str, Any]]:
    return {subscription["id"]: subscription for subscription in world.setup.get("subscriptions", [])}


def check_deletes(world: World, report: Report) -> None:
    """No `deleted` event came from a pull that failed, and none from a pull while the record was there
    upstream all along."""
    subscriptions = _subscriptions(world)
    for line in world.log:
        event = line["event"]
        if event.get("source") != "pull" or event.get("action") != "deleted":
            continue
        report.checked["deletes from pulls"] += 1
        pull = world.pulls.get(event.get("pull_id") or "")
        if pull is None:
            report.notes.append(f"{event['id']} came from pull {event.get('pull_id')}, which is not listed")
            continue
        if pull["status"] == "error" and pull.get("is_full_scan"):
            # (an incremental pull logs only the deletes the provider reported, page by page: real ones)
            error = pull.get("error") or {}
            violation = Violation(
                DELETE_FROM_FAILED_SCAN,
                f"{event['id']} deleted {event.get('record_id')}, logged by pull {pull['id']}, which ended in "
                f"error ({error.get('type')} {error.get('key')}: {error.get('message')})",
                tuple(n for n in (world.pulls_line, line["n"]) if n is not None),
            )
            if _listing_failed(error):
                report.violations.append(violation)
            else:
                report.explained.append((violation, ENDED_AFTER_LISTING))
        subscription = subscriptions.get(pull.get("external_event_subscription_id") or "")
        window = _window(pull) if pull.get("end_datetime") else None
        if subscription is None or window is None:
            continue
        states, _ = world.states_between(
            subscription["provider"], subscription["collection"], str(event.get("record_id")), *window
        )
        if None not in states:
            report.add(
                PHANTOM_DELETE,
                f"{event['id']} (pull {pull['id']}, {pull['status']}) deleted {event.get('record_id')}, which "
                f"the provider held all through the pull",
                [world.pulls_line, line["n"]],
            )


def _listing_failed(error: Mapping[str, Any]) -> bool:
    """Whether a pull's error is its listing failing (the provider's answers), rather than its worker
    dying (`lease_expired`) or the storage failing (`internal`), which may come after a complete listing."""
    return error.get("type") != "internal" and error.get("key") != "lease_expired"


def check_pulls_ended(world: World, report: Report) -> None:
    """Every pull ended (`success` or `error`): the end ran each subscription's dead pull out and a full
    scan to success, so one still `queued` or `running` was left behind by whatever replaced it."""
    triggers = by_key(world.lines("trigger"), lambda line: line.get("pull_id"))
    for pull in world.pulls.values():
        report.checked["pulls"] += 1
        if pull["status"] in ("queued", "running"):
            report.add(
                PULL_UNFINISHED,
                f"pull {pull['id']} ({pull.get('collection')}, started {pull.get('start_datetime')}) is still "
                f"{pull['status']} at the end",
                [world.pulls_line, *(line["n"] for line in triggers.get(pull["id"], [])[:1])],
            )


def check_scans(world: World, report: Report) -> None:
    """After every successful full scan, replaying the log (created, updated and deleted events of its
    collection, in log order, stale ones aside) up to the scan's end gives, for every record, a state the
    provider held at some moment of the scan."""
    subscriptions = _subscriptions(world)
    for pull in world.pulls.values():
        if not (pull["status"] == "success" and pull.get("is_full_scan")):
            continue
        subscription = subscriptions.get(pull.get("external_event_subscription_id") or "")
        window = _window(pull)
        if subscription is None or window is None:
            continue
        report.checked["successful full scans replayed"] += 1
        _replay_after(world, report, subscription, pull, window)


def replay(
    log: Iterable[Line], connection_id: str, collection: str, until: float
) -> dict[str, tuple[str, int]]:
    """Each record's state (canonical JSON) and the line that set it, from the collection's events
    received up to `until`."""
    state: dict[str, tuple[str, int]] = {}
    for line in log:
        event = line["event"]
        if event.get("connection_id") != connection_id or event.get("collection") != collection:
            continue
        received = epoch(event.get("received_at"))
        if received is None or received > until or event.get("stale") or not event.get("record_id"):
            continue
        record_id = str(event["record_id"])
        if event.get("action") == "deleted":
            state.pop(record_id, None)
        elif event.get("action") in ("created", "updated"):
            state[record_id] = (canonical(event.get("data")), line["n"])
    return state


def _replay_after(
    world: World,
    report: Report,
    subscription: Mapping[str, Any],
    pull: Mapping[str, Any],
    window: tuple[float, float],
) -> None:
    provider, collection = subscription["provider"], subscription["collection"]
    replayed = replay(world.log, subscription["connection_id"], collection, window[1])
    for record_id in sorted(world.record_ids(provider, collection) | set(replayed)):
        states, changes = world.states_between(provider, collection, record_id, *window)
        state, line = replayed.get(record_id, (None, None))
        if state in states:
            continue
        held = "absent" if state is None else "present"
        upstream = "absent" if states == {None} else f"{len(states)} state(s)"
        violation = Violation(
            SCAN_REPLAY,
            f"after full scan {pull['id']} of {provider} {collection}, the log replayed holds {record_id} "
            f"{held} with a state the provider never had during the scan (upstream: {upstream})",
            tuple(n for n in (world.pulls_line, *changes, line) if n is not None),
        )
        event = world.history[line]["event"] if line is not None else {}
        if event.get("source") == "webhook" and state in world.states_before(
            provider, collection, record_id, window[0]
        ):
            report.explained.append((violation, LATE_WEBHOOK))
        else:
            report.violations.append(violation)


# --- the records and the provider at the end -----------------------------------------------------------


def check_records(world: World, report: Report) -> None:
    """After the final full scan (faults off), `GET /records` is the provider's state."""
    subscriptions = _subscriptions(world)
    finals = {line["subscription_id"]: line for line in world.lines("final_scan")}
    upstream = {(line["provider"], line["collection"]): line for line in world.lines("upstream_final")}
    for line in world.lines("records"):
        subscription = subscriptions[line["subscription_id"]]
        final = finals.get(line["subscription_id"])
        if final is None or final["status"] != "success":
            report.notes.append(
                f"records of {subscription['provider']} {subscription['collection']} not compared: no "
                "successful final full scan"
            )
            continue
        held = upstream[(subscription["provider"], subscription["collection"])]
        report.checked["records compared"] += len(held["records"])
        served = {record_id: canonical(data) for record_id, data in line["records"].items()}
        truth = {record_id: canonical(data) for record_id, data in held["records"].items()}
        for record_id in sorted(set(served) | set(truth)):
            if served.get(record_id) != truth.get(record_id):
                what = (
                    "missing"
                    if record_id not in served
                    else "extra"
                    if record_id not in truth
                    else "with another state"
                )
                report.add(
                    RECORDS_MISMATCH,
                    f"GET /records of {subscription['provider']} {subscription['collection']} has "
                    f"{record_id} {what} than the provider",
                    [final["n"], held["n"], line["n"]],
                )


# --- mutations -------------------------------------------------------------------------------------------


def check_mutations(world: World, report: Report) -> None:
    """Every succeeded mutation is at the provider (a create exactly once) and in the log exactly once;
    every mutation event in the log is one mutation's."""
    listed_line = next(iter(world.lines("mutations")), None)
    listed_at = listed_line["n"] if listed_line else None
    sent = {line["mutation_id"]: line for line in world.lines("mutation") if line.get("mutation_id")}
    markers = world.setup.get("markers", {})
    providers = {
        connection["id"]: connection["provider"] for connection in world.setup.get("connections", {}).values()
    }
    listed = [
        {**mutation, "provider": providers.get(mutation["connection_id"])}
        for mutation in (listed_line or {}).get("mutations", [])
    ]
    named = Counter(mutation.get("event_id") for mutation in listed if mutation.get("event_id"))
    for mutation in listed:
        line = sent.get(mutation["id"])
        lines = [listed_at, line["n"] if line else None]
        field_name = markers.get(f"{mutation['provider']}/{mutation['collection']}")
        if line is not None and mutation["kind"] == "create" and field_name:
            _check_created_once(world, report, mutation, line, field_name, lines)
        if mutation["status"] == "succeeded":
            report.checked["succeeded mutations"] += 1
            _check_logged_once(world, report, mutation, named, lines)
            if line is not None and field_name:
                _check_upstream(world, report, mutation, line, field_name, lines)
    for log_line in world.log:
        event = log_line["event"]
        if event.get("source") == "mutation" and event["id"] not in named:
            report.add(
                MUTATION_LOG,
                f"mutation event {event['id']} ({event.get('type')} {event.get('record_id')}) is no mutation's",
                [listed_at, log_line["n"]],
            )


def _check_logged_once(
    world: World, report: Report, mutation: Mapping[str, Any], named: Counter[Any], lines: list[int | None]
) -> None:
    logged = [line for line in world.log if line["event"]["id"] == mutation.get("event_id")]
    if len(logged) != 1 or logged[0]["event"].get("source") != "mutation" or named[mutation["event_id"]] > 1:
        report.add(
            MUTATION_LOG,
            f"succeeded mutation {mutation['id']} names event {mutation.get('event_id')}, which the log holds "
            f"{len(logged)} time(s)",
            [*lines, *(entry["n"] for entry in logged)],
        )


def _changes_with(world: World, provider: str, collection: str, field_name: str, marker: str) -> list[Line]:
    return [
        change
        for (p, c, _), changes in world.journal.items()
        if (p, c) == (provider, collection)
        for change in changes
        if change["change"] != "deleted" and (change["state"] or {}).get(field_name) == marker
    ]


def _check_created_once(
    world: World,
    report: Report,
    mutation: Mapping[str, Any],
    line: Line,
    field_name: str,
    lines: list[int | None],
) -> None:
    created = [
        change
        for change in _changes_with(
            world, mutation["provider"], mutation["collection"], field_name, line["marker"]
        )
        if change["change"] == "created"
    ]
    if len(created) > 1:
        report.add(
            MUTATION_DUPLICATED,
            f"mutation {mutation['id']} ({mutation['status']}) created {len(created)} records upstream: "
            f"{[change['record_id'] for change in created]}",
            [*lines, *(change["n"] for change in created)],
        )


def _check_upstream(
    world: World,
    report: Report,
    mutation: Mapping[str, Any],
    line: Line,
    field_name: str,
    lines: list[int | None],
) -> None:
    provider, collection, record_id = mutation["provider"], mutation["collection"], mutation.get("record_id")
    changes = world.journal.get((provider, collection, str(record_id)), [])
    if mutation["kind"] == "delete":
        found = any(change["change"] == "deleted" for change in changes)
    else:
        wanted = "created" if mutation["kind"] == "create" else "updated"
        found = any(
            change["change"] == wanted and (change["state"] or {}).get(field_name) == line["marker"]
            for change in changes
        )
    if not found:
        report.add(
            MUTATION_UPSTREAM,
            f"succeeded mutation {mutation['id']} ({mutation['kind']} {record_id}) is not at the provider",
            lines,
        )


# --- 5xx -------------------------------------------------------------------------------------------------


def check_server_errors(world: World, faults: Sequence[Line], report: Report) -> None:
    """Every 5xx of the faulty stack is explained by a fault of its own request (`apigw-requestid`); the
    fault-free stack of the end answers none."""
    explained = {fault.get("request_id") for fault in faults if fault.get("request_id")}
    for line in world.lines("http"):
        status = line.get("status")
        if status is None or status < 500:
            continue
        report.checked["5xx answers"] += 1
        if line.get("stack") == "soak" and line.get("request_id") in explained:
            continue
        where = "the fault-free stack" if line.get("stack") == "audit" else "no fault of its request"
        report.add(
            UNEXPLAINED_5XX,
            f"{line['method']} {line['path']} answered {status} ({where}; request {line.get('request_id')})",
            [line["n"]],
        )


# --- all of it -------------------------------------------------------------------------------------------


def count_operations(world: World, faults: Sequence[Line], report: Report) -> None:
    for line in world.history:
        kind = line["t"]
        if kind == "settle":
            kind = f"consumer {line['op']}"
        elif kind == "receive":
            kind = "consumer receive"
        elif kind == "mutation":
            kind = f"mutation {line['kind']}"
        elif kind == "webhook":
            kind = f"webhook ({line['after']})"
        elif kind == "upstream":
            kind = f"upstream {line['change']}"
        elif kind == "http":
            kind = f"http ({line.get('stack')})"
        report.operations[kind] += 1
    for fault in faults:
        report.faults[f"{fault.get('target')}.{fault.get('kind')}"] += 1


def check(history: Sequence[Line], faults: Sequence[Line]) -> Report:
    """Every guarantee, over one history and the fault log of its run."""
    from bench.soak.consumer_check import check_consumers

    world = World.of(history)
    report = Report()
    count_operations(world, faults, report)
    ended = world.pulls_line is not None
    if not ended:
        report.notes.append("the history has no end (the log, pulls, records): only the 5xx were checked")
    check_server_errors(world, faults, report)
    if ended:
        check_webhooks(world, report)
        check_pollers(world, report)
        check_consumers(world, report)
        check_deletes(world, report)
        check_pulls_ended(world, report)
        check_scans(world, report)
        check_records(world, report)
        check_mutations(world, report)
    return report


def describe(history: Sequence[Line], report: Report, *, limit: int = 20, width: int = 400) -> str:
    """The violations with the history lines they name, for a person or an assertion message."""
    out: list[str] = []
    for violation in report.violations[:limit]:
        out.append(str(violation))
        for index in violation.lines:
            text = canonical(history[index]) if 0 <= index < len(history) else "?"
            out.append(f"    [{index}] {text[:width]}")
    if len(report.violations) > limit:
        out.append(f"... and {len(report.violations) - limit} more")
    return "\n".join(out)
