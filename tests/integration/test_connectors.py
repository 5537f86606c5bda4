"""Each provider's `list_pages` against its fake list API over real HTTP: complete scans, one request per
page, resumable checkpoints, the record ids webhooks use, and typed failures for bad answers."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pullbridge.errors import PullFailed, ValidationFailed
from pullbridge.providers import get_provider
from pullbridge.providers.base import ListPage, PullSource, WebhookRequest
from pullbridge.providers.generic.settings import validate_settings
from pullbridge.pulls.http import PullHttp
from pullbridge.pulls.stats import PullStats
from tests.fakes.provider_server import FakeProviderServer, fixture_json

SCANS = [
    *[("stripe", collection, 250) for collection in sorted(get_provider("stripe").collections)],
    ("github", "issues", 230),
    ("github", "pulls", 230),
    *[("shopify", collection, 600) for collection in ("orders", "products", "customers")],
    *[("hubspot", collection, 230) for collection in ("contacts", "companies", "deals")],
    ("generic", "items", 230),
    ("generic", "events", 230),
]
"""(provider, collection, records): each spans two full pages and a partial one."""


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def clean_upstream(server: FakeProviderServer) -> Iterator[None]:
    yield
    server.clear_faults()
    server.reset_counters()
    for collections in (("stripe", c) for c in get_provider("stripe").collections):
        server.dataset(*collections).clear()
    for provider, collection in [
        ("github", "issues"),
        ("github", "pulls"),
        *[("shopify", c) for c in ("orders", "products", "customers")],
        *[("hubspot", c) for c in ("contacts", "companies", "deals")],
        ("generic", "items"),
        ("generic", "events"),
    ]:
        server.dataset(provider, collection).clear()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0)) as http_client:
        yield http_client


def scan(
    client: httpx.Client, source: PullSource, provider: str, checkpoint: str | None = None
) -> tuple[list[ListPage], PullStats]:
    stats = PullStats()
    http = PullHttp(client, stats, allow_private=True, sleep=lambda seconds: None)
    return list(get_provider(provider).list_pages(http, source, checkpoint)), stats


def page_size(provider: str, source: PullSource) -> int:
    configured = source.settings.get("page_size")
    return configured if isinstance(configured, int) else get_provider(provider).max_page_size


def record_ids(pages: list[ListPage]) -> list[str]:
    return [record.record_id for page in pages for record in page.records]


# --- complete scans -------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "collection", "count"), SCANS)
def test_a_scan_returns_every_record_once_with_one_request_per_page(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str, count: int
) -> None:
    # Given a collection of `count` records upstream
    dataset = server.dataset(provider, collection)
    dataset.seed(count)
    source = server.pull_source(provider, collection)

    # When it is scanned from the start
    pages, stats = scan(client, source, provider)

    # Then every record comes once, in pages of the provider's largest size
    assert sorted(record_ids(pages)) == sorted(dataset.ids())
    assert len(record_ids(pages)) == count
    expected_requests = math.ceil(count / page_size(provider, source))
    assert stats.requests == server.requests_served == len(pages) == expected_requests
    assert stats.retries == 0
    assert all(page.next_checkpoint for page in pages[:-1])
    assert all(record.data == dataset.get(record.record_id) for page in pages for record in page.records)


@pytest.mark.parametrize(("provider", "collection", "count"), SCANS)
def test_a_scan_resumes_from_a_mid_scan_checkpoint_with_exactly_the_remaining_pages(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str, count: int
) -> None:
    server.dataset(provider, collection).seed(count)
    source = server.pull_source(provider, collection)
    pages, _ = scan(client, source, provider)
    server.reset_counters()

    resumed, stats = scan(client, source, provider, checkpoint=pages[0].next_checkpoint)

    assert [record_ids([page]) for page in resumed] == [record_ids([page]) for page in pages[1:]]
    assert [page.next_checkpoint for page in resumed] == [page.next_checkpoint for page in pages[1:]]
    assert stats.requests == len(pages) - 1


@pytest.mark.parametrize(("provider", "collection", "count"), SCANS)
def test_records_carry_their_creation_time(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str, count: int
) -> None:
    server.dataset(provider, collection).seed(3)

    pages, _ = scan(client, server.pull_source(provider, collection), provider)

    records = [record for page in pages for record in page.records]
    moments = [record.occurred_at if collection == "events" else record.created_at for record in records]
    assert len(records) == 3
    assert all(isinstance(moment, float) and moment > 1_600_000_000 for moment in moments)


@pytest.mark.parametrize(
    ("provider", "collection"),
    [(provider, collection) for provider, collection, _ in SCANS if collection != "events"],
)
def test_an_empty_collection_is_one_request_and_one_last_page(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str
) -> None:
    pages, stats = scan(client, server.pull_source(provider, collection), provider)

    assert [(page.records, page.next_checkpoint) for page in pages] == [([], None)]
    assert stats.requests == 1


# --- the record ids webhooks use -------------------------------------------------------------------


def webhook(headers: dict[str, str], body: Any) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(
        method="POST",
        url="https://api.example.com/webhooks/conn_1",
        headers={name.lower(): value for name, value in headers.items()},
        body=raw,
    )


def stripe_case(server: FakeProviderServer) -> tuple[WebhookRequest, str, str]:
    event = fixture_json("stripe/webhook_events/customer_updated.json")
    server.dataset("stripe", "customers").add(event["data"]["object"])
    return webhook({}, event), "stripe", "customers"


def github_issue_case(server: FakeProviderServer) -> tuple[WebhookRequest, str, str]:
    payload = fixture_json("github/issues/opened.payload.json")
    server.dataset("github", "issues").add(payload["issue"])
    return webhook({"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"}, payload), "github", "issues"


def github_pull_case(server: FakeProviderServer) -> tuple[WebhookRequest, str, str]:
    payload = fixture_json("github/pull_request/opened.payload.json")
    server.dataset("github", "pulls").add(payload["pull_request"])
    return webhook({"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-2"}, payload), "github", "pulls"


def shopify_case(server: FakeProviderServer) -> tuple[WebhookRequest, str, str]:
    # A Shopify webhook body is the record in the REST representation: the SDK's order fixture.
    order = fixture_json("shopify/rest/orders.json")["orders"][0]
    server.dataset("shopify", "orders").add(order)
    headers = {"X-Shopify-Topic": "orders/updated", "X-Shopify-Webhook-Id": "w-1"}
    return webhook(headers, order), "shopify", "orders"


def hubspot_case(server: FakeProviderServer) -> tuple[WebhookRequest, str, str]:
    body = fixture_json("hubspot/webhooks/sdk-signature-test.contact.creation.json")
    # The list API gives CRM ids as strings, the webhook as integers.
    server.dataset("hubspot", "contacts").add(
        {
            "id": str(body[0]["objectId"]),
            "properties": {},
            "createdAt": "2019-07-26T04:00:00Z",
            "archived": False,
        }
    )
    return webhook({}, body), "hubspot", "contacts"


def generic_case(server: FakeProviderServer) -> tuple[WebhookRequest, str, str]:
    item = server.dataset("generic", "items").add({"name": "From a webhook"})
    return webhook({"X-Delivery-Id": "g-1"}, item), "generic", "items"


@pytest.mark.parametrize(
    "make_case",
    [stripe_case, github_issue_case, github_pull_case, shopify_case, hubspot_case, generic_case],
    ids=lambda make_case: make_case.__name__,
)
def test_a_listed_record_has_the_record_id_its_webhook_has(
    server: FakeProviderServer,
    client: httpx.Client,
    make_case: Callable[[FakeProviderServer], tuple[WebhookRequest, str, str]],
) -> None:
    request, provider, collection = make_case(server)
    settings = server.settings(provider, collection, record_id_path="id" if provider == "generic" else None)
    [event] = get_provider(provider).normalize(request, settings)
    server.dataset(provider, collection).seed(5)

    pages, _ = scan(client, server.pull_source(provider, collection, **settings), provider)

    assert event.record_id is not None
    assert event.collection in (collection, None)
    assert event.record_id in record_ids(pages)


# --- provider specifics ----------------------------------------------------------------------------


def test_github_issues_leave_out_pull_requests_and_include_closed_issues(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    issues = server.dataset("github", "issues")
    issues.seed(50)
    server.dataset("github", "pulls").seed(70)

    pages, stats = scan(client, server.pull_source("github", "issues"), "github")

    assert sorted(record_ids(pages)) == sorted(issues.ids())
    assert all("pull_request" not in record.data for page in pages for record in page.records)
    assert {record.data["state"] for page in pages for record in page.records} == {"open", "closed"}
    # The issues list holds the pull requests too: 120 items in all.
    assert stats.requests == 2


def test_github_sends_its_headers_and_follows_the_link_to_another_path(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("github", "pulls").seed(150)

    scan(client, server.pull_source("github", "pulls"), "github")

    first, second = server.requests
    assert first.path == "/repos/octokit-fixture-org/paginate-issues/pulls"
    assert first.query == {"state": ["all"], "per_page": ["100"]}
    assert first.headers["accept"] == "application/vnd.github+json"
    assert second.path == "/repositories/1000/pulls"
    assert second.query["page"] == ["2"]


def test_github_without_a_repository_setting_is_a_bad_request(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    source = server.pull_source("github", "issues", repository="not a repository")

    with pytest.raises(PullFailed) as caught:
        scan(client, source, "github")

    assert (caught.value.error_type, caught.value.key) == ("bad_request", "invalid_settings")
    assert server.requests_served == 0


def test_shopify_lists_closed_orders_too(server: FakeProviderServer, client: httpx.Client) -> None:
    orders = server.dataset("shopify", "orders")
    orders.seed(12)

    pages, _ = scan(client, server.pull_source("shopify", "orders"), "shopify")

    assert sorted(record_ids(pages)) == sorted(orders.ids())
    assert any(record.data["closed_at"] for page in pages for record in page.records)


def test_shopify_without_the_stores_url_is_a_bad_request(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    source = PullSource(
        collection="orders", base_url="", credentials=server.credentials("shopify"), settings={}
    )

    with pytest.raises(PullFailed) as caught:
        scan(client, source, "shopify")

    assert (caught.value.error_type, caught.value.key) == ("bad_request", "missing_base_url")


def test_hubspot_asks_for_the_configured_properties(server: FakeProviderServer, client: httpx.Client) -> None:
    server.dataset("hubspot", "deals").seed(2)

    scan(client, server.pull_source("hubspot", "deals", properties=["dealname", "amount"]), "hubspot")

    assert server.requests[0].query["properties"] == ["dealname,amount"]


def test_stripe_sends_the_configured_api_version(server: FakeProviderServer, client: httpx.Client) -> None:
    scan(client, server.pull_source("stripe", "prices", api_version="2024-06-20"), "stripe")

    assert server.requests[0].headers["stripe-version"] == "2024-06-20"


def test_a_page_that_upstream_changes_between_invocations_still_resumes(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    # Given a scan stopped after its first page
    dataset = server.dataset("hubspot", "companies")
    dataset.seed(250)
    source = server.pull_source("hubspot", "companies")
    first_pages, _ = scan(client, source, "hubspot")
    checkpoint = first_pages[0].next_checkpoint
    # When a record of a later page is deleted and one is added before the scan resumes
    dataset.delete(dataset.ids()[150])
    added = dataset.add()

    resumed, _ = scan(client, source, "hubspot", checkpoint=checkpoint)

    # Then the rest of the scan reflects upstream as it is now
    assert record_ids(resumed) == dataset.ids()[100:]
    assert added["id"] in record_ids(resumed)


# --- generic REST and feed ------------------------------------------------------------------------


def test_generic_rest_can_follow_the_link_header_instead_of_a_cursor(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    items = server.dataset("generic", "items")
    items.seed(230)
    source = server.pull_source("generic", "items", next_cursor_path=None, cursor_param=None)

    pages, stats = scan(client, source, "generic")
    resumed, _ = scan(client, source, "generic", checkpoint=pages[1].next_checkpoint)

    assert record_ids(pages) == items.ids()
    assert stats.requests == 3
    assert str(pages[0].next_checkpoint).startswith(f"{server.base_url}/api/items?")
    assert record_ids(resumed) == record_ids(pages[2:])


def test_generic_rest_sends_the_configured_page_size(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("generic", "items").seed(120)
    source = server.pull_source("generic", "items", page_size=50, page_size_param="limit")

    pages, stats = scan(client, source, "generic")

    assert len(record_ids(pages)) == 120
    assert stats.requests == 3
    assert all(request.query["limit"] == ["50"] for request in server.requests)


def test_the_generic_feed_is_incremental_and_its_last_checkpoint_continues(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    events = server.dataset("generic", "events")
    events.seed(150)
    source = server.pull_source("generic", "events")

    # A first pull reads the feed to its end and keeps the last page's cursor
    pages, _ = scan(client, source, "generic")
    assert all(page.incremental for page in pages)
    assert record_ids(pages) == events.ids()
    last = pages[-1].next_checkpoint
    assert last is not None

    # With nothing new, the next pull returns one empty page and the same checkpoint
    quiet, stats = scan(client, source, "generic", checkpoint=last)
    assert [(page.records, page.next_checkpoint) for page in quiet] == [([], last)]
    assert stats.requests == 1

    # New events are exactly what the pull after that returns
    added = [
        events.add({"id": f"evt_new_{n}", "type": "ticket.deleted", "data": {"id": "tkt_1"}})
        for n in range(3)
    ]
    fresh, _ = scan(client, source, "generic", checkpoint=last)
    assert record_ids(fresh) == [event["id"] for event in added]
    assert {(record.type, record.action) for page in fresh for record in page.records} == {
        ("ticket.deleted", "deleted")
    }


def test_the_generic_feed_reads_record_ids_types_and_actions_from_configured_paths(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("generic", "events").add(
        {
            "id": "evt_1",
            "kind": "ticket.changed",
            "change": "updated",
            "created_at": 1700000000,
            "data": {"id": 42},
        }
    )
    source = server.pull_source(
        "generic", "events", id_path="data.id", feed_type_path="kind", feed_action_path="change"
    )

    [page], _ = scan(client, source, "generic")

    [record] = page.records
    assert (record.record_id, record.type, record.action, record.occurred_at) == (
        "42",
        "ticket.changed",
        "updated",
        1700000000.0,
    )


def test_the_generic_feed_authenticates_with_a_configured_header(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("generic", "events").seed(1)
    token = server.credentials("generic")["bearer_token"]
    source = PullSource(
        collection="events",
        base_url=server.base_url,
        credentials={"header_name": "X-Api-Key", "header_value": token},
        settings=server.settings("generic", "events"),
    )

    pages, _ = scan(client, source, "generic")

    assert len(record_ids(pages)) == 1
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"cursor_param": "cursor"}, "settings.cursor_param"),
        ({"next_cursor_path": "next"}, "settings.cursor_param"),
        ({"page_size": 10}, "settings.page_size"),
        ({"list_path": "items"}, "settings.list_path"),
        ({"mode": "stream"}, "settings.mode"),
        ({"page_size": 0, "page_size_param": "limit"}, "settings.page_size"),
    ],
)
def test_generic_pull_settings_are_checked_when_the_connection_is_written(
    settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_settings({"signature_header": "X-Signature", "delivery_id_header": "X-Id", **settings})

    assert field in caught.value.data["fields"]


def test_generic_settings_without_pull_options_store_none() -> None:
    minimal = {"signature_header": "X-Signature", "delivery_id_header": "X-Id"}

    assert validate_settings(minimal) == validate_settings(minimal | {"mode": None, "feed_path": None})
    assert "mode" not in validate_settings(minimal)


def test_generic_rest_without_a_list_path_is_a_bad_request(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    source = server.pull_source("generic", "items", list_path=None, next_cursor_path=None, cursor_param=None)

    with pytest.raises(PullFailed) as caught:
        scan(client, source, "generic")

    assert (caught.value.error_type, caught.value.key) == ("bad_request", "invalid_settings")


# --- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "collection"),
    [
        ("stripe", "customers"),
        ("github", "issues"),
        ("shopify", "orders"),
        ("hubspot", "deals"),
        ("generic", "items"),
        ("generic", "events"),
    ],
)
def test_wrong_credentials_fail_the_scan_as_unauthorized(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str
) -> None:
    source = server.pull_source(provider, collection)
    wrong = {name: "wrong-" + value for name, value in source.credentials.items()}

    with pytest.raises(PullFailed) as caught:
        scan(client, PullSource(collection, source.base_url, wrong, source.settings), provider)

    assert caught.value.error_type == "unauthorized"
    assert server.requests_served == 1


@pytest.mark.parametrize("provider", ["stripe", "github", "shopify", "hubspot"])
def test_missing_credentials_fail_before_any_request(
    server: FakeProviderServer, client: httpx.Client, provider: str
) -> None:
    source = server.pull_source(provider, sorted(get_provider(provider).collections)[0])

    with pytest.raises(PullFailed) as caught:
        scan(client, PullSource(source.collection, source.base_url, {}, source.settings), provider)

    assert (caught.value.error_type, caught.value.key) == ("bad_request", "missing_credentials")
    assert server.requests_served == 0


@pytest.mark.parametrize("provider", ["stripe", "github", "shopify", "hubspot"])
def test_an_unknown_collection_is_a_bad_request(
    server: FakeProviderServer, client: httpx.Client, provider: str
) -> None:
    with pytest.raises(PullFailed) as caught:
        scan(client, server.pull_source(provider, "widgets"), provider)

    assert (caught.value.error_type, caught.value.key) == ("bad_request", "unknown_collection")


def test_a_failure_on_a_later_page_fails_the_scan_after_the_earlier_pages(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("stripe", "charges").seed(250)
    server.fail_with(500, times=None, on_page=3)
    stats = PullStats()
    http = PullHttp(client, stats, allow_private=True, max_attempts=2, sleep=lambda seconds: None)
    pages: list[ListPage] = []

    with pytest.raises(PullFailed) as caught:
        pages.extend(get_provider("stripe").list_pages(http, server.pull_source("stripe", "charges"), None))

    assert caught.value.error_type == "bad_gateway"
    assert len(pages) == 2
    assert stats.requests == 4


MALFORMED = [
    ("stripe", "customers", {"object": "list", "data": "nope"}),
    ("stripe", "customers", {"object": "list", "data": [{"id": 7}], "has_more": False}),
    ("stripe", "customers", {"object": "list", "data": [], "has_more": True}),
    ("github", "issues", {"message": "not a list"}),
    ("github", "pulls", [{"title": "no number"}]),
    ("shopify", "orders", {"products": []}),
    ("shopify", "orders", {"orders": [{"name": "#1"}]}),
    ("hubspot", "contacts", {"results": {}}),
    ("hubspot", "contacts", {"results": [{"id": "1"}], "paging": {"next": {}}}),
    ("hubspot", "contacts", {"results": [{"id": None}]}),
    ("generic", "items", {"data": {"id": "x"}}),
    ("generic", "items", {"data": [{"name": "no id"}]}),
    ("generic", "events", {"data": [], "next_cursor": "c"}),
    ("generic", "events", {"data": [{"id": "e"}], "has_more": True}),
    ("generic", "events", {"data": [{"id": "e"}], "has_more": False, "next_cursor": 5}),
]


@pytest.mark.parametrize(("provider", "collection", "body"), MALFORMED)
def test_a_malformed_list_response_is_bad_response(provider: str, collection: str, body: Any) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    fake = FakeProviderServer()  # not started: only its settings and credentials are used
    source = PullSource(
        collection=collection,
        base_url="https://api.example.test",
        credentials=fake.credentials(provider),
        settings=fake.settings(provider, collection),
    )
    with httpx.Client(transport=transport) as client, pytest.raises(PullFailed) as caught:
        scan(client, source, provider)

    assert caught.value.error_type == "bad_response"


@pytest.mark.parametrize(("provider", "collection"), [("github", "issues"), ("shopify", "products")])
def test_a_next_link_to_another_host_is_refused(provider: str, collection: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        link = '<https://collector.example.net/steal?page=2>; rel="next"'
        body = [] if provider == "github" else {collection: []}
        return httpx.Response(200, json=body, headers={"Link": link})

    fake = FakeProviderServer()
    source = PullSource(
        collection, "https://api.example.test", fake.credentials(provider), fake.settings(provider)
    )
    with httpx.Client(transport=httpx.MockTransport(answer)) as client, pytest.raises(PullFailed) as caught:
        scan(client, source, provider)

    assert (caught.value.error_type, caught.value.key) == ("bad_response", "foreign_next_url")


@pytest.mark.parametrize(("provider", "collection"), [("github", "issues"), ("shopify", "products")])
def test_a_checkpoint_on_another_host_is_refused(provider: str, collection: str) -> None:
    fake = FakeProviderServer()
    source = PullSource(
        collection, "https://api.example.test", fake.credentials(provider), fake.settings(provider)
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    with httpx.Client(transport=transport) as client, pytest.raises(PullFailed) as caught:
        scan(client, source, provider, checkpoint="https://collector.example.net/steal")

    assert caught.value.key == "foreign_next_url"
