"""Each provider module plugs into the registry with the interface and the collections the contract names."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path
from typing import Any, get_args

import pytest

from pullbridge import models
from pullbridge import providers as providers_package
from pullbridge.providers import PROVIDER_NAMES, ProviderName, get_provider

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


REQUEST_ID_HEADERS = {
    "stripe": "Request-Id",
    "github": "X-GitHub-Request-Id",
    "shopify": "X-Request-Id",
    "hubspot": "X-HubSpot-Correlation-Id",
    "generic": "X-Request-Id",
    "standard": None,
}


@pytest.mark.parametrize(("name", "header"), sorted(REQUEST_ID_HEADERS.items()))
def test_the_provider_names_the_header_its_request_ids_are_in(name: str, header: str | None) -> None:
    assert get_provider(name).request_id_header == header


@pytest.mark.parametrize("name", ["stripe", "github", "shopify", "hubspot", "standard"])
def test_a_fixed_provider_offers_its_collections_whatever_the_settings(name: str) -> None:
    provider = get_provider(name)
    assert provider.pullable_collections({"collection": "tickets"}) == provider.collections


def test_a_generic_connection_offers_the_collection_it_configures() -> None:
    assert get_provider("generic").pullable_collections({"collection": "tickets"}) == {"tickets"}


@pytest.mark.parametrize("settings", [{}, {"collection": None}])
def test_a_generic_connection_without_a_collection_may_name_any(settings: dict[str, Any]) -> None:
    assert get_provider("generic").pullable_collections(settings) is None


# --- the registry and the layering ----------------------------------------------------------------

PROVIDERS_DIR = Path(providers_package.__file__).parent
SHARED_MODULES = {"base", "signing", "writes"}


def test_every_provider_module_is_named_once_and_every_name_has_its_module() -> None:
    modules = {module.name for module in pkgutil.iter_modules([str(PROVIDERS_DIR)])} - SHARED_MODULES
    assert modules == set(PROVIDER_NAMES)


def test_the_apis_models_use_the_providers_list_of_names() -> None:
    assert models.ProviderName is ProviderName
    assert set(get_args(ProviderName)) == set(PROVIDER_NAMES) == set(COLLECTIONS) | {"standard"}


def test_the_apis_schema_enumerates_every_provider() -> None:
    """What the OpenAPI document shows for `provider` comes from the same Literal."""
    schema = models.ConnectionCreate.model_json_schema()
    assert schema["properties"]["provider"]["enum"] == list(PROVIDER_NAMES)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return imported


@pytest.mark.parametrize("path", sorted(PROVIDERS_DIR.rglob("*.py")), ids=lambda path: path.stem)
def test_a_provider_module_imports_nothing_from_the_pulls_nor_an_http_client(path: Path) -> None:
    """The arrow runs one way: pulls use providers. `ProviderHttp` stands for the pull's HTTP client."""
    imported = _imported_modules(path)
    assert not {
        name for name in imported if name == "pullbridge.pulls" or name.startswith("pullbridge.pulls.")
    }
    assert not {name for name in imported if name.split(".")[0] in ("httpx", "requests", "urllib3")}
