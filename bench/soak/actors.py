"""The soak's actors, each a thread recording every operation with its outcome: webhook writers (Standard
Webhooks and Stripe, with redeliveries), the changes underneath the pulls, the pulls' trigger, mutations
and pollers. The consumers' workers are in `bench.soak.workers`.

Every choice an actor makes is drawn from its own `random.Random(seed/actor)`; what the stack does in
between depends on timing, so two runs of one seed make the same kinds of choices, not the same history.
"""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.soak.checker import event_key
from bench.soak.history import History, HttpRecorder, send
from bench.soak.world import ATTEMPTS, MARKERS, STRIPE_SECRET, Setup
from tests.fakes.fake_stripe import FakeStripe
from tests.fakes.provider_server import FakeProviderServer
from tests.support import standard_webhook_headers

CHANGE_SPACING_SECONDS = 2.5
"""A record is changed at most this often: Stripe orders an object's states by their event's second, so
two changes of one record in one second could not be told apart by the product (nor by the checker)."""
REDELIVER_AFTER_2XX = 0.15
CONCURRENT_TWIN = 0.05
STRIPE_DROPPED = 0.15
"""Stripe deliveries that never arrive: the scans must find those changes."""
STRIPE_DEFERRED = 0.2
"""Stripe deliveries held back behind later ones: they arrive out of order."""


@dataclass
class Context:
    history: History
    url: str
    api_key: str
    setup: Setup
    fake: FakeProviderServer
    seed: int
    late_acks: float = 0.04
    """Per batch: how often a consumer worker acks only after its leases ran out."""
    trigger_every: tuple[float, float] = (2.0, 6.0)
    """Seconds between two full scans the pull driver triggers (drawn uniformly)."""
    before_trigger: Callable[[FakeProviderServer, int], None] | None = None
    """Called with the fake providers and the trigger's number before each trigger: an aimed run's way to
    make the providers fail one scan at a chosen page (`FakeProviderServer.fail_with`)."""
    stop: threading.Event = field(default_factory=threading.Event)
    crashes: list[str] = field(default_factory=list)

    def http(
        self, actor: str, *, stack: str = "soak", url: str | None = None
    ) -> tuple[HttpRecorder, httpx.Client]:
        recorder = HttpRecorder(self.history, actor, stack)
        client = recorder.client(url or self.url)
        client.headers["authorization"] = f"Bearer {self.api_key}"
        return recorder, client

    def rng(self, actor: str) -> random.Random:
        return random.Random(f"{self.seed}/{actor}")

    def pause(self, seconds: float) -> bool:
        """Waits; True when the run is over."""
        return self.stop.wait(seconds)


def guarded(context: Context, actor: str, body: Callable[[], None]) -> threading.Thread:
    """The actor's thread: a crash of the harness itself is recorded and reported, never silent."""

    def run() -> None:
        try:
            body()
        except Exception:
            text = traceback.format_exc()
            context.crashes.append(f"{actor}: {text}")
            context.history.record("crash", actor, error=text, at=time.time())

    return threading.Thread(target=run, name=f"soak-{actor}", daemon=True)


def backoff(attempt: int, cap: float = 2.0) -> float:
    return float(min(cap, 0.1 * 2**attempt))


def _status(response: httpx.Response | None) -> int | None:
    return None if response is None else response.status_code


def _json(response: httpx.Response | None) -> Any:
    if response is None:
        return None
    try:
        return response.json()
    except ValueError:
        return None


# --- webhooks --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    connection_id: str
    delivery_id: str
    key: str
    sign: Callable[[], tuple[dict[str, str], bytes]]
    """Headers and body as the provider signs them now (each retry is signed anew)."""


