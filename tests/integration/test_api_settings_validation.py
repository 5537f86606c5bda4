"""`settings` through the API handler: a wrong one is a 400 naming the field, and nothing is stored."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.support import api_event, json_body, lambda_context


def call(api: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    response = api.lambda_handler(event, lambda_context())
    return response["statusCode"], json_body(response)


def create(api: ModuleType, api_key: str, provider: str, settings: Any) -> tuple[int, Any]:
    body = {"provider": provider, "name": f"{provider} account", "settings": settings}
    return call(api, api_event("create_connection.json", api_key, body=body))


def update(api: ModuleType, api_key: str, connection_id: str, settings: Any) -> tuple[int, Any]:
    return call(
        api,
        api_event(
            "get_event.json",
            api_key,
            path=f"/connections/{connection_id}",
            method="PATCH",
            path_parameters={"connection_id": connection_id},
            body={"settings": settings},
        ),
    )


def stored_connections(api: ModuleType, api_key: str) -> list[dict[str, Any]]:
    status, page = call(api, api_event("health.json", api_key, path="/connections"))
    assert status == 200
    return page["data"]  # type: ignore[no-any-return]


def test_a_stripe_rate_limit_of_fast_is_a_400_naming_the_field_and_stores_nothing(
    api: ModuleType, api_key: str
) -> None:
    status, body = create(api, api_key, "stripe", {"rate_limit": "fast"})

    assert status == 400
    assert body["error"]["type"] == "bad_request"
    assert body["error"]["data"]["field"] == "settings.rate_limit"
    assert "settings.rate_limit" in body["error"]["message"]
    assert stored_connections(api, api_key) == []


@pytest.mark.parametrize("provider", ["stripe", "github", "shopify", "hubspot"])
@pytest.mark.parametrize(
    ("rate_limit", "field"),
    [
        ({"allowed_requests": 0, "interval_seconds": 0}, "settings.rate_limit.allowed_requests"),
        ({"allowed_requests": 10, "interval_seconds": 0}, "settings.rate_limit.interval_seconds"),
    ],
)
def test_a_zero_rate_limit_is_a_400_naming_the_field(
    api: ModuleType, api_key: str, provider: str, rate_limit: dict[str, Any], field: str
) -> None:
    status, body = create(api, api_key, provider, {"rate_limit": rate_limit})

    assert (status, body["error"]["data"]["field"]) == (400, field)
    assert stored_connections(api, api_key) == []


def test_a_mistyped_setting_is_a_400_naming_it(api: ModuleType, api_key: str) -> None:
    status, body = create(
        api, api_key, "github", {"rate_limt": {"allowed_requests": 5, "interval_seconds": 1}}
    )

    assert (status, body["error"]["data"]["field"]) == (400, "settings.rate_limt")


def test_a_patch_with_a_bad_rate_limit_changes_nothing(api: ModuleType, api_key: str) -> None:
    good = {"repository": "octo-org/octo-repo", "rate_limit": {"allowed_requests": 5, "interval_seconds": 1}}
    status, created = create(api, api_key, "github", good)
    assert (status, created["settings"]) == (201, good)

    status, body = update(
        api, api_key, created["id"], {"rate_limit": {"allowed_requests": 5, "interval_seconds": 0.5}}
    )

    assert (status, body["error"]["data"]["field"]) == (400, "settings.rate_limit.interval_seconds")
    assert [connection["settings"] for connection in stored_connections(api, api_key)] == [good]
