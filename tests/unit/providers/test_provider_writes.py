"""The providers' writes, request by request: each provider's real request shape (method, path, encoding,
headers) through `PullHttp` over an `httpx.MockTransport`, what it makes of the answer (record id, data as
the list shows it, version), `read_record`, and its reading of the provider's error bodies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from pullbridge.errors import ProviderRefused, ProviderUnavailable, PullFailed
from pullbridge.providers import get_provider
from pullbridge.providers.base import PullSource, WriteRequest
from pullbridge.providers.stripe.writes import form_pairs
from pullbridge.providers.writes import path_segment

from .mock_upstream import Upstream, http_for

BASE = "https://api.example.test"
CREDENTIALS = {
    "stripe": {"api_key": "sk_test_1"},
    "github": {"token": "ghp_1"},
    "shopify": {"access_token": "shpat_1"},
    "hubspot": {"access_token": "pat-1"},
    "generic": {"bearer_token": "token-1"},
    "standard": {},
}


def source(provider: str, collection: str, **settings: Any) -> PullSource:
    if provider == "github":
        settings.setdefault("repository", "octo/repo")
    return PullSource(collection, BASE, CREDENTIALS[provider], settings)


def write(provider: str, upstream: Upstream, request: WriteRequest, **settings: Any) -> tuple[Any, Upstream]:
    written = get_provider(provider).write(
        http_for(provider, upstream), source(provider, request.collection, **settings), request
    )
    return written, upstream


def form_of(request: httpx.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.content.decode(), keep_blank_values=True)


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- Stripe -----------------------------------------------------------------------------------------

CUSTOMER = {"id": "cus_1", "object": "customer", "email": "a@example.com", "metadata": {"plan": "pro"}}


def test_stripe_creates_a_customer_with_form_encoded_nested_parameters_and_the_idempotency_key() -> None:
    data = {
        "email": "a@example.com",
        "metadata": {"plan": "pro", "seats": 3},
        "preferred_locales": ["en", "fr"],
        "address": {"city": "Paris", "line1": None},
        "tax_exempt": "none",
    }
    written, upstream = write(
        "stripe",
        Upstream([(200, CUSTOMER)]),
        WriteRequest("customers", "create", data=data, idempotency_key="mut_key_1"),
        api_version="2024-06-20",
    )

    request = upstream.only
    assert (request.method, request.url.path) == ("POST", "/v1/customers")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Bearer sk_test_1"
    assert request.headers["idempotency-key"] == "mut_key_1"
    assert request.headers["stripe-version"] == "2024-06-20"
    assert form_of(request) == [
        ("email", "a@example.com"),
        ("metadata[plan]", "pro"),
        ("metadata[seats]", "3"),
        ("preferred_locales[0]", "en"),
        ("preferred_locales[1]", "fr"),
        ("address[city]", "Paris"),
        ("address[line1]", ""),
        ("tax_exempt", "none"),
    ]
    assert (written.record_id, written.data, written.deleted, written.version) == (
        "cus_1",
        CUSTOMER,
        False,
        None,
    )


def test_stripe_form_encodes_booleans_empties_and_lists_of_objects_as_stripe_reads_them() -> None:
    assert form_pairs(
        {
            "active": False,
            "shippable": True,
            "description": None,
            "metadata": {},
            "images": [],
            "marketing_features": [{"name": "Fast"}, {"name": "Cheap"}],
            "package_dimensions": {"height": 1.5, "length": 2},
        }
    ) == [
        ("active", "false"),
        ("shippable", "true"),
        ("description", ""),
        ("metadata", ""),
        ("images", ""),
        ("marketing_features[0][name]", "Fast"),
        ("marketing_features[1][name]", "Cheap"),
        ("package_dimensions[height]", "1.5"),
        ("package_dimensions[length]", "2"),
    ]


def test_stripe_updates_with_a_post_to_the_percent_encoded_id() -> None:
    _, upstream = write(
        "stripe",
        Upstream([(200, {**CUSTOMER, "id": "cus_a/b"})]),
        WriteRequest("customers", "update", record_id="cus_a/b", data={"name": "Ann"}, idempotency_key="k"),
    )

    request = upstream.only
    assert request.method == "POST"
    assert request.url.raw_path == b"/v1/customers/cus_a%2Fb"
    assert form_of(request) == [("name", "Ann")]
    assert request.headers["idempotency-key"] == "k"


def test_stripe_deletes_with_a_delete_and_no_idempotency_key() -> None:
    deleted = {"id": "cus_1", "object": "customer", "deleted": True}
    written, upstream = write(
        "stripe",
        Upstream([(200, deleted)]),
        WriteRequest("customers", "delete", record_id="cus_1", idempotency_key="k"),
    )

    request = upstream.only
    assert (request.method, request.url.path, request.content) == ("DELETE", "/v1/customers/cus_1", b"")
    assert "idempotency-key" not in request.headers
    assert (written.record_id, written.data, written.deleted) == ("cus_1", deleted, True)


def test_a_written_stripe_product_is_versioned_by_its_updated_time() -> None:
    product = {"id": "prod_1", "object": "product", "name": "T", "updated": 1_700_000_123}

    written, _ = write(
        "stripe", Upstream([(200, product)]), WriteRequest("products", "update", "prod_1", {"name": "T"})
    )

    assert written.version == 1_700_000_123.0


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((200, CUSTOMER), CUSTOMER),
        ((200, {"id": "cus_1", "object": "customer", "deleted": True}), None),
        ((404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}), None),
    ],
    ids=["found", "deleted", "missing"],
)
def test_stripe_reads_one_record_back(answer: tuple[int, Any], expected: Any) -> None:
    upstream = Upstream([answer])

    found = get_provider("stripe").read_record(
        http_for("stripe", upstream), source("stripe", "customers"), "cus_1"
    )

    assert found == expected
    assert (upstream.only.method, upstream.only.url.path) == ("GET", "/v1/customers/cus_1")


def test_stripe_refusal_carries_its_message_and_request_id() -> None:
    body = {
        "error": {
            "type": "invalid_request_error",
            "message": "Missing required param: name.",
            "param": "name",
        }
    }

    with pytest.raises(ProviderRefused) as caught:
        write("stripe", Upstream([(400, body)]), WriteRequest("products", "create", data={}))

    assert caught.value.data["message"] == "Missing required param: name."
    assert caught.value.data["request_id"] == "req_1"
    assert caught.value.data["status_code"] == 400


# --- GitHub -----------------------------------------------------------------------------------------

ISSUE = {"id": 10, "number": 7, "title": "Bug", "state": "open", "updated_at": "2024-01-02T03:04:05Z"}


def test_github_creates_an_issue_with_a_json_post_and_names_it_by_its_number() -> None:
    written, upstream = write(
        "github",
        Upstream([(201, {**ISSUE, "closed_by": None})]),
        WriteRequest("issues", "create", data={"title": "Bug", "labels": ["bug"]}, idempotency_key="k"),
    )

    request = upstream.only
    assert (request.method, request.url.path) == ("POST", "/repos/octo/repo/issues")
    assert json_of(request) == {"title": "Bug", "labels": ["bug"]}
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["authorization"] == "Bearer ghp_1"
    assert "idempotency-key" not in request.headers  # GitHub takes none
    # The record id is the number, as the list's and the webhooks' are; `closed_by` is the single
    # issue's alone, so it is dropped: the data is what the list shows.
    assert (written.record_id, written.data) == ("7", ISSUE)
    assert written.version == 1_704_164_645.0


def test_github_closes_an_issue_with_a_patch_of_its_state() -> None:
    closed = {**ISSUE, "state": "closed", "closed_by": {"login": "octocat"}}

    written, upstream = write(
        "github", Upstream([(200, closed)]), WriteRequest("issues", "update", "7", {"state": "closed"})
    )

    request = upstream.only
    assert (request.method, request.url.path, json_of(request)) == (
        "PATCH",
        "/repos/octo/repo/issues/7",
        {"state": "closed"},
    )
    assert "closed_by" not in written.data


def test_github_cannot_delete_an_issue_and_says_so_before_any_request() -> None:
    upstream = Upstream([])
    provider = get_provider("github")

    with pytest.raises(PullFailed) as caught:
        write("github", upstream, WriteRequest("issues", "delete", record_id="7"))

    assert (caught.value.error_type, caught.value.key) == ("bad_request", "unsupported_kind")
    assert provider.writable_collections({}) == {"issues": frozenset({"create", "update"})}
    assert upstream.requests == []


def test_github_refuses_an_id_that_is_not_an_issue_number() -> None:
    with pytest.raises(PullFailed) as caught:
        write("github", Upstream([]), WriteRequest("issues", "update", "../pulls/1", {"title": "x"}))

    assert caught.value.key == "invalid_record_id"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((200, {**ISSUE, "closed_by": None}), ISSUE),
        ((200, {**ISSUE, "pull_request": {"url": "..."}}), None),
        ((404, {"message": "Not Found"}), None),
        ((410, {"message": "This issue was deleted"}), None),
    ],
    ids=["issue", "pull-request", "missing", "deleted"],
)
def test_github_reads_one_issue_back_as_the_list_shows_it(answer: tuple[int, Any], expected: Any) -> None:
    upstream = Upstream([answer])

    found = get_provider("github").read_record(http_for("github", upstream), source("github", "issues"), "7")

    assert found == expected
    assert upstream.only.url.path == "/repos/octo/repo/issues/7"


# --- Shopify ----------------------------------------------------------------------------------------

PRODUCT = {"id": 632910392, "title": "IPod", "updated_at": "2024-01-02T03:04:05-05:00"}


def test_shopify_creates_a_product_wrapped_in_its_singular_key() -> None:
    written, upstream = write(
        "shopify",
        Upstream([(201, {"product": PRODUCT})]),
        WriteRequest("products", "create", data={"title": "IPod", "tags": "a, b"}),
        api_version="2024-07",
    )

    request = upstream.only
    assert (request.method, request.url.path) == ("POST", "/admin/api/2024-07/products.json")
    assert json_of(request) == {"product": {"title": "IPod", "tags": "a, b"}}
    assert request.headers["x-shopify-access-token"] == "shpat_1"
    assert (written.record_id, written.data) == ("632910392", PRODUCT)
    assert written.version == 1_704_182_645.0


def test_shopify_updates_with_a_put_that_carries_the_id() -> None:
    _, upstream = write(
        "shopify",
        Upstream([(200, {"customer": {"id": 207119551, "note": "vip"}})]),
        WriteRequest("customers", "update", "207119551", {"note": "vip"}),
    )

    request = upstream.only
    assert (request.method, request.url.path) == ("PUT", "/admin/api/2024-10/customers/207119551.json")
    assert json_of(request) == {"customer": {"note": "vip", "id": 207119551}}


def test_shopify_deletes_and_keeps_no_data_from_its_empty_answer() -> None:
    written, upstream = write(
        "shopify", Upstream([(200, {})]), WriteRequest("products", "delete", record_id="632910392")
    )

    assert (upstream.only.method, upstream.only.url.path) == (
        "DELETE",
        "/admin/api/2024-10/products/632910392.json",
    )
    assert (written.record_id, written.data, written.deleted) == ("632910392", None, True)


def test_shopify_orders_are_not_writable() -> None:
    with pytest.raises(PullFailed) as caught:
        write("shopify", Upstream([]), WriteRequest("orders", "create", data={}))

    assert caught.value.key == "unsupported_collection"


def test_shopify_reads_one_record_back_unwrapped() -> None:
    upstream = Upstream([(200, {"product": PRODUCT}), (404, {"errors": "Not Found"})])
    provider, http = get_provider("shopify"), http_for("shopify", upstream)

    assert provider.read_record(http, source("shopify", "products"), "632910392") == PRODUCT
    assert provider.read_record(http, source("shopify", "products"), "1") is None


# --- HubSpot ----------------------------------------------------------------------------------------

LISTED_PROPERTIES = {
    "email": "a@example.com",
    "hs_object_id": "512",
    "lastmodifieddate": "2024-01-02T03:04:05.000Z",
}
LISTED_CONTACT: dict[str, Any] = {
    "id": "512",
    "properties": LISTED_PROPERTIES,
    "createdAt": "2024-01-01T00:00:00.000Z",
    "updatedAt": "2024-01-02T03:04:05.000Z",
    "archived": False,
}
WRITE_ANSWER = {
    **LISTED_CONTACT,
    "properties": {**LISTED_PROPERTIES, "phone": "555", "hs_is_unworked": "true"},
}


def test_hubspot_creates_with_properties_then_reads_the_object_back_as_the_list_asks_for_it() -> None:
    written, upstream = write(
        "hubspot",
        Upstream([(201, WRITE_ANSWER), (200, LISTED_CONTACT)]),
        WriteRequest("contacts", "create", data={"email": "a@example.com", "phone": "555"}),
        properties=["email", "firstname"],
    )

    create, read = upstream.requests
    assert (create.method, create.url.path) == ("POST", "/crm/v3/objects/contacts")
    assert json_of(create) == {"properties": {"email": "a@example.com", "phone": "555"}}
    assert create.headers["authorization"] == "Bearer pat-1"
    assert (read.method, read.url.path) == ("GET", "/crm/v3/objects/contacts/512")
    assert read.url.params["properties"] == "email,firstname"
    assert (written.record_id, written.data) == ("512", LISTED_CONTACT)
    assert written.version == 1_704_164_645.0


def test_hubspot_reads_back_with_the_default_properties_when_the_list_asks_for_none() -> None:
    _, upstream = write(
        "hubspot",
        Upstream([(200, WRITE_ANSWER), (200, LISTED_CONTACT)]),
        WriteRequest("contacts", "update", "512", {"phone": "555"}),
    )

    update, read = upstream.requests
    assert (update.method, update.url.path) == ("PATCH", "/crm/v3/objects/contacts/512")
    assert "properties" not in read.url.params


def test_hubspot_keeps_the_write_answer_when_the_read_back_fails() -> None:
    written, _ = write(
        "hubspot",
        Upstream([(201, WRITE_ANSWER), (404, {"status": "error", "message": "resource not found"})]),
        WriteRequest("contacts", "create", data={"email": "a@example.com"}),
    )

    assert written.data == WRITE_ANSWER  # the write landed: reporting a failure would hide it


def test_hubspot_archives_with_a_delete() -> None:
    written, upstream = write(
        "hubspot", Upstream([(204, None)]), WriteRequest("deals", "delete", record_id="9")
    )

    assert (upstream.only.method, upstream.only.url.path) == ("DELETE", "/crm/v3/objects/deals/9")
    assert (written.record_id, written.data, written.deleted) == ("9", None, True)


def test_hubspot_create_answered_without_an_id_may_have_been_applied() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        write("hubspot", Upstream([(201, {"properties": {}})]), WriteRequest("deals", "create", data={}))

    assert caught.value.may_have_applied is True


# --- error messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "body", "message"),
    [
        (
            "stripe",
            {"error": {"message": "No such customer: 'cus_x'", "code": "resource_missing"}},
            "No such customer: 'cus_x'",
        ),
        ("stripe", {"error": "plain"}, None),
        (
            "github",
            {
                "message": "Validation Failed",
                "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}],
            },
            "Validation Failed: Issue.title: missing_field",
        ),
        (
            "github",
            {"message": "Validation Failed", "errors": [{"message": "title is too long"}, "labels broke"]},
            "Validation Failed: title is too long; labels broke",
        ),
        (
            "github",
            {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
            "Not Found",
        ),
        ("shopify", {"errors": "Not Found"}, "Not Found"),
        (
            "shopify",
            {"errors": {"title": ["can't be blank"], "handle": ["is taken", "is short"]}},
            "title: can't be blank; handle: is taken; handle: is short",
        ),
        ("shopify", {"errors": ["one", "two"]}, "one; two"),
        (
            "hubspot",
            {"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR"},
            "Property values were not valid (VALIDATION_ERROR)",
        ),
        ("generic", {"message": "nope"}, "nope"),
        ("generic", {"error": {"message": "nested"}}, "nested"),
        ("generic", {"error": "flat"}, "flat"),
        ("generic", {"title": "Bad Request", "detail": "name is required"}, "name is required"),
        ("standard", {"message": "x"}, None),
        ("hubspot", ["not", "an", "object"], None),
    ],
)
def test_each_provider_reads_its_own_error_body(provider: str, body: Any, message: str | None) -> None:
    assert get_provider(provider).error_message(body) == message


# --- what every provider shares ---------------------------------------------------------------------

WRITES = {
    "stripe": {"customers": {"create", "update", "delete"}, "products": {"create", "update", "delete"}},
    "github": {"issues": {"create", "update"}},
    "shopify": {"products": {"create", "update", "delete"}, "customers": {"create", "update", "delete"}},
    "hubspot": {name: {"create", "update", "delete"} for name in ("contacts", "companies", "deals")},
    "standard": {},
}


@pytest.mark.parametrize(("provider", "writable"), sorted(WRITES.items()))
def test_the_provider_writes_what_the_contract_names(provider: str, writable: dict[str, set[str]]) -> None:
    assert get_provider(provider).writable_collections({}) == writable


def test_standard_webhooks_have_no_api_to_write_to() -> None:
    provider = get_provider("standard")
    with pytest.raises(NotImplementedError):
        provider.write(
            http_for("standard", Upstream([])), source("standard", "x"), WriteRequest("x", "create", data={})
        )
    with pytest.raises(NotImplementedError):
        provider.read_record(http_for("standard", Upstream([])), source("standard", "x"), "1")


@pytest.mark.parametrize(
    ("provider", "request_"),
    [
        ("stripe", WriteRequest("customers", "create", data={})),
        ("github", WriteRequest("issues", "update", "1", {"title": "x"})),
        ("shopify", WriteRequest("products", "delete", record_id="1")),
        ("hubspot", WriteRequest("deals", "create", data={})),
    ],
)
def test_missing_credentials_are_a_bad_request_before_any_call(provider: str, request_: WriteRequest) -> None:
    upstream = Upstream([])
    bare = PullSource(
        request_.collection, BASE, {}, {"repository": "octo/repo"} if provider == "github" else {}
    )

    with pytest.raises(PullFailed) as caught:
        get_provider(provider).write(http_for(provider, upstream), bare, request_)

    assert (caught.value.error_type, caught.value.key) == ("bad_request", "missing_credentials")
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("request_", "key"),
    [
        (WriteRequest("customers", "update", data={"name": "x"}), "missing_record_id"),
        (WriteRequest("customers", "create"), "missing_data"),
        (WriteRequest("invoices", "create", data={}), "unsupported_collection"),
        (WriteRequest("customers", "upsert", data={}), "unsupported_kind"),
    ],
)
def test_a_write_the_provider_cannot_make_is_a_bad_request_naming_the_field(
    request_: WriteRequest, key: str
) -> None:
    upstream = Upstream([])

    with pytest.raises(PullFailed) as caught:
        write("stripe", upstream, request_)

    assert (caught.value.error_type, caught.value.key) == ("bad_request", key)
    assert upstream.requests == []


@pytest.mark.parametrize("record_id", ["", ".", ".."])
def test_a_record_id_that_url_normalization_would_move_is_refused(record_id: str) -> None:
    with pytest.raises(PullFailed):
        path_segment(record_id)


def test_a_2xx_without_the_object_may_have_been_applied() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        write(
            "stripe", Upstream([(200, ["not", "an", "object"])]), WriteRequest("customers", "create", data={})
        )

    assert caught.value.may_have_applied is True


def test_every_provider_satisfies_the_protocol_at_run_time() -> None:
    for name in WRITES:
        provider = get_provider(name)
        for method in ("writable_collections", "write", "read_record", "error_message"):
            assert callable(getattr(provider, method))
