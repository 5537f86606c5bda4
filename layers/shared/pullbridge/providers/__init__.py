"""Provider registry. Modules are imported on first use, so a function loads only what it serves.

A provider is the module (or package) `pullbridge.providers.<name>`, exposing `PROVIDER`; its name is
listed once, in `ProviderName`, which the API's models (and so its OpenAPI enum) use too.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Literal, cast, get_args

from pullbridge.providers.base import Provider

ProviderName = Literal["stripe", "github", "shopify", "hubspot", "standard", "generic"]
"""Every provider the contract names: the one list to add a provider to."""

PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)
"""`ProviderName` at run time; a name here with no module yet is rejected at connection time."""

_loaded: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """The provider module's `PROVIDER`. Raises KeyError for an unknown or unimplemented provider."""
    provider = _loaded.get(name)
    if provider is None:
        if name not in PROVIDER_NAMES:
            raise KeyError(name)
        module_name = f"pullbridge.providers.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # the module is there; something it imports is not
                raise
            raise KeyError(name) from exc
        provider = cast(Provider, module.PROVIDER)
        _loaded[name] = provider
    return provider
