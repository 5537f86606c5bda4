"""Incremental pulls through a search or a configured parameter (HubSpot's CRM search, a generic REST
collection), and where there are none (`standard`): the requests built and the pages read, from scripted
answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pullbridge.errors import PullFailed, ValidationFailed
from pullbridge.providers import get_provider
from pullbridge.providers.generic.settings import validate_settings

from .scripted_http import BASE, SINCE, SINCE_ISO, Scripted, ids, pages, source

# --- hubspot ---------------------------------------------------------------------------------------


def contact(record_id: str, updated: str = "2023-11-15T00:00:00.000Z") -> dict[str, Any]:
    return {"id": record_id, "properties": {}, "createdAt": "2020-01-01T00:00:00.000Z", "updatedAt": updated}


def test_hubspot_searches_on_the_last_modified_date_newest_first() -> None:
    http = Scripted([({"total": 1, "results": [contact("7")]}, None)])

    found = pages(http, "hubspot", "contacts", properties=["email", "firstname"])

    [call] = http.calls
    assert (call.method, call.url) == ("POST", f"{BASE}/crm/v3/objects/contacts/search")
    assert call.body == {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1700000000000"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
        "limit": 200,
        "properties": ["email", "firstname"],
    }
    assert call.headers == {"Authorization": "Bearer pat-1"}
    assert ids(found) == ["7"]
    assert found[0].next_checkpoint is None


@pytest.mark.parametrize("collection", ["companies", "deals"])
def test_hubspot_searches_companies_and_deals_on_hs_lastmodifieddate(collection: str) -> None:
    http = Scripted([({"total": 0, "results": []}, None)])

    pages(http, "hubspot", collection)

    [condition] = http.calls[0].body["filterGroups"][0]["filters"]
    assert condition["propertyName"] == "hs_lastmodifieddate"
    assert "properties" not in http.calls[0].body


def test_hubspot_pages_with_after_and_keeps_it_in_the_checkpoint() -> None:
    http = Scripted(
        [
            ({"total": 250, "results": [contact("1")], "paging": {"next": {"after": "200"}}}, None),
            ({"total": 250, "results": [contact("2")]}, None),
        ]
    )

    found = pages(http, "hubspot", "contacts")

    assert http.calls[1].body["after"] == "200"
    assert [page.next_checkpoint for page in found] == [json.dumps(["200", None]), None]


def test_hubspot_starts_the_search_again_below_the_last_update_time_at_the_10000_cap() -> None:
    last = "2023-11-15T01:02:03.456Z"
    http = Scripted(
        [
            (
                {
                    "total": 12_000,
                    "results": [contact("1"), contact("2", last)],
                    "paging": {"next": {"after": "10000"}},
                },
                None,
            ),
            ({"total": 2_000, "results": [contact("3", "2023-11-14T23:00:00.000Z")]}, None),
        ]
    )

    found = pages(http, "hubspot", "contacts", checkpoint=json.dumps(["9800", None]))

    assert http.calls[0].body["after"] == "9800"
    restart = http.calls[1].body
    assert "after" not in restart
    assert restart["filterGroups"][0]["filters"][1] == {
        "propertyName": "lastmodifieddate",
        "operator": "LTE",
        "value": "1700010123456",
    }
    assert found[0].next_checkpoint == json.dumps([None, 1_700_010_123_456])
    assert ids(found) == ["1", "2", "3"]


def test_hubspot_refuses_a_search_that_does_not_advance() -> None:
    http = Scripted([({"results": [contact("1")], "paging": {"next": {"after": "200"}}}, None)])

    with pytest.raises(PullFailed) as caught:
        pages(http, "hubspot", "contacts", checkpoint=json.dumps(["200", None]))

    assert caught.value.key == "stuck_paging"


def test_hubspot_refuses_a_checkpoint_that_is_no_search_position() -> None:
    with pytest.raises(PullFailed) as caught:
        pages(Scripted([]), "hubspot", "contacts", checkpoint="abc")
    assert caught.value.error_type == "bad_request"


# --- generic ---------------------------------------------------------------------------------------

GENERIC = {
    "signature_header": "X-Signature",
    "delivery_id_header": "X-Id",
    "list_path": "/v1/items",
    "items_path": "data",
    "next_cursor_path": "next",
    "cursor_param": "cursor",
    "updated_since_param": "updated_after",
}


def test_generic_sends_the_updated_since_parameter_with_every_cursor_request() -> None:
    http = Scripted(
        [({"data": [{"id": 1}], "next": "c2"}, None), ({"data": [{"id": 2}], "next": None}, None)]
    )

    found = pages(http, "generic", "items", **GENERIC)

    assert [dict(call.params or []) for call in http.calls] == [
        {"updated_after": SINCE_ISO},
        {"updated_after": SINCE_ISO, "cursor": "c2"},
    ]
    assert ids(found) == ["1", "2"]


@pytest.mark.parametrize(
    ("form", "value"), [("iso8601", SINCE_ISO), ("unix", "1700000000"), ("unix_ms", "1700000000000")]
)
def test_generic_writes_the_time_as_configured(form: str, value: str) -> None:
    http = Scripted([({"data": [], "next": None}, None)])

    pages(http, "generic", "items", **GENERIC, updated_since_format=form)

    assert dict(http.calls[0].params or [])["updated_after"] == value


def test_generic_link_paging_puts_the_parameter_on_the_first_url_only() -> None:
    settings = {**GENERIC, "next_cursor_path": None, "cursor_param": None}
    link = f"{BASE}/v1/items?updated_after=x&page=2"
    http = Scripted([({"data": [{"id": 1}]}, link), ({"data": [{"id": 2}]}, None)])

    pages(http, "generic", "items", **{key: value for key, value in settings.items() if value is not None})

    assert http.calls[0].url == f"{BASE}/v1/items?updated_after=2023-11-14T22%3A13%3A20Z"
    assert http.calls[1].url == link


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "feed"},
        {"list_path": "/v1/items"},
        {},
    ],
    ids=["feed", "rest-without-the-parameter", "no-pulls"],
)
def test_generic_offers_incremental_pulls_only_with_the_parameter(settings: dict[str, Any]) -> None:
    provider = get_provider("generic")
    assert (
        provider.supports_updates(
            {"signature_header": "X-Signature", "delivery_id_header": "X-Id", **settings}
        )
        is False
    )
    assert provider.supports_updates(GENERIC) is True


def test_generic_without_the_parameter_is_a_bad_request_naming_it() -> None:
    settings = {key: value for key, value in GENERIC.items() if key != "updated_since_param"}
    with pytest.raises(PullFailed) as caught:
        pages(Scripted([]), "generic", "items", **settings)
    assert (caught.value.error_type, caught.value.data) == (
        "bad_request",
        {"field": "settings.updated_since_param"},
    )


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"updated_since_param": "a b"}, "settings.updated_since_param"),
        ({"updated_since_param": "since", "mode": "feed"}, "settings.updated_since_param"),
        ({"updated_since_format": "unix"}, "settings.updated_since_format"),
        (
            {"updated_since_param": "since", "updated_since_format": "rfc2822"},
            "settings.updated_since_format",
        ),
    ],
)
def test_generic_updated_since_settings_are_checked_naming_the_field(
    settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_settings({"signature_header": "X-Signature", "delivery_id_header": "X-Id", **settings})
    assert caught.value.data["field"] == field


def test_generic_stores_the_updated_since_settings() -> None:
    stored = validate_settings({**GENERIC, "updated_since_format": "unix_ms"})
    assert (stored["updated_since_param"], stored["updated_since_format"]) == ("updated_after", "unix_ms")


# --- standard, and what every provider declares -----------------------------------------------------


def test_standard_has_no_list_api_so_no_incremental_pulls() -> None:
    provider = get_provider("standard")
    assert provider.supports_updates({}) is False
    with pytest.raises(NotImplementedError):
        list(provider.updated_pages(Scripted([]), source("stripe", "x"), SINCE, None))


@pytest.mark.parametrize(
    ("name", "lookback"),
    [
        ("stripe", 30 * 86_400),
        ("github", None),
        ("shopify", None),
        ("hubspot", None),
        ("generic", None),
        ("standard", None),
    ],
)
def test_each_provider_says_how_far_back_it_can_be_asked(name: str, lookback: float | None) -> None:
    assert get_provider(name).updates_lookback_seconds == lookback


@pytest.mark.parametrize("name", ["stripe", "github", "shopify", "hubspot"])
def test_fixed_providers_offer_incremental_pulls(name: str) -> None:
    assert get_provider(name).supports_updates({}) is True