class Deliverer:
    """Sends deliveries as a provider does: every 5xx or lost answer is redelivered (same id, same
    body) until answered; some are redelivered after a 2xx too, and some arrive twice at once."""

    def __init__(self, context: Context, actor: str) -> None:
        self.context = context
        self.actor = actor
        self.recorder, self.http = context.http(actor)
        self.rng = context.rng(actor)

    def attempt(
        self, delivery: Delivery, attempt: int, after: str, http: httpx.Client | None = None
    ) -> int | None:
        headers, body = delivery.sign()
        at = time.time()
        response = send(
            self.recorder,
            http or self.http,
            "POST",
            f"/webhooks/{delivery.connection_id}",
            content=body,
            headers=headers,
        )
        answer = _json(response) if response is not None and response.status_code < 300 else None
        self.context.history.record(
            "webhook",
            self.actor,
            connection_id=delivery.connection_id,
            delivery_id=delivery.delivery_id,
            key=delivery.key,
            attempt=attempt,
            after=after,
            status=_status(response),
            event_ids=(answer or {}).get("event_ids"),
            duplicates=(answer or {}).get("duplicates"),
            request_id=response.headers.get("apigw-requestid") if response is not None else None,
            at=at,
            until=time.time(),
        )
        return _status(response)

    def deliver(self, delivery: Delivery) -> None:
        twin = None
        if self.rng.random() < CONCURRENT_TWIN:
            twin = threading.Thread(target=self._twin, args=(delivery,), daemon=True)
            twin.start()
        after = "first"
        for attempt in range(ATTEMPTS):
            status = self.attempt(delivery, attempt, after)
            if status is not None and 200 <= status < 300:
                if self.rng.random() < REDELIVER_AFTER_2XX:
                    self.attempt(delivery, attempt + 1, "2xx")
                break
            if status is not None and status < 500:
                break  # refused: the checker finds it in no log
            after = "5xx"
            if self.context.pause(backoff(attempt)):
                break  # the run is over: a delivery left unanswered must simply be in the log at most once
        if twin is not None:
            twin.join()

    def _twin(self, delivery: Delivery) -> None:
        _, http = self.context.http(self.actor)
        with http:
            self.attempt(delivery, 0, "concurrent", http)


def standard_writer(context: Context) -> None:
    """Standard Webhooks deliveries, each a new record of its own."""
    deliverer = Deliverer(context, "standard-writer")
    connection_id = context.setup.connection_id("standard")
    number = 0
    while not context.pause(deliverer.rng.uniform(0.05, 0.3)):
        number += 1
        data = {
            "id": f"std_{context.seed}_{number}",
            "n": number,
            "amount": deliverer.rng.randrange(100, 10_000),
        }
        payload = {"type": "invoice.paid", "timestamp": datetime.now(UTC).isoformat(), "data": data}
        body = json.dumps(payload).encode()
        delivery_id = f"msg_soak_{context.seed}_{number}"

        def sign(
            body: bytes = body, delivery_id: str = delivery_id, secret: str = context.setup.standard_secret
        ) -> tuple[dict[str, str], bytes]:
            return standard_webhook_headers(secret, delivery_id, body), body

        deliverer.deliver(
            Delivery(
                connection_id, delivery_id, event_key(connection_id, "invoice.paid", data["id"], data), sign
            )
        )


def stripe_writer(context: Context) -> None:
    """Stripe's deliveries of the changes the fake Stripe logged: most as they come, some late and out
    of order, some never."""
    deliverer = Deliverer(context, "stripe-writer")
    connection_id = context.setup.connection_id("stripe")
    sent = 0
    deferred: list[dict[str, Any]] = []
    while not context.pause(deliverer.rng.uniform(0.05, 0.3)):
        logged = context.fake.stripe.events
        events = [event for event in logged[sent:] if event["type"].startswith("customer.")]
        sent = len(logged)
        due = deferred[: deliverer.rng.randrange(0, len(deferred) + 1)] if deferred else []
        deferred = deferred[len(due) :]
        for event in events:
            if context.stop.is_set():
                return
            draw = deliverer.rng.random()
            if draw < STRIPE_DROPPED:
                continue
            if draw < STRIPE_DROPPED + STRIPE_DEFERRED:
                deferred.append(event)
                continue
            deliverer.deliver(_stripe_delivery(connection_id, event))
        for event in due:
            deliverer.deliver(_stripe_delivery(connection_id, event))


def _stripe_delivery(connection_id: str, event: dict[str, Any]) -> Delivery:
    record = event["data"]["object"]

    def sign() -> tuple[dict[str, str], bytes]:
        return FakeStripe.webhook(event, STRIPE_SECRET, int(time.time()))

    return Delivery(
        connection_id, event["id"], event_key(connection_id, event["type"], record["id"], record), sign
    )


# --- changes underneath, and pulls -------------------------------------------------------------------------


