"""The contract's rule for provider base URLs: https, and never a private address unless the
deployment allows it (`PULLBRIDGE_ALLOW_PRIVATE_URLS=1`, which `make dev` sets)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pullbridge.errors import ValidationFailed

_PRIVATE_HOST_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


def is_private_host(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(_PRIVATE_HOST_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def validate_base_url(url: str, *, allow_private: bool, field: str = "api_base_url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationFailed(f"{field}: must be an absolute https URL", data={"field": field})
    if parts.username or parts.password:
        raise ValidationFailed(f"{field}: must not carry credentials", data={"field": field})
    if not allow_private:
        if parts.scheme != "https":
            raise ValidationFailed(f"{field}: must use https", data={"field": field})
        if is_private_host(parts.hostname):
            raise ValidationFailed(f"{field}: must not point at a private address", data={"field": field})
    return url.rstrip("/")
