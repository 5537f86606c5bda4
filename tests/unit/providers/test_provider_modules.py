"""Each provider module plugs into the registry with the interface and the collections the contract names."""

from __future__ import annotations

from typing import Any

import pytest

from pullbridge.providers import get_provider

COLLECTIONS = {
    "stripe": {"customers", "invoices", "subscriptions", "charges", "products", "prices", "payment_intents"},
    "github": {"issues", "pulls"},
    "shopify": {"orders", "products", "customers"},
    "hubspot": {"contacts", "companies", "deals"},
    "generic": set(),
}
SAME_REPRESENTATION = {"stripe": True, "github": False, "shopify": True, "hubspot": False, "generic": False}


@pytest.mark.parametrize("name", sorted(COLLECTIONS))
def test_the_registry_loads_the_provider_under_its_name(name: str) -> None:
    assert get_provider(name).name == name


def test_the_registry_rejects_an_unknown_provider() -> None:
    with pytest.raises(KeyError):
        get_provider("paypal")


@pytest.mark.parametrize(("name", "collections"), sorted(COLLECTIONS.items()))
def test_the_provider_declares_the_contracts_collections(name: str, collections: set[str]) -> None:
    assert get_provider(name).collections == collections


@pytest.mark.parametrize(("name", "same"), sorted(SAME_REPRESENTATION.items()))
def test_the_provider_says_whether_webhooks_carry_the_list_representation(name: str, same: bool) -> None:
    assert get_provider(name).webhook_matches_list_representation is same


@pytest.mark.parametrize("name", ["stripe", "github", "shopify", "hubspot"])
def test_a_fixed_scheme_keeps_its_settings_as_they_are(name: str) -> None:
    settings: dict[str, Any] = {"rate_limit": {"allowed_requests": 10, "interval_seconds": 1}}
    provider: Any = get_provider(name)
    assert provider.validate_settings(settings) == settings
