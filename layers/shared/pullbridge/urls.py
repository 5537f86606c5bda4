"""The contract's rule for provider base URLs, written once for connection writes and for pulls: http(s)
with a host and no credentials; and, unless the deployment allows private addresses
(`PULLBRIDGE_ALLOW_PRIVATE_URLS=1`, `make dev`'s default), https to global addresses only.

A host is judged by the address it stands for, however it is spelled: every IPv4 spelling the C resolver's
`inet_aton` accepts (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`), every IPv6 spelling, the IPv4
that an IPv6 address embeds (mapped, compatible, 6to4, NAT64), and the addresses a DNS name resolves to.
Literals are parsed here, never by the OS, so a spelling is judged the same on every machine.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Literal
from urllib.parse import urlsplit

from pullbridge.errors import ValidationFailed

Resolver = Callable[[str], set[str]]
"""A host name -> the addresses it resolves to; raises `OSError` (or `UnicodeError`) when it does not."""

RefusalKey = Literal["invalid_url", "private_address", "dns_failure"]

_PRIVATE_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")
_HEX_PART = re.compile(r"0[xX][0-9a-fA-F]*")
_OCTAL_PART = re.compile(r"0[0-7]*")
_DECIMAL_PART = re.compile(r"[0-9]+")
_NAME_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_PART_LENGTH = 64
"""Longer numeric parts are refused unparsed (Python's int() also caps decimal digits)."""
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class UrlRefused(ValueError):
    """Why `check_url` refuses a URL. Each caller maps it to its own error (a 400 naming the field when a
    connection is written, a `PullFailed` during a pull)."""

    def __init__(self, key: RefusalKey, reason: str) -> None:
        super().__init__(reason)
        self.key: RefusalKey = key
        self.reason = reason


def resolve_host(host: str) -> set[str]:
    """The addresses `host` resolves to, through the OS resolver (what httpx will connect to)."""
    return {str(info[4][0]) for info in socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)}


def parse_ipv4(host: str) -> IPv4Address | None:
    """The address an IPv4 literal stands for, in any spelling `inet_aton` accepts: one to four parts, each
    decimal, octal (leading `0`) or hex (`0x`), the last filling the remaining bytes (`127.1`, `10.1.1`,
    `2130706433`). None when `host` is a name. A host whose last part is a number must be an address
    (as in the WHATWG URL standard): when it is not a valid one, `ValueError`."""
    parts = host.split(".")
    if not _is_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"{host!r} has more than four IPv4 parts")
    numbers = [_ipv4_number(part) for part in parts]
    *leading, last = numbers
    if any(number > 0xFF for number in leading) or last >= 1 << (8 * (5 - len(numbers))):
        raise ValueError(f"{host!r} has an IPv4 part out of range")
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return IPv4Address(value)


def _is_number(part: str) -> bool:
    return bool(_DECIMAL_PART.fullmatch(part) or _HEX_PART.fullmatch(part))


def _ipv4_number(part: str) -> int:
    if len(part) > _MAX_PART_LENGTH:
        raise ValueError("an IPv4 part is too long")
    if _HEX_PART.fullmatch(part):
        return int(part[2:] or "0", 16)  # `0x` alone is 0, as inet_aton reads it
    if part.startswith("0") and _OCTAL_PART.fullmatch(part):
        return int(part, 8)
    if _DECIMAL_PART.fullmatch(part) and not part.startswith("0"):
        return int(part)
    raise ValueError(f"{part!r} is not a decimal, octal or hex IPv4 part")


def host_address(host: str) -> IPv4Address | IPv6Address | str:
    """The address an IP literal host stands for, else the host as an ASCII name (IDNA-encoded, lower-case,
    without a trailing dot). Takes brackets, zone ids (`fe80::1%25eth0`) and full-width digits, which
    IDNA maps to ASCII. `ValueError` for anything that is neither an address nor a host name."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        # A zone id only names the interface: the address is what is judged.
        try:
            return IPv6Address(host.split("%", 1)[0])
        except ValueError as exc:
            raise ValueError(f"{host!r} is not a valid IPv6 address") from exc
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"{host!r} is not a valid host name") from exc
    host = host.removesuffix(".")
    address = parse_ipv4(host)
    if address is not None:
        return address
    labels = host.split(".")
    if len(host) > 253 or not all(_NAME_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name")
    return host


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries, which is where a connection to it may end up:
    IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), 6to4 (`2002:AABB:CCDD::/48`) and
    NAT64 (`64:ff9b::a.b.c.d`)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) >> 32 == 0 or address in _NAT64_PREFIX:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPv4Address | IPv6Address) -> bool:
    """True for a global unicast address. An IPv6 address that embeds an IPv4 one is judged by it."""
    if isinstance(address, IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.is_site_local:
            return False
    # `is_global` alone lets multicast (and, in some Python versions, reserved ranges) through.
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_link_local
        or address.is_loopback
        or address.is_unspecified
        or address.is_private
    )


def is_private_name(name: str) -> bool:
    """`localhost` and the suffixes that only ever name machines on a local network."""
    return name == "localhost" or name.endswith(_PRIVATE_NAME_SUFFIXES)


def check_url(url: str, *, allow_private: bool, resolver: Resolver = resolve_host) -> None:
    """Raise `UrlRefused` unless `url` is an absolute http(s) URL without credentials whose host is
    allowed. Unless `allow_private`: https only, an IP literal must be public, and a name must resolve (key
    `dns_failure` otherwise) to public addresses only. With `allow_private`, nothing is resolved."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading the port checks it
    except ValueError as exc:
        raise UrlRefused("invalid_url", "must be an absolute http(s) URL with a host") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UrlRefused("invalid_url", "must be an absolute http(s) URL with a host")
    if "@" in parts.netloc:
        raise UrlRefused("invalid_url", "must not carry credentials")
    try:
        host = host_address(parts.hostname)
    except ValueError as exc:
        raise UrlRefused("invalid_url", "must have a valid host name or IP address") from exc
    if allow_private:
        return
    if parts.scheme != "https":
        raise UrlRefused("private_address", "must use https")
    if isinstance(host, str):
        _check_name(host, resolver)
    elif not is_public_address(host):
        raise UrlRefused("private_address", "must not point at a private address")


def _check_name(name: str, resolver: Resolver) -> None:
    if is_private_name(name):
        raise UrlRefused("private_address", "must not point at a private address")
    try:
        resolved = resolver(name)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused("dns_failure", f"{name} could not be resolved") from exc
    if not resolved:
        raise UrlRefused("dns_failure", f"{name} resolves to no address")
    for text in resolved:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            address = None
        if address is None or not is_public_address(address):
            raise UrlRefused("private_address", f"{name} resolves to a private address")


def validate_base_url(
    url: str, *, allow_private: bool, field: str = "api_base_url", resolver: Resolver = resolve_host
) -> str:
    """`check_url` for a connection being written: the URL without a trailing slash, or a 400 naming
    `field`. A name that does not resolve is accepted: the provider may be unreachable from here for now,
    and every pull checks again."""
    try:
        check_url(url, allow_private=allow_private, resolver=resolver)
    except UrlRefused as refused:
        if refused.key != "dns_failure":
            raise ValidationFailed(
                f"{field}: {refused.reason}", key=refused.key, data={"field": field}
            ) from refused
    return url.rstrip("/")
