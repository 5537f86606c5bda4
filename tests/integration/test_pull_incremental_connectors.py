"""Each provider's `updated_pages` against its fake over real HTTP: what changed since a time, read in full
pages and resumable from a checkpoint; nothing changed, one request; Stripe's events newest first with the
deletes it reports; HubSpot contacts found by `lastmodifieddate`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pullbridge.providers import get_provider
from pullbridge.providers.base import ListPage, PullSource
from pullbridge.pulls.http import PullHttp
from pullbridge.pulls.stats import PullStats
from tests.fakes.provider_server import FakeProviderServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def clean_upstream(server: FakeProviderServer) -> Iterator[None]:
    yield
    server.clear_faults()
    server.reset_counters()
    for provider, collection in [
        ("stripe", "customers"),
        ("github", "issues"),
        ("github", "pulls"),
        ("shopify", "products"),
        ("hubspot", "contacts"),
        ("hubspot", "deals"),
        ("generic", "items"),
    ]:
        server.dataset(provider, collection).clear()


def record_ids(pages: list[ListPage]) -> list[str]:
    return [record.record_id for page in pages for record in page.records]


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0)) as http_client:
        yield http_client


UPDATES = [
    ("stripe", "customers", 100),
    ("github", "issues", 100),
    ("github", "pulls", 100),
    ("shopify", "products", 250),
    ("hubspot", "deals", 200),
    ("generic", "items", 100),
]
"""(provider, collection, records a page of what changed)."""


def updated(
    client: httpx.Client, source: PullSource, provider: str, since: float, checkpoint: str | None = None
) -> tuple[list[ListPage], PullStats]:
    stats = PullStats()
    http = PullHttp(client, stats, allow_private=True, sleep=lambda seconds: None)
    return list(get_provider(provider).updated_pages(http, source, since, checkpoint)), stats


def change(
    server: FakeProviderServer, provider: str, collection: str, records: list[dict[str, Any]]
) -> list[str]:
    """Update each record (its update time becomes now); returns their ids."""
    dataset = server.dataset(provider, collection)
    for record in records:
        if provider == "hubspot":
            dataset.update(record["id"], properties={**record["properties"], "dealname": "changed"})
        else:
            dataset.update(record[dataset.id_field], title="changed", email="changed@example.com")
    return [str(record[dataset.id_field]) for record in records]


@pytest.mark.parametrize(("provider", "collection", "per_page"), UPDATES)
def test_what_changed_is_read_in_full_pages_and_resumes_from_a_checkpoint(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str, per_page: int
) -> None:
    # Given many records, of which more than a page changed since a time
    records = server.dataset(provider, collection).seed(per_page * 2 + 30)
    since = time.time() - 1
    changed = change(server, provider, collection, records[5 : per_page + 25])
    source = server.pull_source(provider, collection)

    pages, stats = updated(client, source, provider, since)

    # Then exactly those come, a full page at a time, each as it is now
    assert sorted(record_ids(pages)) == sorted(changed)
    assert stats.requests == server.requests_served == 2
    dataset = server.dataset(provider, collection)
    assert all(record.data == dataset.get(record.record_id) for page in pages for record in page.records)
    # And a pull that stopped after the first page goes on from its checkpoint
    assert pages[0].next_checkpoint is not None
    resumed, _ = updated(client, source, provider, since, pages[0].next_checkpoint)
    assert record_ids(resumed) == record_ids(pages[1:])


@pytest.mark.parametrize(("provider", "collection", "per_page"), UPDATES)
def test_nothing_changed_is_one_request_and_no_record(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str, per_page: int
) -> None:
    server.dataset(provider, collection).seed(30)

    pages, stats = updated(client, server.pull_source(provider, collection), provider, time.time() - 1)

    assert record_ids(pages) == []
    assert stats.requests == 1


def test_stripe_reports_a_delete_and_every_state_newest_first(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    dataset = server.dataset("stripe", "customers")
    [kept, gone] = dataset.seed(2)
    since = time.time() - 1
    dataset.update(kept["id"], email="first@example.com")
    latest = dataset.update(kept["id"], email="second@example.com")
    dataset.delete(gone["id"])

    [page], _ = updated(client, server.pull_source("stripe", "customers"), "stripe", since)

    assert [(record.record_id, record.action, record.data.get("email")) for record in page.records] == [
        (gone["id"], "deleted", gone["email"]),
        (kept["id"], None, "second@example.com"),
        (kept["id"], None, "first@example.com"),
    ]
    assert page.records[1].data == latest


def test_hubspot_contacts_are_found_by_lastmodifieddate(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    contacts = server.dataset("hubspot", "contacts")
    [record] = contacts.seed(1)
    since = time.time() - 1
    contacts.update(record["id"], properties={**record["properties"], "firstname": "Changed"})

    pages, _ = updated(client, server.pull_source("hubspot", "contacts"), "hubspot", since)

    assert record_ids(pages) == [record["id"]]
    [request] = server.requests
    assert request.body["filterGroups"][0]["filters"][0]["propertyName"] == "lastmodifieddate"


@pytest.mark.parametrize(("provider", "collection", "per_page"), UPDATES)
def test_a_change_dated_before_the_time_asked_from_is_left_out(
    server: FakeProviderServer, client: httpx.Client, provider: str, collection: str, per_page: int
) -> None:
    # Given two records changed upstream: one before the time asked from, one after it
    early, late = server.dataset(provider, collection).seed(2)
    since = time.time() - 60
    dataset = server.dataset(provider, collection)
    dataset.update(early[dataset.id_field], changed_at=since - 30, title="early", email="early@example.com")
    dataset.update(late[dataset.id_field], changed_at=since + 30, title="late", email="late@example.com")

    pages, _ = updated(client, server.pull_source(provider, collection), provider, since)

    assert record_ids(pages) == [str(late[dataset.id_field])]
