"""Provider registry. Modules are imported on first use, so a function loads only what it serves."""

from __future__ import annotations

import importlib
import importlib.util
from typing import cast

from pullbridge.providers.base import Provider

PROVIDER_NAMES: tuple[str, ...] = ("stripe", "github", "shopify", "hubspot", "standard", "generic")
"""Every provider the contract names; a name here with no module yet is rejected at connection time."""

_loaded: dict[str, Provider] = {}


def available_providers() -> tuple[str, ...]:
    return tuple(name for name in PROVIDER_NAMES if importlib.util.find_spec(f"pullbridge.providers.{name}"))


def get_provider(name: str) -> Provider:
    """The provider module's `PROVIDER`. Raises KeyError for an unknown or unimplemented provider."""
    provider = _loaded.get(name)
    if provider is None:
        if name not in PROVIDER_NAMES:
            raise KeyError(name)
        try:
            module = importlib.import_module(f"pullbridge.providers.{name}")
        except ModuleNotFoundError as exc:
            raise KeyError(name) from exc
        provider = cast(Provider, module.PROVIDER)
        _loaded[name] = provider
    return provider
