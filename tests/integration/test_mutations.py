"""Mutations against the fake providers over real HTTP, on moto's DynamoDB (issue 16): each provider's
writes logged once with their record and snapshot (so the next scan emits nothing), the provider's webhook
for the same change logged as a webhook, `Idempotency-Key` through Powertools (replays, a racing request,
another body), and every failure the fakes inject, including a timeout after the write landed."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pullbridge.connections import StoredConnection, create_connection
from pullbridge.errors import (
    Conflict,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    StorageUnavailable,
)
from pullbridge.models import ConnectionCreate
from pullbridge.mutations import service
from pullbridge.mutations.idempotency import IdempotentMutations
from pullbridge.mutations.models import Mutation, MutationCreate
from pullbridge.mutations.service import Mutations, answer, get_mutation
from pullbridge.pulls.engine import PullEngine
from pullbridge.pulls.models import SubscriptionCreate
from pullbridge.pulls.records import load_pull
from pullbridge.pulls.service import create_subscription, trigger_pull
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store, dynamodb_client
from pullbridge.storage.idempotency import idempotency_persistence
from tests.fakes.provider_server import REQUEST_ID_PREFIX, WRITES, FakeProviderServer
from tests.write_cases import BY_PROVIDER, CASES, DELETABLE, Case

TENANT = "t_alpha"
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def clean_upstream(server: FakeProviderServer) -> Iterator[None]:
    yield
    server.clear_faults()
    server.reset_counters()
    for case in CASES:
        server.dataset(case.provider, case.collection).clear()


@pytest.fixture
def local_settings(settings: ApiSettings) -> ApiSettings:
    return dataclasses.replace(settings, allow_private_urls=True)  # the fake listens on 127.0.0.1


@pytest.fixture
def runner(store: Store, local_settings: ApiSettings) -> Iterator[IdempotentMutations]:
    with httpx.Client(timeout=httpx.Timeout(TIMEOUT)) as client:
        mutations = Mutations(store, client, allow_private=True)
        persistence = idempotency_persistence(
            dynamodb_client(local_settings.dynamodb_endpoint), local_settings.idempotency_table
        )
        yield IdempotentMutations(mutations, persistence)


def connect(store: Store, settings: ApiSettings, server: FakeProviderServer, case: Case) -> StoredConnection:
    request = ConnectionCreate(
        provider=case.provider,  # type: ignore[arg-type]
        name=case.provider,
        webhook_secrets=["whsec_plain_secret"],  # type: ignore[list-item]
        credentials=server.credentials(case.provider),  # type: ignore[arg-type]
        api_base_url=server.base_url,
        settings=server.settings(case.provider, case.collection, **case.settings),
    )
    return create_connection(store, settings, TENANT, request)


def mutate(
    runner: IdempotentMutations,
    connection: StoredConnection,
    collection: str,
    kind: str,
    *,
    record_id: str | None = None,
    data: dict[str, Any] | None = None,
    key: str | None = None,
) -> Mutation:
    request = MutationCreate(
        connection_id=connection.id,
        collection=collection,
        kind=kind,  # type: ignore[arg-type]
        record_id=record_id,
        data=data,
    )
    return answer(runner.run(TENANT, request, key))


def logged(store: Store, connection_id: str) -> list[dict[str, Any]]:
    return [event.document for event in store.read_log(TENANT, connection_id, 0, 1000).events]


def writes_to(server: FakeProviderServer, case: Case) -> list[Any]:
    return [
        r
        for r in server.requests
        if r.method in ("POST", "PUT", "PATCH", "DELETE") and "search" not in r.path
    ]


def full_scan(store: Store, settings: ApiSettings, connection: StoredConnection, collection: str) -> Any:
    subscription = create_subscription(
        store, TENANT, SubscriptionCreate(connection_id=connection.id, collection=collection, backfill=True)
    )
    engine = PullEngine(
        store, settings, httpx.Client(timeout=5), sleep=lambda s: None, yield_margin_seconds=0
    )
    trigger_pull(store, TENANT, subscription.id)
    pull = load_pull(store, engine.advance(subscription.id, deadline=time.time() + 60) or "")
    assert pull is not None
    assert pull.status == "success", pull
    return pull


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_create_and_an_update_are_logged_once_with_their_record_and_the_scan_emits_nothing(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    case: Case,
) -> None:
    connection = connect(store, local_settings, server, case)
    created = mutate(runner, connection, case.collection, "create", data=case.create)

    assert created.status == "succeeded"
    assert created.error is None
    record_id = created.record_id
    assert record_id is not None
    upstream = server.dataset(case.provider, case.collection).get(record_id)
    assert upstream, "the write reached the provider"
    events = logged(store, connection.id)
    assert [(e["type"], e["source"], e["record_id"]) for e in events] == [
        (f"{case.collection}.created", "mutation", record_id)
    ]
    assert events[0]["data"] == created.record
    stored = store.get_record(connection.id, case.collection, record_id)
    assert stored is not None
    assert stored.data == created.record
    assert not stored.deleted
    assert stored.last_event_id == created.event_id

    updated = mutate(runner, connection, case.collection, "update", record_id=record_id, data=case.update)
    assert updated.status == "succeeded"
    assert [e["type"] for e in logged(store, connection.id)][-1] == f"{case.collection}.updated"
    assert store.get_record(connection.id, case.collection, record_id).data == updated.record  # type: ignore[union-attr]

    # A scan with backfill would announce any record its snapshot does not hold as it is listed.
    pull = full_scan(store, local_settings, connection, case.collection)
    assert (pull.stats["created"], pull.stats["updated"], pull.stats["deleted"]) == (0, 0, 0), pull.stats
    assert len(logged(store, connection.id)) == 2


@pytest.mark.parametrize("case", DELETABLE, ids=str)
def test_a_delete_leaves_a_tombstone_and_the_scan_reports_no_delete(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    case: Case,
) -> None:
    connection = connect(store, local_settings, server, case)
    created = mutate(runner, connection, case.collection, "create", data=case.create)
    deleted = mutate(runner, connection, case.collection, "delete", record_id=created.record_id)

    assert deleted.status == "succeeded"
    assert [e["type"] for e in logged(store, connection.id)] == [
        f"{case.collection}.created",
        f"{case.collection}.deleted",
    ]
    tombstone = store.get_record(connection.id, case.collection, created.record_id or "")
    assert tombstone is not None
    assert tombstone.deleted
    assert tombstone.data  # the last state, even where the provider answers a delete with nothing
    pull = full_scan(store, local_settings, connection, case.collection)
    assert pull.stats["deleted"] == 0
    assert len(logged(store, connection.id)) == 2


def test_the_providers_webhook_for_the_same_change_is_logged_as_a_webhook(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    ingest: Any,
) -> None:
    from tests.support import lambda_context, sample_event

    case = BY_PROVIDER["stripe"]
    connection = connect(store, local_settings, server, case)
    created = mutate(runner, connection, case.collection, "create", data=case.create)
    event = next(e for e in server.stripe.events if e["data"]["object"]["id"] == created.record_id)
    headers, body = server.stripe.webhook(event, "whsec_plain_secret", int(time.time()))
    request = sample_event("webhook_standard.json")
    request["rawPath"] = request["requestContext"]["http"]["path"] = f"/webhooks/{connection.id}"
    request["pathParameters"] = {"connection_id": connection.id}
    request["headers"] = {name.lower(): value for name, value in headers.items()}
    request["body"] = body.decode()
    response = ingest.lambda_handler(request, lambda_context())
    assert response["statusCode"] == 200, response

    events = logged(store, connection.id)
    assert [(e["source"], e["type"]) for e in events] == [
        ("mutation", "customers.created"),
        ("webhook", "customer.created"),
    ]
    assert events[1]["record_id"] == created.record_id
    assert store.get_record(connection.id, "customers", created.record_id or "").data == created.record  # type: ignore[union-attr]


def test_stripe_gets_the_callers_idempotency_key_and_form_encoded_fields(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["stripe"]
    connection = connect(store, local_settings, server, case)
    mutate(
        runner,
        connection,
        case.collection,
        "create",
        data={"email": "a@b.test", "metadata": {"x": "1"}},
        key="k-1",
    )
    (write,) = writes_to(server, case)
    assert write.headers["idempotency-key"] == "k-1"
    assert write.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert write.form_dict["metadata[x]"] == "1"


def test_the_same_key_answers_the_first_answer_and_calls_the_provider_once(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["github"]
    connection = connect(store, local_settings, server, case)
    first = mutate(runner, connection, case.collection, "create", data=case.create, key="same")
    again = mutate(runner, connection, case.collection, "create", data=case.create, key="same")

    assert again == first
    assert len(writes_to(server, case)) == 1
    assert len(server.dataset("github", "issues")) == 1
    assert len(logged(store, connection.id)) == 1
    with pytest.raises(Conflict) as reused:
        mutate(runner, connection, case.collection, "create", data={"title": "Other"}, key="same")
    assert reused.value.key == "idempotency_key_reused"
    assert len(writes_to(server, case)) == 1


def test_two_racing_requests_with_one_key_call_the_provider_once_and_get_one_answer(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["github"]
    connection = connect(store, local_settings, server, case)
    server.stall(0.3, method=WRITES, applied=True)  # the first holds the key while the second arrives
    answers: list[Mutation] = []
    failures: list[BaseException] = []

    def race() -> None:
        try:
            answers.append(
                mutate(runner, connection, case.collection, "create", data=case.create, key="race")
            )
        except BaseException as exc:
            failures.append(exc)

    # Under the client's timeout: the stalled answer still arrives.
    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len({a.id for a in answers}) == 1
    assert len(answers) == 4
    assert len(writes_to(server, case)) == 1
    assert len(server.dataset("github", "issues")) == 1


@pytest.mark.parametrize(
    ("provider", "status"),
    [("stripe", 400), ("github", 422), ("shopify", 422), ("hubspot", 400), ("stripe", 401), ("github", 409)],
)
def test_a_refusal_is_422_with_the_providers_status_message_and_request_id_and_stands_for_the_key(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    provider: str,
    status: int,
) -> None:
    case = BY_PROVIDER[provider]
    connection = connect(store, local_settings, server, case)
    server.fail_with(status, method=WRITES)
    with pytest.raises(ProviderRefused) as refused:
        mutate(runner, connection, case.collection, "create", data=case.create, key="refused")
    data = refused.value.data
    assert refused.value.status_code == 422
    assert refused.value.error_type == "unprocessable"
    assert data["status_code"] == status
    assert data["message"]
    assert str(data["request_id"]).startswith(REQUEST_ID_PREFIX[provider])
    mutation = get_mutation(store, TENANT, data["mutation_id"])
    assert mutation.status == "failed"
    assert mutation.error is not None
    assert logged(store, connection.id) == []
    # The refusal is the key's answer: the provider is not asked again.
    with pytest.raises(ProviderRefused):
        mutate(runner, connection, case.collection, "create", data=case.create, key="refused")
    assert len(writes_to(server, case)) == 1


@pytest.mark.parametrize("case", CASES, ids=str)
def test_an_update_of_an_unknown_record_is_the_providers_404(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    case: Case,
) -> None:
    connection = connect(store, local_settings, server, case)
    with pytest.raises(ProviderRefused) as refused:
        mutate(runner, connection, case.collection, "update", record_id=case.missing_id, data=case.update)
    assert refused.value.data["status_code"] == 404


def test_a_429_passes_its_retry_after_on_and_a_retry_with_the_key_writes(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["shopify"]
    connection = connect(store, local_settings, server, case)
    server.fail_with(429, method=WRITES, retry_after=7)
    with pytest.raises(ProviderRateLimited) as limited:
        mutate(runner, connection, case.collection, "create", data=case.create, key="busy")
    assert limited.value.response_headers() == {"Retry-After": "7"}
    assert get_mutation(store, TENANT, limited.value.data["mutation_id"]).status == "failed"
    assert len(server.dataset("shopify", case.collection)) == 0

    retried = mutate(runner, connection, case.collection, "create", data=case.create, key="busy")
    assert retried.id == limited.value.data["mutation_id"]
    assert retried.status == "succeeded"
    assert len(server.dataset("shopify", case.collection)) == 1
    assert len(logged(store, connection.id)) == 1


def test_a_500_after_the_write_landed_leaves_it_unknown_and_the_retry_checks_before_writing(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["hubspot"]
    connection = connect(store, local_settings, server, case)
    created = mutate(runner, connection, case.collection, "create", data=case.create)
    server.reset_counters()
    server.fail_with(500, method=WRITES, applied=True)
    with pytest.raises(ProviderUnavailable) as failed:
        mutate(runner, connection, case.collection, "delete", record_id=created.record_id, key="gone")
    assert failed.value.status_code == 502
    assert failed.value.may_have_applied
    assert get_mutation(store, TENANT, failed.value.data["mutation_id"]).status == "unknown"

    recovered = mutate(runner, connection, case.collection, "delete", record_id=created.record_id, key="gone")
    assert recovered.status == "succeeded"
    deletes = [r for r in writes_to(server, case) if r.method == "DELETE"]
    assert len(deletes) == 1, "the landed delete is found by reading, not sent again"
    assert [e["type"] for e in logged(store, connection.id)][-1] == f"{case.collection}.deleted"


def test_a_timeout_after_the_write_reached_the_provider_is_504_unknown_and_stripe_replays_the_key(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["stripe"]
    connection = connect(store, local_settings, server, case)
    server.stall(TIMEOUT * 3, method=WRITES, applied=True)
    with pytest.raises(ProviderTimeout) as timed_out:
        mutate(runner, connection, case.collection, "create", data=case.create, key="slow")
    assert timed_out.value.status_code == 504
    mutation_id = timed_out.value.data["mutation_id"]
    assert get_mutation(store, TENANT, mutation_id).status == "unknown"
    assert len(server.dataset("stripe", case.collection)) == 1, "the write landed upstream"
    time.sleep(TIMEOUT * 3)  # the stalled answer is done

    recovered = mutate(runner, connection, case.collection, "create", data=case.create, key="slow")
    assert recovered.id == mutation_id
    assert recovered.status == "succeeded"
    assert len(server.dataset("stripe", case.collection)) == 1, "Stripe replayed the key: one customer"
    assert len(logged(store, connection.id)) == 1


def test_an_unknown_create_at_a_provider_without_keys_is_not_sent_twice(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["github"]
    connection = connect(store, local_settings, server, case)
    server.stall(TIMEOUT * 3, method=WRITES, applied=True)
    with pytest.raises(ProviderTimeout):
        mutate(runner, connection, case.collection, "create", data=case.create, key="once")
    time.sleep(TIMEOUT * 3)
    with pytest.raises(Conflict) as unknown:
        mutate(runner, connection, case.collection, "create", data=case.create, key="once")
    assert unknown.value.key == "outcome_unknown"
    assert len(server.dataset("github", "issues")) == 1
    assert len([r for r in writes_to(server, case) if r.method == "POST"]) == 1


def test_a_run_that_failed_after_its_commit_is_answered_from_its_event_and_not_sent_again(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by the soak (bench/soak): the last save of a mutation failed after its event was committed; the
    # retry with its key answered 409 outcome_unknown and left it `pending`, its event naming no mutation.
    case = BY_PROVIDER["github"]  # no idempotency keys upstream: a create is never sent twice
    connection = connect(store, local_settings, server, case)
    saved = service.save_mutation

    def fail_the_last_save(store: Store, mutation: Any) -> None:
        if mutation.status == "succeeded":
            monkeypatch.setattr(service, "save_mutation", saved)
            raise StorageUnavailable("storage failed; retry later")
        saved(store, mutation)

    monkeypatch.setattr(service, "save_mutation", fail_the_last_save)
    with pytest.raises(StorageUnavailable):
        mutate(runner, connection, case.collection, "create", data=case.create, key="after-commit")
    (event,) = logged(store, connection.id)

    recovered = mutate(runner, connection, case.collection, "create", data=case.create, key="after-commit")

    assert (recovered.status, recovered.event_id) == ("succeeded", event["id"])
    assert (recovered.record_id, recovered.record) == (event["record_id"], event["data"])
    assert get_mutation(store, TENANT, recovered.id).status == "succeeded"
    assert len([r for r in writes_to(server, case) if r.method == "POST"]) == 1
    assert len(logged(store, connection.id)) == 1


def test_a_retry_after_a_429_that_dies_after_its_commit_is_answered_from_its_event(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by the soak: a delete refused 429 (`failed`, not sent), sent again by its retry, which landed
    # and was logged, then failed its last save; the next retry sent it a third time, got the provider's
    # 404 and ended `failed` (422), while the delete and its event stood.
    case = BY_PROVIDER["stripe"]
    connection = connect(store, local_settings, server, case)
    created = mutate(runner, connection, case.collection, "create", data=case.create)
    server.fail_with(429, method=WRITES, retry_after=0)
    with pytest.raises(ProviderRateLimited):
        mutate(runner, connection, case.collection, "delete", record_id=created.record_id, key="del")
    saved = service.save_mutation

    def fail_the_last_save(store: Store, mutation: Any) -> None:
        if mutation.status == "succeeded":
            monkeypatch.setattr(service, "save_mutation", saved)
            raise StorageUnavailable("storage failed; retry later")
        saved(store, mutation)

    monkeypatch.setattr(service, "save_mutation", fail_the_last_save)
    with pytest.raises(StorageUnavailable):
        mutate(runner, connection, case.collection, "delete", record_id=created.record_id, key="del")

    recovered = mutate(runner, connection, case.collection, "delete", record_id=created.record_id, key="del")

    deleted = logged(store, connection.id)[-1]
    assert (recovered.status, recovered.event_id) == ("succeeded", deleted["id"])
    assert deleted["type"] == f"{case.collection}.deleted"
    deletes = [r for r in writes_to(server, case) if r.method == "DELETE"]
    assert len(deletes) == 2, "the 429'd one, and the one that landed: never a third"


def test_a_retry_after_a_429_whose_run_dies_after_sending_is_recovered_not_sent_again(
    store: Store,
    local_settings: ApiSettings,
    server: FakeProviderServer,
    runner: IdempotentMutations,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = BY_PROVIDER["github"]  # no idempotency keys upstream: a create must never be sent twice
    connection = connect(store, local_settings, server, case)
    server.fail_with(429, method=WRITES, retry_after=0)
    with pytest.raises(ProviderRateLimited):
        mutate(runner, connection, case.collection, "create", data=case.create, key="twice?")
    monkeypatch.setattr(service.Mutations, "_log", _dies_before_the_commit)
    with pytest.raises(StorageUnavailable):  # sent, landed, then its run died before the commit
        mutate(runner, connection, case.collection, "create", data=case.create, key="twice?")
    monkeypatch.undo()

    with pytest.raises(Conflict) as unknown:
        mutate(runner, connection, case.collection, "create", data=case.create, key="twice?")

    assert unknown.value.key == "outcome_unknown"
    assert len(server.dataset("github", "issues")) == 1


def _dies_before_the_commit(*_: Any) -> str:
    raise StorageUnavailable("storage failed; retry later")


def test_an_unknown_update_of_a_record_deleted_since_is_refused_after_reading(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["shopify"]
    connection = connect(store, local_settings, server, case)
    created = mutate(runner, connection, case.collection, "create", data=case.create)
    server.fail_with(502, method=WRITES)
    with pytest.raises(ProviderUnavailable):
        mutate(
            runner,
            connection,
            case.collection,
            "update",
            record_id=created.record_id,
            data=case.update,
            key="u",
        )
    server.dataset("shopify", case.collection).delete(int(created.record_id or 0))
    with pytest.raises(ProviderRefused) as refused:
        mutate(
            runner,
            connection,
            case.collection,
            "update",
            record_id=created.record_id,
            data=case.update,
            key="u",
        )
    assert refused.value.data["status_code"] == 404


def test_an_unreachable_provider_is_502_and_the_mutation_failed_not_unknown(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    case = BY_PROVIDER["github"]
    connection = connect(store, local_settings, server, case)
    unreachable = dataclasses.replace(connection, api_base_url="http://127.0.0.1:9")
    from pullbridge.connection_records import save_connection

    assert save_connection(store, unreachable, expected_version=connection.version)
    with pytest.raises(ProviderUnavailable) as failed:
        mutate(runner, connection, case.collection, "create", data=case.create)
    assert not failed.value.may_have_applied
    assert get_mutation(store, TENANT, failed.value.data["mutation_id"]).status == "failed"


def test_mutations_are_listed_newest_first_and_filtered(
    store: Store, local_settings: ApiSettings, server: FakeProviderServer, runner: IdempotentMutations
) -> None:
    from pullbridge.cursors import CursorCodec
    from pullbridge.mutations.service import list_mutations

    case = BY_PROVIDER["github"]
    connection = connect(store, local_settings, server, case)
    first = mutate(runner, connection, case.collection, "create", data=case.create)
    server.fail_with(422, method=WRITES)
    with pytest.raises(ProviderRefused):
        mutate(runner, connection, case.collection, "create", data=case.create)
    codec = CursorCodec(local_settings.cursor_secret or "")
    page = list_mutations(store, codec, TENANT, connection_id=None, status=None, cursor=None, limit=10)
    assert [m.status for m in page.data] == ["failed", "succeeded"]
    succeeded = list_mutations(
        store, codec, TENANT, connection_id=connection.id, status="succeeded", cursor=None, limit=10
    )
    assert [m.id for m in succeeded.data] == [first.id]
    one = list_mutations(store, codec, TENANT, connection_id=None, status=None, cursor=None, limit=1)
    assert one.has_more
    rest = list_mutations(
        store, codec, TENANT, connection_id=None, status=None, cursor=one.next_cursor, limit=1
    )
    assert [m.id for m in rest.data] == [first.id]
