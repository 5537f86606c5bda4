"""The fake providers' write APIs, spoken to directly: they check what they receive as the real APIs do
(encodings, required fields, idempotency keys), answer with the real shapes and error bodies, change the
datasets the lists read, record each request's body and headers, and take the write faults a test
switches on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pullbridge.hashing import content_hash
from pullbridge.providers import get_provider
from pullbridge.providers.base import WebhookRequest
from tests.fakes.provider_server import CREDENTIALS, WRITES, FakeProviderServer


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
        ("stripe", "products"),
        ("stripe", "prices"),
        ("github", "issues"),
        ("github", "pulls"),
        ("shopify", "products"),
        ("shopify", "customers"),
        ("hubspot", "contacts"),
        ("generic", "items"),
    ]:
        server.dataset(provider, collection).clear()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0)) as http_client:
        yield http_client


def auth(provider: str) -> dict[str, str]:
    credential = next(iter(CREDENTIALS[provider].values()))
    if provider == "shopify":
        return {"X-Shopify-Access-Token": credential}
    return {"Authorization": f"Bearer {credential}"}


# --- Stripe ---------------------------------------------------------------------------------------


def stripe(
    client: httpx.Client, server: FakeProviderServer, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    return client.request(
        method, f"{server.base_url}{path}", headers={**auth("stripe"), **kwargs.pop("headers", {})}, **kwargs
    )


def test_stripe_takes_form_encoded_parameters_and_refuses_json(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    refused = stripe(client, server, "POST", "/v1/customers", json={"email": "a@example.com"})
    created = stripe(
        client,
        server,
        "POST",
        "/v1/customers",
        data={
            "email": "a@example.com",
            "metadata[plan]": "pro",
            "preferred_locales[0]": "en",
            "balance": "5",
        },
    )

    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("Invalid request (check that your POST content type")
    assert created.status_code == 200
    customer = created.json()
    assert (customer["object"], customer["email"], customer["metadata"]) == (
        "customer",
        "a@example.com",
        {"plan": "pro"},
    )
    assert (customer["preferred_locales"], customer["balance"]) == (["en"], 5)
    assert server.dataset("stripe", "customers").ids() == [customer["id"]]
    recorded = server.requests[-1]
    assert recorded.headers["content-type"] == "application/x-www-form-urlencoded"
    assert recorded.form_dict["metadata[plan]"] == "pro"


def test_stripe_replays_an_idempotency_key_and_refuses_it_with_other_parameters(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    key = {"Idempotency-Key": "key-1"}
    first = stripe(client, server, "POST", "/v1/products", data={"name": "T"}, headers=key)
    again = stripe(client, server, "POST", "/v1/products", data={"name": "T"}, headers=key)
    other = stripe(client, server, "POST", "/v1/products", data={"name": "U"}, headers=key)

    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert "Idempotent-Replayed" not in first.headers
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert len(server.dataset("stripe", "products")) == 1


def test_a_refused_stripe_request_keeps_no_idempotent_result(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    key = {"Idempotency-Key": "key-2"}
    missing = stripe(client, server, "POST", "/v1/products", data={"description": "x"}, headers=key)
    fixed = stripe(client, server, "POST", "/v1/products", data={"name": "T"}, headers=key)

    assert missing.status_code == 400
    assert missing.json()["error"] | {"doc_url": None} == {
        "code": "parameter_missing",
        "doc_url": None,
        "message": "Missing required param: name.",
        "param": "name",
        "type": "invalid_request_error",
    }
    assert fixed.status_code == 200


def test_stripe_unsets_with_empty_values_and_merges_metadata(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    customer = stripe(
        client,
        server,
        "POST",
        "/v1/customers",
        data={"description": "d", "metadata[a]": "1", "metadata[b]": "2"},
    ).json()

    updated = stripe(
        client,
        server,
        "POST",
        f"/v1/customers/{customer['id']}",
        data={"description": "", "metadata[a]": "", "metadata[c]": "3"},
    ).json()

    assert updated["description"] is None
    assert updated["metadata"] == {"b": "2", "c": "3"}


def test_stripe_writes_are_logged_as_events_naming_the_request(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    created = stripe(
        client,
        server,
        "POST",
        "/v1/customers",
        data={"email": "a@example.com"},
        headers={"Idempotency-Key": "k-3"},
    )
    customer_id = created.json()["id"]
    stripe(client, server, "POST", f"/v1/customers/{customer_id}", data={"name": "Ann"})
    stripe(client, server, "DELETE", f"/v1/customers/{customer_id}")

    events = server.stripe.events
    assert [event["type"] for event in events] == ["customer.created", "customer.updated", "customer.deleted"]
    assert events[0]["request"] == {"id": created.headers["Request-Id"], "idempotency_key": "k-3"}
    assert events[1]["data"]["previous_attributes"] == {"name": None}


def test_a_deleted_stripe_customer_is_retrieved_as_deleted_and_cannot_be_updated(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    customer_id = stripe(client, server, "POST", "/v1/customers", data={}).json()["id"]

    deleted = stripe(client, server, "DELETE", f"/v1/customers/{customer_id}")
    retrieved = stripe(client, server, "GET", f"/v1/customers/{customer_id}")
    updated = stripe(client, server, "POST", f"/v1/customers/{customer_id}", data={"name": "x"})

    assert deleted.json() == retrieved.json() == {"id": customer_id, "object": "customer", "deleted": True}
    assert updated.status_code == 404
    assert updated.json()["error"]["message"] == f"No such customer: '{customer_id}'"
    assert updated.json()["error"]["code"] == "resource_missing"


def test_a_stripe_product_with_prices_cannot_be_deleted(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    product = stripe(client, server, "POST", "/v1/products", data={"name": "T"}).json()
    server.dataset("stripe", "prices").add(
        {"id": "price_1", "object": "price", "product": product["id"], "created": 1}
    )

    refused = stripe(client, server, "DELETE", f"/v1/products/{product['id']}")

    assert refused.status_code == 400
    assert (
        "cannot be deleted because it has one or more user-created prices"
        in refused.json()["error"]["message"]
    )


def test_a_stripe_write_produces_the_webhook_stripe_would_send(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    product = stripe(client, server, "POST", "/v1/products", data={"name": "T"}).json()
    now = int(time.time())
    headers, body = server.stripe.webhook(server.stripe.events[-1], "whsec_test", now)
    delivery = WebhookRequest(
        "POST", "https://example.test/webhooks/c", {k.lower(): v for k, v in headers.items()}, body
    )
    provider = get_provider("stripe")

    provider.verify(delivery, ["whsec_test"], {}, now)
    [event] = provider.normalize(delivery, {})

    assert (event.type, event.record_id, event.action) == ("product.created", product["id"], "created")
    assert content_hash(event.data) == content_hash(product)


# --- GitHub ---------------------------------------------------------------------------------------


def issues_url(server: FakeProviderServer) -> str:
    return f"{server.base_url}/repos/{server.github_repository}/issues"


def test_github_answers_a_single_issue_with_closed_by_which_the_list_leaves_out(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    created = client.post(issues_url(server), json={"title": "Bug"}, headers=auth("github"))
    number = created.json()["number"]
    closed = client.patch(f"{issues_url(server)}/{number}", json={"state": "closed"}, headers=auth("github"))
    listed = client.get(issues_url(server), params={"state": "all"}, headers=auth("github")).json()

    assert created.status_code == 201
    assert created.json()["closed_by"] is None
    assert closed.json()["closed_by"]["login"]
    assert (closed.json()["state"], closed.json()["state_reason"]) == ("closed", "completed")
    assert closed.json()["closed_at"] is not None
    assert "closed_by" not in listed[0]
    assert listed[0] == {key: value for key, value in closed.json().items() if key != "closed_by"}


def test_github_refuses_an_invalid_field_with_its_validation_shape(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    number = client.post(issues_url(server), json={"title": "Bug"}, headers=auth("github")).json()["number"]

    refused = client.patch(f"{issues_url(server)}/{number}", json={"state": "done"}, headers=auth("github"))
    missing = client.post(issues_url(server), json={"body": "x"}, headers=auth("github"))

    assert refused.status_code == missing.status_code == 422
    assert refused.json()["errors"] == [{"resource": "Issue", "code": "invalid", "field": "state"}]
    assert missing.json()["message"] == "Validation Failed"
    assert missing.json()["errors"] == [{"resource": "Issue", "code": "missing_field", "field": "title"}]


def test_github_reads_a_pull_request_number_as_an_issue(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    [pull] = server.dataset("github", "pulls").seed(1)

    found = client.get(f"{issues_url(server)}/{pull['number']}", headers=auth("github"))

    assert "pull_request" in found.json()


# --- Shopify --------------------------------------------------------------------------------------


def shopify_url(server: FakeProviderServer, path: str) -> str:
    return f"{server.base_url}/admin/api/2024-10/{path}"


def test_shopify_wants_the_root_key_and_its_validations(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    url = shopify_url(server, "customers.json")

    no_root = client.post(url, json={"email": "a@example.com"}, headers=auth("shopify"))
    created = client.post(url, json={"customer": {"email": "a@example.com"}}, headers=auth("shopify"))
    taken = client.post(url, json={"customer": {"email": "a@example.com"}}, headers=auth("shopify"))

    assert (no_root.status_code, no_root.json()) == (
        400,
        {"errors": {"customer": "Required parameter missing or invalid"}},
    )
    assert created.status_code == 201
    assert (taken.status_code, taken.json()) == (422, {"errors": {"email": ["has already been taken"]}})


def test_shopify_deletes_with_an_empty_answer_and_then_finds_nothing(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    product = client.post(
        shopify_url(server, "products.json"), json={"product": {"title": "Mug"}}, headers=auth("shopify")
    ).json()["product"]
    url = shopify_url(server, f"products/{product['id']}.json")

    deleted = client.delete(url, headers=auth("shopify"))
    found = client.get(url, headers=auth("shopify"))

    assert (deleted.status_code, deleted.json()) == (200, {})
    assert (found.status_code, found.json()) == (404, {"errors": "Not Found"})
    assert product["handle"] == "mug"
    assert product["variants"][0]["title"] == "Default Title"


# --- HubSpot --------------------------------------------------------------------------------------


def contacts_url(server: FakeProviderServer, suffix: str = "") -> str:
    return f"{server.base_url}/crm/v3/objects/contacts{suffix}"


def test_hubspot_validates_properties_with_its_validation_error_body(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    not_object = client.post(contacts_url(server), json={"properties": ["email"]}, headers=auth("hubspot"))
    unknown = client.post(
        contacts_url(server),
        json={"properties": {"email": "a@example.com", "shoe_size": "9", "hs_object_id": "1"}},
        headers=auth("hubspot"),
    )

    assert not_object.status_code == unknown.status_code == 400
    body = unknown.json()
    assert (body["status"], body["category"]) == ("error", "VALIDATION_ERROR")
    assert body["correlationId"] == unknown.headers["X-HubSpot-Correlation-Id"]
    assert body["message"].startswith("Property values were not valid: [")
    assert '"error":"PROPERTY_DOESNT_EXIST","name":"shoe_size"' in body["message"]
    assert '"error":"READ_ONLY_VALUE","name":"hs_object_id"' in body["message"]
    assert len(server.dataset("hubspot", "contacts")) == 0


def test_hubspot_answers_a_write_with_more_properties_than_its_list_shows(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    created = client.post(
        contacts_url(server),
        json={"properties": {"email": "a@example.com", "phone": 555}},
        headers=auth("hubspot"),
    )
    listed = client.get(contacts_url(server), headers=auth("hubspot")).json()["results"]
    asked = client.get(
        contacts_url(server, f"/{created.json()['id']}"),
        params={"properties": "phone"},
        headers=auth("hubspot"),
    )

    assert created.status_code == 201
    assert created.json()["properties"]["phone"] == "555"  # kept as a string
    assert "phone" not in listed[0]["properties"]
    assert set(asked.json()["properties"]) == {"phone", "createdate", "hs_object_id", "lastmodifieddate"}


def test_hubspot_archives_with_204_even_an_id_it_does_not_have(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    record_id = client.post(
        contacts_url(server), json={"properties": {"email": "a@example.com"}}, headers=auth("hubspot")
    ).json()["id"]

    archived = client.delete(contacts_url(server, f"/{record_id}"), headers=auth("hubspot"))
    again = client.delete(contacts_url(server, f"/{record_id}"), headers=auth("hubspot"))
    found = client.get(contacts_url(server, f"/{record_id}"), headers=auth("hubspot"))
    patched = client.patch(
        contacts_url(server, f"/{record_id}"),
        json={"properties": {"firstname": "A"}},
        headers=auth("hubspot"),
    )

    assert (archived.status_code, archived.content, again.status_code) == (204, b"", 204)
    assert found.status_code == 404
    assert (patched.status_code, patched.json()["category"]) == (404, "OBJECT_NOT_FOUND")


# --- generic --------------------------------------------------------------------------------------


def test_generic_items_are_read_by_their_percent_encoded_id(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("generic", "items").add({"id": "a/b c", "name": "Slashed"})

    found = client.get(f"{server.base_url}/api/items/a%2Fb%20c", headers=auth("generic"))

    assert found.json()["data"]["name"] == "Slashed"


# --- faults and recording -------------------------------------------------------------------------


def test_a_write_fault_leaves_reads_alone_and_counts_its_times(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.fail_with(503, method=WRITES, times=2)
    url = f"{server.base_url}/api/items"

    statuses = [client.post(url, json={"name": "A"}, headers=auth("generic")).status_code for _ in range(3)]
    listed = client.get(url, headers=auth("generic"))

    assert statuses == [503, 503, 201]
    assert listed.status_code == 200
    assert len(server.dataset("generic", "items")) == 1


def test_a_write_fault_can_carry_its_own_body(server: FakeProviderServer, client: httpx.Client) -> None:
    server.fail_with(409, method="POST", body={"error": {"message": "busy", "code": "locked"}})

    answered = client.post(f"{server.base_url}/api/items", json={"name": "A"}, headers=auth("generic"))

    assert (answered.status_code, answered.json()) == (409, {"error": {"message": "busy", "code": "locked"}})


def test_a_dropped_write_stalls_then_answers_504_without_the_change(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.stall(0.2, method=WRITES, applied=False)

    answered = client.post(f"{server.base_url}/api/items", json={"name": "A"}, headers=auth("generic"))

    assert answered.status_code == 504
    assert answered.json() == {"error": {"message": "Gateway Timeout", "code": 504}}
    assert len(server.dataset("generic", "items")) == 0


def test_each_request_is_recorded_with_its_body_and_headers(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    client.patch(
        f"{server.base_url}/crm/v3/objects/deals/1",
        json={"properties": {"amount": "1"}},
        headers={**auth("hubspot"), "X-Trace": "t-1"},
    )

    [recorded] = server.requests
    assert (recorded.method, recorded.path) == ("PATCH", "/crm/v3/objects/deals/1")
    assert recorded.body == {"properties": {"amount": "1"}}
    assert recorded.raw_body == b'{"properties":{"amount":"1"}}'
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.headers["x-trace"] == "t-1"
    assert recorded.form is None
