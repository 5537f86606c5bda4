"""One URL rule for connection writes and pulls: every IPv4 and IPv6 spelling of a private address is
refused both when a connection is written and when a pull would call it. No test here uses the network:
names resolve through a fake resolver."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import httpx
import pytest

from pullbridge.errors import PullFailed, ValidationFailed
from pullbridge.pulls.http import PullHttp
from pullbridge.pulls.stats import PullStats
from pullbridge.urls import (
    UrlRefused,
    check_url,
    embedded_ipv4,
    host_address,
    is_public_address,
    parse_ipv4,
    validate_base_url,
)


class FakeResolver:
    """Resolves only the names it is given; any other name fails as DNS does. Records each lookup."""

    def __init__(self, names: dict[str, set[str]] | None = None) -> None:
        self.names = names or {}
        self.calls: list[str] = []

    def __call__(self, host: str) -> set[str]:
        self.calls.append(host)
        if host not in self.names:
            raise OSError(f"{host}: Name or service not known")
        return set(self.names[host])


PUBLIC_NAMES = {"api.stripe.com": {"54.187.174.169", "2600:1f14::1"}}


# --- IPv4 spellings, parsed as inet_aton reads them ------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1.1", "10.1.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0.0.0x1", "127.0.0.1"),
        ("0177.0x0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104 - an expected value, not a bind address
        ("0x", "0.0.0.0"),  # noqa: S104
        ("00.00.00.00", "0.0.0.0"),  # noqa: S104
        ("8.8.8.8", "8.8.8.8"),
        ("134744072", "8.8.8.8"),
        ("0x08080808", "8.8.8.8"),
        ("010.010.010.010", "8.8.8.8"),
        ("8.8.2056", "8.8.8.8"),
        ("4294967295", "255.255.255.255"),
    ],
)
def test_every_inet_aton_spelling_parses_to_its_address(host: str, address: str) -> None:
    assert parse_ipv4(host) == IPv4Address(address)


@pytest.mark.parametrize(
    "host", ["example.com", "api.stripe.com", "localhost", "1e3", "0x7f.example", "127.0.0.x"]
)
def test_a_name_is_not_an_ipv4_address(host: str) -> None:
    assert parse_ipv4(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "4294967296",  # 2**32
        "256.0.0.1",
        "1.2.3.256",
        "1.2.65536",
        "1.16777216",
        "1.2.3.4.5",
        "08.0.0.1",  # 8 is no octal digit
        "0x7g.0.0.1",
        "127..1",
        "example.123",  # a host ending in a number must be an address
        "1" * 65,
    ],
)
def test_a_host_that_ends_in_a_number_but_is_no_address_is_invalid(host: str) -> None:
    with pytest.raises(ValueError, match=r"IPv4 part|too long"):
        parse_ipv4(host)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("[::1]", IPv6Address("::1")),
        ("fe80::1%25eth0", IPv6Address("fe80::1")),
        ("[fe80::1%eth0]", IPv6Address("fe80::1")),
        ("127.0.0.1.", IPv4Address("127.0.0.1")),
        ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", IPv4Address("127.0.0.1")),  # full-width digits
        ("API.Stripe.com.", "api.stripe.com"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_host_address_reads_brackets_zones_trailing_dots_and_idna(host: str, expected: object) -> None:
    assert host_address(host) == expected


@pytest.mark.parametrize("host", ["%31%32%37.0.0.1", "a b.example", "a..b", "-" * 64 + ".example", "[::g]"])
def test_host_address_refuses_what_is_no_host(host: str) -> None:
    with pytest.raises(ValueError, match=r"IPv4|IPv6|host name"):
        host_address(host)


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:7f00:1", "127.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
        ("2002:7f00:1::", "127.0.0.1"),
        ("64:ff9b::10.0.0.1", "10.0.0.1"),
        ("2606:4700::1111", None),
    ],
)
def test_the_ipv4_an_ipv6_address_embeds(address: str, embedded: str | None) -> None:
    assert embedded_ipv4(IPv6Address(address)) == (IPv4Address(embedded) if embedded else None)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),
        ("2002:808:808::1", True),
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("ff0e::1", False),  # global-scope multicast: is_global alone says True
        ("fec0::1", False),  # deprecated site-local: is_global alone says True
        ("5f00::1", False),
        ("64:ff9b:1::1", False),
        ("::ffff:0:808:808", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ip_address(address)) is public


# --- the one table: refused when written and when pulled -------------------------------------------------

PRIVATE_URLS = [
    "https://127.0.0.1",
    "https://2130706433",
    "https://0x7f000001",
    "https://0X7F000001/v1",
    "https://0177.0.0.1",
    "https://017700000001",
    "https://127.1",
    "https://127.0.1",
    "https://10.1.1",
    "https://0x7f.1",
    "https://0x7f.0.0.0x1",
    "https://127.0.0.1.",
    "https://0",
    "https://0.0.0.0",
    "https://169.254.169.254/latest",
    "https://2852039166",  # 169.254.169.254
    "https://0xa9fea9fe",
    "https://10.0.0.8:8443/api",
    "https://192.168.0.1",
    "https://0300.0250.0.1",  # 192.168.0.1
    "https://172.16.0.1",
    "https://100.64.0.1",
    "https://224.0.0.1",
    "https://240.0.0.1",
    "https://255.255.255.255",
    "https://[::1]",
    "https://[::]",
    "https://[0:0:0:0:0:0:0:1]",
    "https://[::ffff:127.0.0.1]",
    "https://[::ffff:7f00:1]",
    "https://[::ffff:169.254.169.254]",
    "https://[::127.0.0.1]",
    "https://[::7f00:1]",
    "https://[2002:7f00:1::]",
    "https://[2002:c0a8:1::1]",  # 6to4 of 192.168.0.1
    "https://[64:ff9b::7f00:1]",
    "https://[64:ff9b::10.0.0.1]",
    "https://[fe80::1%25eth0]",
    "https://[fe80::1]",
    "https://[fd00::1]",
    "https://[fec0::1]",
    "https://[ff02::1]",
    "https://[ff0e::1]",
    "https://[2001:db8::1]",
    "https://localhost",
    "https://LOCALHOST.",
    "https://api.localhost",
    "https://db.internal",
    "https://printer.local",
]

PUBLIC_URLS = [
    "https://8.8.8.8",
    "https://134744072",  # 8.8.8.8
    "https://0x08080808",
    "https://010.010.010.010",
    "https://[2606:4700::1111]",
    "https://[2606:4700::1111]:8443/v1",
    "https://[::ffff:8.8.8.8]",
    "https://[64:ff9b::808:808]",
    "https://[2002:808:808::1]",
    "https://api.stripe.com",
    "https://api.stripe.com.",
    "https://API.stripe.com/v1/",
]

HTTPX_REFUSES = {"https://0177.0.0.1", "https://0300.0250.0.1", "https://010.010.010.010"}
"""Dotted quads with leading zeros, which httpx itself refuses to parse: a pull fails them as invalid_url."""

INVALID_URLS = [
    "ftp://api.stripe.com",
    "not a url",
    "/v1/customers",
    "https://",
    "https://:443",
    "https://api.stripe.com:99999",
    "https://user:pw@api.stripe.com",
    "https://user@api.stripe.com",
    "https://4294967296",
    "https://256.0.0.1",
    "https://1.2.3.4.5",
    "https://08.0.0.1",
    "https://%31%32%37.0.0.1",
    "https://[::ffff:0177.0.0.1]",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_a_private_address_in_any_spelling_is_refused_when_written(url: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(ValidationFailed) as caught:
        validate_base_url(url, allow_private=False, resolver=resolver)

    assert (caught.value.key, caught.value.data) == ("private_address", {"field": "api_base_url"})
    assert caught.value.message.startswith("api_base_url: ")
    assert resolver.calls == []  # a literal or a local name is judged without DNS


@pytest.mark.parametrize("url", [*INVALID_URLS, "https://@api.stripe.com"])
def test_an_invalid_url_is_refused_when_written(url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_base_url(url, allow_private=False, resolver=FakeResolver(PUBLIC_NAMES))

    assert (caught.value.key, caught.value.data) == ("invalid_url", {"field": "api_base_url"})


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_a_public_address_in_any_spelling_is_accepted_when_written(url: str) -> None:
    assert validate_base_url(url, allow_private=False, resolver=FakeResolver(PUBLIC_NAMES)) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://api.stripe.com", "http://8.8.8.8"])
def test_plain_http_is_refused_when_written(url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_base_url(url, allow_private=False, resolver=FakeResolver(PUBLIC_NAMES))

    assert caught.value.key == "private_address"
    assert "https" in caught.value.message


@pytest.fixture
def transport_calls() -> list[httpx.Request]:
    return []


@pytest.fixture
def client(transport_calls: list[httpx.Request]) -> Iterator[httpx.Client]:
    def answer(request: httpx.Request) -> httpx.Response:
        transport_calls.append(request)
        return httpx.Response(200, json={"ok": True})

    with httpx.Client(transport=httpx.MockTransport(answer)) as mock_client:
        yield mock_client


def pull_http(
    client: httpx.Client, resolver: Any, *, allow_private: bool = False
) -> tuple[PullHttp, PullStats]:
    stats = PullStats()
    return PullHttp(
        client, stats, allow_private=allow_private, resolver=resolver, sleep=lambda _: None
    ), stats


def pull_failure(http: PullHttp, url: str) -> PullFailed:
    with pytest.raises(PullFailed) as caught:
        http.get(url)
    return caught.value


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_a_private_address_in_any_spelling_is_refused_when_pulled(
    client: httpx.Client, transport_calls: list[httpx.Request], url: str
) -> None:
    http, stats = pull_http(client, FakeResolver())

    failure = pull_failure(http, url)

    expected_key = "invalid_url" if url in HTTPX_REFUSES else "private_address"
    assert (failure.error_type, failure.key) == ("bad_request", expected_key)
    assert (stats.requests, transport_calls) == (0, [])


@pytest.mark.parametrize("url", INVALID_URLS)
def test_an_invalid_url_is_refused_when_pulled(
    client: httpx.Client, transport_calls: list[httpx.Request], url: str
) -> None:
    http, stats = pull_http(client, FakeResolver(PUBLIC_NAMES))

    failure = pull_failure(http, url)

    assert (failure.error_type, failure.key) == ("bad_request", "invalid_url")
    assert (stats.requests, transport_calls) == (0, [])


@pytest.mark.parametrize("url", [url for url in PUBLIC_URLS if url not in HTTPX_REFUSES])
def test_a_public_address_in_any_spelling_is_called_when_pulled(
    client: httpx.Client, transport_calls: list[httpx.Request], url: str
) -> None:
    http, stats = pull_http(client, FakeResolver(PUBLIC_NAMES))

    assert http.get(url).status_code == 200
    assert (stats.requests, len(transport_calls)) == (1, 1)


# --- names: checked after resolving ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "addresses",
    [
        {"10.0.0.7"},
        {"169.254.169.254"},
        {"::1"},
        {"::ffff:127.0.0.1"},
        {"fd00::1"},
        {"54.187.174.169", "127.0.0.1"},
    ],
)
def test_a_name_that_resolves_to_a_private_address_is_refused_when_written(addresses: set[str]) -> None:
    resolver = FakeResolver({"api.example.com": addresses})

    with pytest.raises(ValidationFailed) as caught:
        validate_base_url("https://api.example.com/v1", allow_private=False, resolver=resolver)

    assert (caught.value.key, caught.value.data) == ("private_address", {"field": "api_base_url"})
    assert resolver.calls == ["api.example.com"]


def test_a_name_that_does_not_resolve_is_accepted_when_written() -> None:
    # The provider may be unreachable from here for now; every pull checks it again.
    resolver = FakeResolver()

    assert validate_base_url("https://api.example.com/", allow_private=False, resolver=resolver) == (
        "https://api.example.com"
    )
    assert resolver.calls == ["api.example.com"]


def test_a_name_that_does_not_resolve_fails_a_pull_as_dns_failure(client: httpx.Client) -> None:
    http, _ = pull_http(client, FakeResolver())

    failure = pull_failure(http, "https://api.example.com/v1")

    assert (failure.error_type, failure.key) == ("bad_gateway", "dns_failure")


def test_a_name_that_resolves_to_no_address_fails_a_pull_as_dns_failure(client: httpx.Client) -> None:
    http, _ = pull_http(client, FakeResolver({"api.example.com": set()}))

    assert pull_failure(http, "https://api.example.com/v1").key == "dns_failure"


def test_a_pull_resolves_each_name_once(client: httpx.Client) -> None:
    resolver = FakeResolver(PUBLIC_NAMES)
    http, _ = pull_http(client, resolver)

    http.get("https://api.stripe.com/v1/customers")
    http.get("https://api.stripe.com/v1/prices")

    assert resolver.calls == ["api.stripe.com"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://2130706433", "http://localhost:3000/api"])
def test_private_urls_are_allowed_without_any_lookup_when_the_deployment_says_so(url: str) -> None:
    resolver = FakeResolver()

    assert validate_base_url(url, allow_private=True, resolver=resolver) == url
    check_url(url, allow_private=True, resolver=resolver)
    assert resolver.calls == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "https://user:pw@127.0.0.1", "https://256.0.0.1"])
def test_allowing_private_urls_still_refuses_invalid_ones(url: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        check_url(url, allow_private=True, resolver=FakeResolver())
    assert caught.value.key == "invalid_url"
