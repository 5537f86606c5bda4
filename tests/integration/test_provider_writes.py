"""Each provider's writes against its fake API over real HTTP, through `PullHttp` as the mutation service
makes it: a written object is what the next scan lists (the same content hash), and every failure is
typed as the service needs it: the provider's message and request id, 4xx refused, 429 with its wait, 5xx
and timeouts that may have been applied, and `read_record` finding a write whose answer was lost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pullbridge.errors import (
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
)
from pullbridge.hashing import content_hash
from pullbridge.providers import get_provider
from pullbridge.providers.base import PullSource, WriteRequest, WrittenRecord
from pullbridge.pulls.http import PullHttp
from pullbridge.pulls.stats import PullStats
from tests.fakes.fake_errors import error_body
from tests.fakes.provider_server import (
    REQUEST_ID_PREFIX,
    WRITES,
    FakeProviderServer,
)
from tests.write_cases import BY_PROVIDER, CASES, DELETABLE, Case

TIMEOUT = 0.5
STALL = 1.5


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
    server.dataset("stripe", "prices").clear()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(TIMEOUT)) as http_client:
        yield http_client


def http_for(client: httpx.Client, provider: str) -> PullHttp:
    named = get_provider(provider)
    return PullHttp(
        client,
        PullStats(),
        request_id_header=named.request_id_header,
        error_message=named.error_message,
        allow_private=True,
        sleep=lambda seconds: None,
    )


def source(server: FakeProviderServer, case: Case, **overrides: Any) -> PullSource:
    return server.pull_source(case.provider, case.collection, **case.settings, **overrides)


def write(
    server: FakeProviderServer, client: httpx.Client, case: Case, request: WriteRequest, **overrides: Any
) -> WrittenRecord:
    return get_provider(case.provider).write(
        http_for(client, case.provider), source(server, case, **overrides), request
    )


def listed(server: FakeProviderServer, client: httpx.Client, case: Case) -> dict[str, Any]:
    """The collection as a full scan lists it: record id -> data."""
    pages = get_provider(case.provider).list_pages(
        http_for(client, case.provider), source(server, case), None
    )
    return {record.record_id: record.data for page in pages for record in page.records}


def create(server: FakeProviderServer, client: httpx.Client, case: Case) -> WrittenRecord:
    return write(server, client, case, WriteRequest(case.collection, "create", data=case.create))


# --- a written object is what the next scan lists -------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_created_object_hashes_as_the_next_scan_lists_it(
    server: FakeProviderServer, client: httpx.Client, case: Case
) -> None:
    server.dataset(case.provider, case.collection).seed(3)

    written = create(server, client, case)

    scanned = listed(server, client, case)
    assert written.record_id in scanned
    assert content_hash(written.data) == content_hash(scanned[written.record_id])
    assert len(scanned) == 4


@pytest.mark.parametrize("case", CASES, ids=str)
def test_an_updated_object_hashes_as_the_next_scan_lists_it(
    server: FakeProviderServer, client: httpx.Client, case: Case
) -> None:
    server.dataset(case.provider, case.collection).seed(3)
    created = create(server, client, case)

    written = write(
        server, client, case, WriteRequest(case.collection, "update", created.record_id, case.update)
    )

    assert written.record_id == created.record_id
    assert content_hash(written.data) == content_hash(listed(server, client, case)[written.record_id])
    assert written.data != created.data


@pytest.mark.parametrize("case", DELETABLE, ids=str)
def test_a_deleted_object_is_gone_from_the_next_scan_and_reads_as_none(
    server: FakeProviderServer, client: httpx.Client, case: Case
) -> None:
    created = create(server, client, case)

    written = write(
        server, client, case, WriteRequest(case.collection, "delete", record_id=created.record_id)
    )

    assert (written.record_id, written.deleted) == (created.record_id, True)
    assert created.record_id not in listed(server, client, case)
    provider = get_provider(case.provider)
    assert (
        provider.read_record(http_for(client, case.provider), source(server, case), created.record_id) is None
    )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_read_record_shows_a_record_as_the_list_does(
    server: FakeProviderServer, client: httpx.Client, case: Case
) -> None:
    created = create(server, client, case)

    found = get_provider(case.provider).read_record(
        http_for(client, case.provider), source(server, case), created.record_id
    )

    assert content_hash(found) == content_hash(listed(server, client, case)[created.record_id])


def test_hubspot_reads_back_the_properties_the_connection_lists(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    case = Case(
        "hubspot",
        "contacts",
        {"email": "b@example.com", "phone": "1"},
        {},
        "1",
        settings={"properties": ["phone"]},
    )

    written = create(server, client, case)

    assert written.data["properties"]["phone"] == "1"
    assert "email" not in written.data["properties"]  # asked for: phone and the system properties
    assert content_hash(written.data) == content_hash(listed(server, client, case)[written.record_id])


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(BY_PROVIDER))
@pytest.mark.parametrize("status", [400, 409, 422])
def test_a_refusal_carries_the_providers_status_message_and_request_id_and_changes_nothing(
    server: FakeProviderServer, client: httpx.Client, provider: str, status: int
) -> None:
    case = BY_PROVIDER[provider]
    server.fail_with(status, method=WRITES)

    with pytest.raises(ProviderRefused) as caught:
        create(server, client, case)

    failure = caught.value
    assert failure.may_have_applied is False
    assert failure.data["status_code"] == status
    assert failure.data["message"] == get_provider(provider).error_message(error_body(provider, status))
    assert failure.data["message"]
    assert failure.data["request_id"].startswith(REQUEST_ID_PREFIX[provider])
    assert len(server.dataset(provider, case.collection)) == 0


@pytest.mark.parametrize("provider", sorted(BY_PROVIDER))
def test_wrong_credentials_are_refused_with_401(
    server: FakeProviderServer, client: httpx.Client, provider: str
) -> None:
    case = BY_PROVIDER[provider]
    wrong = {name: "wrong" for name in server.credentials(provider)}
    bad_source = PullSource(case.collection, server.base_url, wrong, source(server, case).settings)

    with pytest.raises(ProviderRefused) as caught:
        get_provider(provider).write(
            http_for(client, provider), bad_source, WriteRequest(case.collection, "create", data=case.create)
        )

    assert caught.value.data["status_code"] == 401
    assert caught.value.data["message"]


@pytest.mark.parametrize("provider", sorted(BY_PROVIDER))
def test_an_update_of_an_unknown_id_is_refused_with_404_and_the_providers_message(
    server: FakeProviderServer, client: httpx.Client, provider: str
) -> None:
    case = BY_PROVIDER[provider]

    with pytest.raises(ProviderRefused) as caught:
        write(server, client, case, WriteRequest(case.collection, "update", case.missing_id, case.update))

    assert caught.value.data["status_code"] == 404
    assert caught.value.data["message"]
    assert caught.value.data["request_id"].startswith(REQUEST_ID_PREFIX[provider])


@pytest.mark.parametrize(
    ("provider", "collection", "data", "status", "message"),
    [
        ("stripe", "products", {"description": "no name"}, 400, "Missing required param: name."),
        ("stripe", "customers", {"nickname": "x"}, 400, "Received unknown parameter: nickname"),
        ("github", "issues", {"body": "no title"}, 422, "Validation Failed: Issue.title: missing_field"),
        ("shopify", "products", {"title": " "}, 422, "title: can't be blank"),
        (
            "shopify",
            "customers",
            {"note": "nobody"},
            422,
            "base: A name, phone number, or email address must be present",
        ),
        (
            "hubspot",
            "contacts",
            {"favourite_colour": "red"},
            400,
            'Property values were not valid: [{"isValid":false,"message":"Property \\"favourite_colour\\" does not exist"',
        ),
        ("generic", "items", {"color": "red"}, 422, "name is required: a non-empty string"),
    ],
)
def test_the_providers_own_validation_is_refused_with_its_message(
    server: FakeProviderServer,
    client: httpx.Client,
    provider: str,
    collection: str,
    data: dict[str, Any],
    status: int,
    message: str,
) -> None:
    case = next(case for case in CASES if (case.provider, case.collection) == (provider, collection))

    with pytest.raises(ProviderRefused) as caught:
        write(server, client, case, WriteRequest(collection, "create", data=data))

    assert caught.value.data["status_code"] == status
    assert caught.value.data["message"].startswith(message)
    assert len(server.dataset(provider, collection)) == 0


def test_a_hubspot_contact_with_a_taken_email_is_a_409_conflict(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    case = BY_PROVIDER["hubspot"]
    first = create(server, client, case)

    with pytest.raises(ProviderRefused) as caught:
        create(server, client, case)

    assert caught.value.data["status_code"] == 409
    assert (
        caught.value.data["message"] == f"Contact already exists. Existing ID: {first.record_id} (CONFLICT)"
    )


@pytest.mark.parametrize("provider", sorted(BY_PROVIDER))
def test_429_is_rate_limited_with_the_providers_retry_after(
    server: FakeProviderServer, client: httpx.Client, provider: str
) -> None:
    case = BY_PROVIDER[provider]
    server.fail_with(429, retry_after=7, method=WRITES)

    with pytest.raises(ProviderRateLimited) as caught:
        create(server, client, case)

    assert caught.value.retry_after == 7.0
    assert caught.value.data["status_code"] == 429
    assert caught.value.data["message"]
    assert caught.value.may_have_applied is False
    assert server.requests_served == 1  # a write is never retried


@pytest.mark.parametrize("provider", sorted(BY_PROVIDER))
def test_500_may_have_been_applied(server: FakeProviderServer, client: httpx.Client, provider: str) -> None:
    case = BY_PROVIDER[provider]
    server.fail_with(500, method=WRITES, applied=True)

    with pytest.raises(ProviderUnavailable) as caught:
        create(server, client, case)

    assert caught.value.may_have_applied is True
    assert caught.value.data["status_code"] == 500
    assert caught.value.data["message"]
    assert server.requests_served == 1
    assert len(server.dataset(provider, case.collection)) == 1  # it was, this time


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_timeout_after_the_provider_applied_the_write_is_found_by_read_record(
    server: FakeProviderServer, client: httpx.Client, case: Case
) -> None:
    server.stall(STALL, method=WRITES)

    with pytest.raises(ProviderTimeout) as caught:
        create(server, client, case)

    assert caught.value.may_have_applied is True
    [record_id] = server.dataset(case.provider, case.collection).ids()  # it exists upstream
    found = get_provider(case.provider).read_record(
        http_for(client, case.provider), source(server, case), record_id
    )
    assert found is not None
    assert content_hash(found) == content_hash(listed(server, client, case)[record_id])


@pytest.mark.parametrize("provider", sorted(BY_PROVIDER))
def test_an_update_that_timed_out_is_seen_applied_by_read_record(
    server: FakeProviderServer, client: httpx.Client, provider: str
) -> None:
    case = BY_PROVIDER[provider]
    created = create(server, client, case)
    server.stall(STALL, method=WRITES)

    with pytest.raises(ProviderTimeout):
        write(server, client, case, WriteRequest(case.collection, "update", created.record_id, case.update))

    found = get_provider(provider).read_record(
        http_for(client, provider), source(server, case), created.record_id
    )
    assert found == listed(server, client, case)[created.record_id]
    assert found != created.data


def test_a_timeout_of_a_write_the_provider_dropped_leaves_nothing(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    case = BY_PROVIDER["github"]
    server.stall(STALL, method=WRITES, applied=False)

    with pytest.raises(ProviderTimeout):
        create(server, client, case)

    assert len(server.dataset("github", "issues")) == 0


def test_a_stripe_retry_with_the_same_idempotency_key_after_a_timeout_replays_the_first_answer(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    case = BY_PROVIDER["stripe"]
    request = WriteRequest("customers", "create", data=case.create, idempotency_key="mut_retry_1")
    server.stall(STALL, method=WRITES)
    with pytest.raises(ProviderTimeout):
        write(server, client, case, request)

    retried = write(server, client, case, request)

    assert server.dataset("stripe", "customers").ids() == [retried.record_id]  # created once
    first, second = server.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "mut_retry_1"
    assert first.form == second.form


def test_a_stripe_retry_with_the_same_key_and_other_parameters_is_an_idempotency_error(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    case = BY_PROVIDER["stripe"]
    write(
        server,
        client,
        case,
        WriteRequest("customers", "create", data={"email": "a@example.com"}, idempotency_key="k2"),
    )

    with pytest.raises(ProviderRefused) as caught:
        write(
            server,
            client,
            case,
            WriteRequest("customers", "create", data={"email": "b@example.com"}, idempotency_key="k2"),
        )

    assert caught.value.data["status_code"] == 400
    assert (
        "Keys for idempotent requests can only be used with the same parameters"
        in caught.value.data["message"]
    )
    assert len(server.dataset("stripe", "customers")) == 1


def test_github_has_no_delete_and_the_provider_never_sends_one(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    # GitHub answers a DELETE of an issue 404, as there is no such route...
    server.dataset("github", "issues").seed(1)
    response = client.delete(
        f"{server.base_url}/repos/{server.github_repository}/issues/1",
        headers={"Authorization": f"Bearer {server.credentials('github')['token']}"},
    )
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
    # ...so the provider does not offer it.
    assert "delete" not in get_provider("github").writable_collections({})["issues"]