class Churn:
    """Adds, updates and deletes records at the fake providers directly, as their users do, keeping each
    collection near its starting size; never a record a mutation made, and no record twice in
    `CHANGE_SPACING_SECONDS`."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.rng = context.rng("churn")
        self.changed_at: dict[str, float] = {}
        self.sizes = {
            (provider, collection): len(context.fake.dataset(provider, collection))
            for provider, collection in (("stripe", "customers"), ("generic", "items"))
        }
        self.number = 0

    def run(self) -> None:
        while not self.context.pause(self.rng.uniform(0.1, 0.4)):
            provider, collection = self.rng.choice(sorted(self.sizes))
            self.change(provider, collection)

    def change(self, provider: str, collection: str) -> None:
        dataset = self.context.fake.dataset(provider, collection)
        marker_field = MARKERS[f"{provider}/{collection}"]
        now = time.time()
        free = [
            record[dataset.id_field]
            for record in dataset.records()
            if not str(record.get(marker_field) or "").startswith("soak-m")
            and now - self.changed_at.get(str(record[dataset.id_field]), 0.0) > CHANGE_SPACING_SECONDS
        ]
        target = self.sizes[(provider, collection)]
        draw = self.rng.random() + (len(dataset) - target) / max(target, 1)
        self.number += 1
        if draw < 0.25 or not free:
            added = dataset.add()
            self.changed_at[str(added[dataset.id_field])] = now
            return
        record_id = self.rng.choice(free)
        self.changed_at[str(record_id)] = now
        if draw > 0.85:
            dataset.delete(record_id)
        elif provider == "stripe":
            dataset.update(record_id, name=f"churn {self.number}", metadata={"rev": str(self.number)})
        else:
            dataset.update(record_id, name=f"churn {self.number}")


def pull_driver(context: Context) -> None:
    """Triggers full scans (`POST …/pull`) now and then; the stack's schedule runs the incremental pulls
    (and the full scans that fall due)."""
    recorder, http = context.http("pull-driver")
    rng = context.rng("pull-driver")
    subscriptions = context.setup.subscriptions
    turn = 0
    while not context.pause(rng.uniform(*context.trigger_every)):
        subscription = subscriptions[turn % len(subscriptions)]
        turn += 1
        if context.before_trigger is not None:
            context.before_trigger(context.fake, turn)
        for attempt in range(5):
            at = time.time()
            response = send(
                recorder, http, "POST", f"/external-event-subscriptions/{subscription['id']}/pull"
            )
            answer = _json(response) or {}
            context.history.record(
                "trigger",
                "pull-driver",
                subscription_id=subscription["id"],
                status=_status(response),
                pull_id=answer.get("id") or ((answer.get("error") or {}).get("data") or {}).get("pull_id"),
                at=at,
                until=time.time(),
            )
            if response is not None and response.status_code < 500:
                break
            if context.pause(backoff(attempt)):
                break


# --- mutations -------------------------------------------------------------------------------------------


class Mutator:
    """Creates, updates and deletes its own records through `POST /mutations`, each with an
    `Idempotency-Key` it sends again, unchanged, after a 5xx, a 429 or a lost answer, until answered
    (the run's end does not cut a mutation short: its outcome would stay unknown)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.recorder, self.http = context.http("mutator")
        self.rng = context.rng("mutator")
        self.owned: dict[tuple[str, str], list[str]] = {("stripe", "customers"): [], ("generic", "items"): []}
        self.changed_at: dict[str, float] = {}
        self.number = 0

    def run(self) -> None:
        while not self.context.pause(self.rng.uniform(0.4, 1.2)):
            provider, collection = self.rng.choice(sorted(self.owned))
            self.mutate(provider, collection)

    def _target(self, provider: str, collection: str) -> tuple[str, str | None]:
        now = time.time()
        ready = [
            rid
            for rid in self.owned[(provider, collection)]
            if now - self.changed_at.get(rid, 0) > CHANGE_SPACING_SECONDS
        ]
        draw = self.rng.random()
        if not ready or draw < 0.4:
            return "create", None
        return ("update" if draw < 0.8 else "delete"), self.rng.choice(ready)

    def mutate(self, provider: str, collection: str) -> None:
        kind, record_id = self._target(provider, collection)
        self.number += 1
        marker = f"soak-m{self.context.seed}-{self.number}"
        body: dict[str, Any] = {
            "connection_id": self.context.setup.connection_id(provider),
            "collection": collection,
            "kind": kind,
        }
        if record_id is not None:
            body["record_id"] = record_id
            self.changed_at[record_id] = time.time()
        if kind != "delete":
            body["data"] = {MARKERS[f"{provider}/{collection}"]: marker}
            if provider == "stripe" and kind == "create":
                body["data"]["email"] = f"m{self.number}@example.com"
        key = f"soak-{self.context.seed}-{self.number}"
        at = time.time()
        statuses, answer = self._send(body, key)
        mutation = answer if statuses and statuses[-1] == 200 else {}
        error_data = ((answer or {}).get("error") or {}).get("data") or {}
        self.context.history.record(
            "mutation",
            "mutator",
            key=key,
            provider=provider,
            connection_id=body["connection_id"],
            collection=collection,
            kind=kind,
            record_id=mutation.get("record_id", record_id),
            marker=marker if kind != "delete" else None,
            statuses=statuses,
            status=mutation.get("status") or (answer or {}).get("error", {}).get("key"),
            mutation_id=mutation.get("id") or error_data.get("mutation_id"),
            event_id=mutation.get("event_id"),
            at=at,
            until=time.time(),
        )
        self._own(provider, collection, kind, record_id, mutation)

    def _send(self, body: dict[str, Any], key: str) -> tuple[list[int | None], Any]:
        statuses: list[int | None] = []
        answer: Any = None
        for attempt in range(ATTEMPTS):
            response = send(
                self.recorder, self.http, "POST", "/mutations", json=body, headers={"idempotency-key": key}
            )
            statuses.append(_status(response))
            answer = _json(response)
            if response is not None and response.status_code < 500 and response.status_code not in (409, 429):
                return statuses, answer
            error_key = ((answer or {}).get("error") or {}).get("key")
            if response is not None and response.status_code == 409 and error_key == "outcome_unknown":
                return statuses, answer
            time.sleep(backoff(attempt))  # even once the run is over: a client with a key follows through
        return statuses, answer

    def _own(
        self, provider: str, collection: str, kind: str, record_id: str | None, mutation: dict[str, Any]
    ) -> None:
        owned = self.owned[(provider, collection)]
        if mutation.get("status") != "succeeded":
            if record_id in owned and kind == "delete":
                owned.remove(record_id)  # its outcome is unknown: leave it be
            return
        if kind == "create":
            owned.append(str(mutation["record_id"]))
        elif kind == "delete" and record_id in owned:
            owned.remove(record_id)


# --- pollers ---------------------------------------------------------------------------------------------


class Poller:
    """Follows `GET /events` from the start with long polls, cursor after cursor; a 5xx or a lost answer
    is asked again with the same cursor."""

    WAIT_SECONDS = 2

    def __init__(self, context: Context, name: str, filters: dict[str, str]) -> None:
        self.context = context
        self.name = name
        self.filters = filters
        self.cursor: str | None = None
        self.recorder, self.http = context.http(name)

    def page(self, http: httpx.Client, recorder: HttpRecorder, wait: int) -> dict[str, Any] | None:
        params: dict[str, Any] = {"limit": 100, "wait": wait, **self.filters}
        if self.cursor:
            params["cursor"] = self.cursor
        at = time.time()
        response = send(recorder, http, "GET", "/events", params=params, timeout=wait + 60)
        if response is None or response.status_code != 200:
            if response is not None and response.status_code < 500:
                raise RuntimeError(
                    f"{self.name}: GET /events answered {response.status_code}: {response.text}"
                )
            return None
        page: dict[str, Any] = response.json()
        self.context.history.record(
            "poll",
            self.name,
            poller=self.name,
            filters=self.filters,
            cursor=self.cursor,
            event_ids=[event["id"] for event in page["data"]],
            next_cursor=page["next_cursor"],
            has_more=page["has_more"],
            at=at,
            until=time.time(),
        )
        self.cursor = page["next_cursor"]
        return page

    def run(self) -> None:
        failures = 0
        while not self.context.stop.is_set():
            if self.page(self.http, self.recorder, self.WAIT_SECONDS) is None:
                failures += 1
                self.context.pause(backoff(failures))
            else:
                failures = 0

    def drain(self, http: httpx.Client, recorder: HttpRecorder, *, not_before: float) -> None:
        """At the end, on the fault-free stack: until a page says nothing more is there, once `not_before`
        passed (a writer killed between taking positions and committing them leaves a gap that readers
        wait at for the write deadline, then fence)."""
        for _ in range(10_000):
            page = self.page(http, recorder, 0)
            if page is not None and not page["has_more"] and not page["data"]:
                if time.time() >= not_before:
                    return
                time.sleep(0.5)
        raise RuntimeError(f"{self.name} could not drain the log")
