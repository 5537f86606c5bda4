"""Generic writes: `settings.mutations`, validated strictly, and the requests a connection makes with it
(through `PullHttp` over an `httpx.MockTransport`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pullbridge.errors import ProviderUnavailable, PullFailed, ValidationFailed
from pullbridge.providers import get_provider
from pullbridge.providers.base import PullSource, WriteRequest
from pullbridge.providers.generic.settings import validate_settings

from .mock_upstream import Upstream, http_for

WEBHOOK: dict[str, Any] = {"signature_header": "X-Signature", "delivery_id_path": "$.id"}
ITEMS: dict[str, Any] = {
    "create": {"method": "POST", "path": "/v1/items"},
    "update": {"method": "PATCH", "path": "/v1/items/{record_id}"},
    "delete": {"method": "DELETE", "path": "/v1/items/{record_id}"},
    "read": {"path": "/v1/items/{record_id}"},
}


def settings(**mutations: Any) -> dict[str, Any]:
    return WEBHOOK | {"mutations": mutations or {"items": ITEMS}}


def refused(candidate: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        validate_settings(candidate)
    fields: list[str] = caught.value.data["fields"]
    return fields


# --- settings -------------------------------------------------------------------------------------


def test_mutations_are_stored_as_given_without_unset_options() -> None:
    assert validate_settings(settings())["mutations"] == {"items": ITEMS}


def test_a_connection_writes_the_kinds_it_configures() -> None:
    provider = get_provider("generic")
    configured = settings(items=ITEMS, notes={"create": {"method": "PUT", "path": "/notes"}})

    assert provider.writable_collections(configured) == {
        "items": frozenset({"create", "update", "delete"}),
        "notes": frozenset({"create"}),
    }
    assert provider.writable_collections(WEBHOOK) == {}
    assert provider.writable_collections({"mutations": "not settings"}) == {}


@pytest.mark.parametrize(
    ("mutations", "field"),
    [
        ({"items": ITEMS | {"upsert": {"method": "PUT", "path": "/x"}}}, "settings.mutations.items.upsert"),
        (
            {"items": {"create": {"method": "POST", "path": "/x", "body": "json"}}},
            "settings.mutations.items.create.body",
        ),
        ({"items": {"create": {"method": "GET", "path": "/x"}}}, "settings.mutations.items.create.method"),
        ({"items": {"create": {"method": "post", "path": "/x"}}}, "settings.mutations.items.create.method"),
        ({"items": {"create": {"method": "POST", "path": "x"}}}, "settings.mutations.items.create.path"),
        ({"items": {"create": {"method": "POST"}}}, "settings.mutations.items.create.path"),
        ({"items": {"update": {"method": "PATCH", "path": "/items"}}}, "settings.mutations.items"),
        (
            {"items": {"delete": {"method": "DELETE", "path": "/items/{record_id}/{record_id}"}}},
            "settings.mutations.items",
        ),
        ({"items": {"create": {"method": "POST", "path": "/items/{record_id}"}}}, "settings.mutations.items"),
        ({"items": {"update": {"method": "PATCH", "path": "/items/{id}"}}}, "settings.mutations.items"),
        ({"items": {"read": {"path": "/items/{record_id}"}}}, "settings.mutations.items"),
        ({"items": ITEMS | {"read": {"path": "/items"}}}, "settings.mutations.items"),
        ({"Items": ITEMS}, "settings.mutations.Items.[key]"),
        ({}, "settings.mutations"),
        ({"items": ITEMS | {"answer_path": "a b"}}, "settings.mutations.items.answer_path"),
    ],
)
def test_mutation_settings_are_refused_naming_the_field(mutations: dict[str, Any], field: str) -> None:
    assert field in refused(WEBHOOK | {"mutations": mutations})


def test_mutations_may_only_name_the_connections_collection_when_it_has_one() -> None:
    assert "settings.mutations" in refused(settings() | {"collection": "tickets"})
    assert validate_settings(settings() | {"collection": "items"})["collection"] == "items"


def test_mutations_are_refused_when_not_an_object() -> None:
    assert refused(WEBHOOK | {"mutations": ["items"]}) == ["settings.mutations"]


# --- writes ---------------------------------------------------------------------------------------


def source(configured: dict[str, Any], collection: str = "items", **credentials: str) -> PullSource:
    return PullSource(
        collection, "https://api.example.test/base/", credentials or {"bearer_token": "t"}, configured
    )


def write(upstream: Upstream, request: WriteRequest, configured: dict[str, Any] | None = None) -> Any:
    http = http_for("generic", upstream)
    return get_provider("generic").write(http, source(configured or settings()), request)


def test_a_create_sends_the_data_as_json_and_takes_the_id_from_the_answer() -> None:
    upstream = Upstream([(201, {"id": 42, "name": "A"})])

    written = write(upstream, WriteRequest("items", "create", data={"name": "A"}))

    request = upstream.only
    assert (request.method, request.url.path) == ("POST", "/base/v1/items")
    assert json.loads(request.content) == {"name": "A"}
    assert request.headers["authorization"] == "Bearer t"
    assert (written.record_id, written.data, written.version) == ("42", {"id": 42, "name": "A"}, None)


def test_an_update_puts_the_percent_encoded_id_in_the_path() -> None:
    upstream = Upstream([(200, {"id": "a/b c", "name": "B"})])

    written = write(upstream, WriteRequest("items", "update", "a/b c", {"name": "B"}))

    assert upstream.only.method == "PATCH"
    assert upstream.only.url.raw_path == b"/base/v1/items/a%2Fb%20c"
    assert written.record_id == "a/b c"


def test_the_object_is_read_at_answer_path_its_id_at_the_pulls_id_path_and_the_body_wrapped() -> None:
    configured = WEBHOOK | {
        "id_path": "key",
        "mutations": {
            "items": {
                "create": {"method": "POST", "path": "/v1/items"},
                "answer_path": "data",
                "body_key": "item",
            }
        },
    }
    upstream = Upstream([(201, {"data": {"key": "k1", "name": "A"}})])

    written = write(upstream, WriteRequest("items", "create", data={"name": "A"}), configured)

    assert json.loads(upstream.only.content) == {"item": {"name": "A"}}
    assert (written.record_id, written.data) == ("k1", {"key": "k1", "name": "A"})


def test_an_update_answered_without_the_object_is_read_back() -> None:
    upstream = Upstream([(204, None), (200, {"id": "7", "name": "B"})])

    written = write(upstream, WriteRequest("items", "update", "7", {"name": "B"}))

    _, read = upstream.requests
    assert (read.method, read.url.path) == ("GET", "/base/v1/items/7")
    assert written.data == {"id": "7", "name": "B"}


def test_a_delete_sends_no_body() -> None:
    upstream = Upstream([(204, None)])

    written = write(upstream, WriteRequest("items", "delete", record_id="7"))

    assert (upstream.only.method, upstream.only.content) == ("DELETE", b"")
    assert (written.record_id, written.data, written.deleted) == ("7", None, True)


def test_a_create_answered_without_an_id_may_have_been_applied() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        write(Upstream([(201, {"name": "A"})]), WriteRequest("items", "create", data={"name": "A"}))

    assert caught.value.may_have_applied is True


def test_a_kind_the_connection_does_not_configure_is_a_bad_request() -> None:
    configured = settings(items={"create": {"method": "POST", "path": "/v1/items"}})
    upstream = Upstream([])

    with pytest.raises(PullFailed) as caught:
        write(upstream, WriteRequest("items", "delete", record_id="1"), configured)

    assert caught.value.key == "unsupported_kind"
    assert upstream.requests == []


def test_read_record_reads_the_configured_path_and_a_404_is_none() -> None:
    upstream = Upstream([(200, {"id": "7"}), (404, {"error": "no such item"})])
    provider, http = get_provider("generic"), http_for("generic", upstream)

    assert provider.read_record(http, source(settings()), "7") == {"id": "7"}
    assert provider.read_record(http, source(settings()), "8") is None


def test_read_record_without_a_read_path_is_a_bad_request() -> None:
    configured = settings(items={"create": {"method": "POST", "path": "/v1/items"}})

    with pytest.raises(PullFailed) as caught:
        get_provider("generic").read_record(http_for("generic", Upstream([])), source(configured), "7")

    assert (caught.value.key, caught.value.data["field"]) == (
        "invalid_settings",
        "settings.mutations.items.read",
    )


def test_header_credentials_go_with_a_write() -> None:
    upstream = Upstream([(201, {"id": 1})])
    http = http_for("generic", upstream)

    get_provider("generic").write(
        http,
        source(settings(), header_name="X-Api-Key", header_value="secret"),
        WriteRequest("items", "create", data={}),
    )

    assert upstream.only.headers["x-api-key"] == "secret"
