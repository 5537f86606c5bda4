"""Incremental pulls of the list APIs (Stripe's events, GitHub, Shopify): the request each provider builds
to ask what changed since a time, and how it reads the pages it gets back (records, reported deletes,
checkpoints, where it stops). The answers are scripted; `tests/integration/test_pull_incremental.py` and
`test_pull_incremental_connectors.py` run them against the fake providers over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from pullbridge.errors import PullFailed
from pullbridge.providers.base import format_iso_time
from pullbridge.providers.stripe import EVENT_TYPES, OBJECT_TYPE_BY_COLLECTION

from .scripted_http import BASE, SINCE, SINCE_ISO, Scripted, ids, pages


def test_iso_times_in_a_query_are_utc_to_the_second_rounded_down() -> None:
    assert format_iso_time(SINCE + 0.9) == SINCE_ISO


# --- stripe ----------------------------------------------------------------------------------------


def stripe_event(event_id: str, event_type: str, record: dict[str, Any], created: int = 1_700_000_100) -> Any:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "data": {"object": record},
    }


def customer(record_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": record_id, "object": "customer", "created": 1_600_000_000, **fields}


def test_stripe_asks_the_events_list_for_the_collections_event_types_since_the_time() -> None:
    http = Scripted([({"object": "list", "data": [], "has_more": False}, None)])

    pages(http, "stripe", "customers", api_version="2024-06-20")

    [call] = http.calls
    assert (call.method, call.url) == ("GET", f"{BASE}/v1/events")
    assert call.params == [
        ("types[]", "customer.created"),
        ("types[]", "customer.updated"),
        ("types[]", "customer.deleted"),
        ("created[gte]", "1700000000"),
        ("limit", "100"),
    ]
    assert call.headers == {"Authorization": "Bearer sk_test_1", "Stripe-Version": "2024-06-20"}


def test_stripe_reads_each_events_object_newest_first_and_a_deleted_event_as_a_delete() -> None:
    events = [
        stripe_event("evt_3", "customer.deleted", customer("cus_b"), created=1_700_000_300),
        stripe_event("evt_2", "customer.updated", customer("cus_a", email="new@example.com")),
        stripe_event("evt_1", "customer.created", customer("cus_b")),
    ]
    http = Scripted([({"object": "list", "data": events, "has_more": False}, None)])

    [page] = pages(http, "stripe", "customers")

    assert [(r.record_id, r.action, r.occurred_at) for r in page.records] == [
        ("cus_b", "deleted", 1_700_000_300.0),
        ("cus_a", None, 1_700_000_100.0),
        ("cus_b", None, 1_700_000_100.0),
    ]
    assert page.records[1].data == customer("cus_a", email="new@example.com")
    assert page.next_checkpoint is None


def test_stripe_pages_with_starting_after_the_last_event_which_is_the_checkpoint() -> None:
    first = [stripe_event(f"evt_{n}", "customer.updated", customer(f"cus_{n}")) for n in (9, 8)]
    http = Scripted(
        [
            ({"object": "list", "data": first, "has_more": True}, None),
            (
                {
                    "object": "list",
                    "data": [stripe_event("evt_7", "customer.created", customer("cus_7"))],
                    "has_more": False,
                },
                None,
            ),
        ]
    )

    found = pages(http, "stripe", "customers")

    assert [page.next_checkpoint for page in found] == ["evt_8", None]
    assert http.calls[1].params is not None
    assert http.calls[1].params[-1] == ("starting_after", "evt_8")
    assert ids(found) == ["cus_9", "cus_8", "cus_7"]


def test_stripe_resumes_from_a_checkpoint() -> None:
    http = Scripted([({"object": "list", "data": [], "has_more": False}, None)])

    pages(http, "stripe", "customers", checkpoint="evt_42")

    assert http.calls[0].params is not None
    assert http.calls[0].params[-1] == ("starting_after", "evt_42")


def test_stripe_skips_an_event_whose_object_is_of_another_type() -> None:
    dispute = {"id": "dp_1", "object": "dispute"}
    events = [
        stripe_event("evt_2", "charge.dispute.created", dispute),
        stripe_event("evt_1", "charge.succeeded", {"id": "ch_1", "object": "charge"}),
    ]
    http = Scripted(
        [
            ({"object": "list", "data": events, "has_more": True}, None),
            ({"data": [], "has_more": False}, None),
        ]
    )

    found = pages(http, "stripe", "charges")

    assert ids(found) == ["ch_1"]
    assert found[0].next_checkpoint == "evt_1"  # the page's last event, whatever its object


def test_stripe_subscriptions_are_asked_for_by_their_customer_subscription_events() -> None:
    http = Scripted([({"object": "list", "data": [], "has_more": False}, None)])

    pages(http, "stripe", "subscriptions")

    assert http.calls[0].params is not None
    types = [value for name, value in http.calls[0].params if name == "types[]"]
    assert "customer.subscription.deleted" in types
    assert all(value.startswith("customer.subscription.") for value in types)


@pytest.mark.parametrize("collection", sorted(EVENT_TYPES))
def test_stripe_asks_for_at_most_20_types_each_named_for_its_object(collection: str) -> None:
    types = EVENT_TYPES[collection]
    prefix = (
        "customer.subscription" if collection == "subscriptions" else OBJECT_TYPE_BY_COLLECTION[collection]
    )
    assert 0 < len(types) <= 20
    assert all(event_type.rsplit(".", 1)[0] == prefix for event_type in types)


@pytest.mark.parametrize(
    "body",
    [
        {"object": "list", "data": "nope", "has_more": False},
        {"object": "list", "data": [{"id": "evt_1", "type": "customer.updated"}], "has_more": False},
        {"object": "list", "data": [], "has_more": True},
    ],
)
def test_stripe_refuses_an_events_answer_it_cannot_read(body: Any) -> None:
    with pytest.raises(PullFailed) as caught:
        pages(Scripted([(body, None)]), "stripe", "customers")
    assert caught.value.error_type == "bad_response"


# --- github ----------------------------------------------------------------------------------------


def issue(number: int, updated: str, **extra: Any) -> dict[str, Any]:
    return {"number": number, "updated_at": updated, "created_at": "2020-01-01T00:00:00Z", **extra}


def test_github_asks_for_issues_updated_since_the_time_newest_first() -> None:
    http = Scripted([([issue(5, "2023-11-15T00:00:00Z")], None)])

    found = pages(http, "github", "issues")

    [call] = http.calls
    assert call.url == f"{BASE}/repos/octo/repo/issues"
    assert dict(call.params or []) == {
        "state": "all",
        "sort": "updated",
        "direction": "desc",
        "since": SINCE_ISO,
        "per_page": "100",
    }
    assert ids(found) == ["5"]


def test_github_issues_leave_out_pull_requests() -> None:
    body = [issue(5, "2023-11-15T00:00:00Z"), issue(6, "2023-11-15T00:00:00Z", pull_request={"url": "x"})]
    assert ids(pages(Scripted([(body, None)]), "github", "issues")) == ["5"]


def test_github_pulls_take_no_since_and_stop_at_the_first_updated_before_it() -> None:
    next_page = f"{BASE}/repositories/1/pulls?page=2"
    body = [
        issue(9, "2023-11-15T00:00:00Z"),
        issue(8, "2023-11-14T22:13:20Z"),
        issue(7, "2023-11-01T00:00:00Z"),
    ]
    http = Scripted([(body, next_page)])

    found = pages(http, "github", "pulls")

    assert "since" not in dict(http.calls[0].params or [])
    assert ids(found) == ["9", "8"]
    assert found[-1].next_checkpoint is None  # the rest of the list changed before: not read
    assert len(http.calls) == 1


def test_github_follows_the_link_while_everything_on_the_page_changed() -> None:
    next_page = f"{BASE}/repositories/1/pulls?page=2"
    http = Scripted(
        [([issue(9, "2023-11-15T00:00:00Z")], next_page), ([issue(8, "2023-11-01T00:00:00Z")], None)]
    )

    found = pages(http, "github", "pulls")

    assert [page.next_checkpoint for page in found] == [next_page, None]
    assert (http.calls[1].url, http.calls[1].params) == (next_page, None)
    assert ids(found) == ["9"]


def test_github_resumes_from_its_checkpoint_url() -> None:
    checkpoint = f"{BASE}/repositories/1/issues?page=3&since={SINCE_ISO}"
    http = Scripted([([], None)])

    pages(http, "github", "issues", checkpoint=checkpoint)

    assert (http.calls[0].url, http.calls[0].params) == (checkpoint, None)


# --- shopify ---------------------------------------------------------------------------------------


def test_shopify_asks_for_what_was_updated_at_or_after_the_time() -> None:
    http = Scripted([({"orders": [{"id": 1, "created_at": "2020-01-01T00:00:00-05:00"}]}, None)])

    found = pages(http, "shopify", "orders")

    [call] = http.calls
    assert call.url == f"{BASE}/admin/api/2024-10/orders.json"
    assert dict(call.params or []) == {"limit": "250", "updated_at_min": SINCE_ISO, "status": "any"}
    assert call.headers == {"X-Shopify-Access-Token": "shpat_1"}
    assert ids(found) == ["1"]


def test_shopify_follows_page_info_links_without_adding_parameters() -> None:
    link = f"{BASE}/admin/api/2024-10/products.json?limit=250&page_info=abc"
    http = Scripted([({"products": [{"id": 1}]}, link), ({"products": [{"id": 2}]}, None)])

    found = pages(http, "shopify", "products")

    assert (http.calls[1].url, http.calls[1].params) == (link, None)
    assert [page.next_checkpoint for page in found] == [link, None]
