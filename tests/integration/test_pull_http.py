"""PullHttp against the fake providers over real HTTP: retries, Retry-After, typed failures, the rate
limit, the private-address rule and the counters."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from pullbridge.errors import PullFailed
from pullbridge.providers import get_provider
from pullbridge.pulls.http import PullHttp, rate_limit_from_settings, redact_url
from pullbridge.pulls.stats import PullStats
from tests.fakes.provider_server import REQUEST_ID_PREFIX, FakeProviderServer

STRIPE_KEY = "sk_test_fakeprovider000000"


class Sleeps(list[float]):
    """An injected `sleep` that records each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class FakeClock:
    """A monotonic clock that only `sleep` moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        fake.dataset("stripe", "customers").seed(5)
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(0.5)) as http_client:
        yield http_client


def customers_url(server: FakeProviderServer) -> str:
    return f"{server.base_url}/v1/customers"


def auth(key: str = STRIPE_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_http(client: httpx.Client, **options: Any) -> tuple[PullHttp, PullStats, Sleeps]:
    """A `PullHttp` for the fake Stripe, which quotes Stripe's request id header, as the engine makes it."""
    stats, sleeps = PullStats(), Sleeps()
    options.setdefault("allow_private", True)
    options.setdefault("request_id_header", get_provider("stripe").request_id_header)
    return PullHttp(client, stats, sleep=sleeps, **options), stats, sleeps


def failure_of(http: PullHttp, url: str, **kwargs: Any) -> PullFailed:
    with pytest.raises(PullFailed) as caught:
        http.get_json(url, **kwargs)
    return caught.value


# --- success and counters -----------------------------------------------------------------------


def test_a_success_returns_the_body_and_counts_one_request(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    http, stats, sleeps = make_http(client)

    body, response = http.get_json(customers_url(server), params={"limit": "3"}, headers=auth())

    assert response.status_code == 200
    assert [item["id"] for item in body["data"]] == server.dataset("stripe", "customers").ids()[:3]
    assert (stats.requests, stats.retries, sleeps) == (1, 0, [])


# --- 429 ----------------------------------------------------------------------------------------


def test_429_waits_the_retry_after_seconds_then_retries(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.fail_with(429, times=2, retry_after=7)
    http, stats, sleeps = make_http(client)

    body, _ = http.get_json(customers_url(server), headers=auth())

    assert body["object"] == "list"
    assert sleeps == [7.0, 7.0]
    assert (stats.requests, stats.retries) == (3, 2)
    assert server.requests_served == 3


def test_429_waits_until_a_retry_after_http_date(server: FakeProviderServer, client: httpx.Client) -> None:
    server.fail_with(429, times=1, retry_after=formatdate(time.time() + 20, usegmt=True))
    http, _, sleeps = make_http(client)

    http.get_json(customers_url(server), headers=auth())

    assert len(sleeps) == 1
    assert 18.0 <= sleeps[0] <= 21.0


def test_a_retry_after_beyond_the_cap_waits_only_the_cap(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.fail_with(429, times=1, retry_after=3600)
    http, _, sleeps = make_http(client, max_backoff_seconds=12.0)

    http.get_json(customers_url(server), headers=auth())

    assert sleeps == [12.0]


def test_429_without_retry_after_backs_off(server: FakeProviderServer, client: httpx.Client) -> None:
    server.fail_with(429, times=1)
    http, _, sleeps = make_http(client)

    http.get_json(customers_url(server), headers=auth())

    assert len(sleeps) == 1
    assert 0.25 <= sleeps[0] <= 0.5


def test_429_on_every_attempt_is_rate_limited(server: FakeProviderServer, client: httpx.Client) -> None:
    server.fail_with(429, times=None, retry_after=1)
    http, stats, sleeps = make_http(client, max_attempts=3)

    failure = failure_of(http, customers_url(server), headers=auth())

    assert failure.error_type == "rate_limited"
    assert failure.data["status_code"] == 429
    assert failure.data["request_id"].startswith("req_fake")
    assert (stats.requests, stats.retries, sleeps) == (3, 2, [1.0, 1.0])


# --- 5xx ----------------------------------------------------------------------------------------


def test_a_500_on_a_page_is_retried_and_the_scan_completes(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("stripe", "customers").seed(245)
    server.fail_with(500, times=2, on_page=2, path="/v1/customers")
    http, stats, sleeps = make_http(client)

    pages = list(get_provider("stripe").list_pages(http, server.pull_source("stripe", "customers"), None))

    assert sum(len(page.records) for page in pages) == 250
    assert (stats.requests, stats.retries) == (5, 2)
    # Exponential, jittered, bounded: the first wait is at most 0.5 s, the second at most 1 s.
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0


def test_500_on_every_attempt_is_bad_gateway_with_status_and_request_id(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.fail_with(503, times=None)
    http, stats, sleeps = make_http(client, max_attempts=4)

    failure = failure_of(http, customers_url(server), headers=auth(), params={"limit": "10"})

    assert failure.error_type == "bad_gateway"
    assert failure.data["status_code"] == 503
    assert failure.data["request_id"].startswith("req_fake")
    assert failure.data["url"] == f"{customers_url(server)}?limit=10"
    assert (stats.requests, stats.retries, len(sleeps)) == (4, 3, 3)


def test_backoff_never_exceeds_the_cap(server: FakeProviderServer, client: httpx.Client) -> None:
    server.fail_with(500, times=None)
    http, _, sleeps = make_http(client, max_attempts=8, max_backoff_seconds=2.0)

    failure_of(http, customers_url(server), headers=auth())

    assert len(sleeps) == 7
    assert all(0 < wait <= 2.0 for wait in sleeps)


# --- timeouts and transport errors ----------------------------------------------------------------


def test_a_timeout_is_retried_then_succeeds(server: FakeProviderServer) -> None:
    server.stall(2.0, times=1)
    with httpx.Client(timeout=httpx.Timeout(0.2)) as client:
        http, stats, sleeps = make_http(client)
        body, _ = http.get_json(customers_url(server), headers=auth())

    assert len(body["data"]) == 5
    assert (stats.requests, stats.retries, len(sleeps)) == (2, 1, 1)


def test_timeouts_on_every_attempt_are_timeout(server: FakeProviderServer) -> None:
    server.stall(2.0, times=None)
    with httpx.Client(timeout=httpx.Timeout(0.2)) as client:
        http, stats, _ = make_http(client, max_attempts=2)
        failure = failure_of(http, customers_url(server), headers=auth())

    assert failure.error_type == "timeout"
    assert failure.data["status_code"] is None
    assert isinstance(failure.__cause__, httpx.TimeoutException)
    assert (stats.requests, stats.retries) == (2, 1)


def test_connection_failures_on_every_attempt_are_bad_gateway(client: httpx.Client) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    http, stats, _ = make_http(client, max_attempts=3)

    failure = failure_of(http, f"http://127.0.0.1:{port}/v1/customers", headers=auth())

    assert (failure.error_type, failure.key) == ("bad_gateway", "connection_failed")
    assert (stats.requests, stats.retries) == (3, 2)


# --- answers that are not retried -----------------------------------------------------------------


def test_wrong_credentials_are_unauthorized_at_once(server: FakeProviderServer, client: httpx.Client) -> None:
    http, stats, sleeps = make_http(client)

    failure = failure_of(http, customers_url(server), headers=auth("sk_test_wrong"))

    assert failure.error_type == "unauthorized"
    assert failure.data["status_code"] == 401
    assert (stats.requests, stats.retries, sleeps) == (1, 0, [])


def test_403_is_unauthorized_at_once(server: FakeProviderServer, client: httpx.Client) -> None:
    server.fail_with(403, times=None)
    http, stats, _ = make_http(client)

    assert failure_of(http, customers_url(server), headers=auth()).error_type == "unauthorized"
    assert stats.requests == 1


def test_404_is_bad_response_not_found(server: FakeProviderServer, client: httpx.Client) -> None:
    http, stats, _ = make_http(client)

    failure = failure_of(http, f"{server.base_url}/v1/nothing-here", headers=auth())

    assert (failure.error_type, failure.key, failure.data["status_code"]) == (
        "bad_response",
        "not_found",
        404,
    )
    assert stats.requests == 1


def test_another_4xx_is_bad_response_without_retry(server: FakeProviderServer, client: httpx.Client) -> None:
    http, stats, _ = make_http(client)

    failure = failure_of(http, customers_url(server), headers=auth(), params={"limit": "101"})

    assert (failure.error_type, failure.data["status_code"]) == ("bad_response", 400)
    assert stats.requests == 1


def test_malformed_json_is_bad_response(server: FakeProviderServer, client: httpx.Client) -> None:
    server.malformed_json()
    http, stats, _ = make_http(client)

    failure = failure_of(http, customers_url(server), headers=auth())

    assert (failure.error_type, failure.key) == ("bad_response", "malformed_json")
    assert failure.data["request_id"].startswith("req_fake")
    assert stats.requests == 1


def test_a_redirect_is_not_followed() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(302, headers={"Location": "http://169.254.169.254/"})
    )
    with httpx.Client(transport=transport, follow_redirects=True) as client:
        http, _, _ = make_http(client)
        failure = failure_of(http, "https://api.example.test/v1/customers")

    assert (failure.error_type, failure.data["status_code"]) == ("bad_response", 302)


# --- the provider's request id --------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(REQUEST_ID_PREFIX))
def test_a_failure_quotes_the_request_id_from_the_header_its_provider_names(
    server: FakeProviderServer, client: httpx.Client, provider: str
) -> None:
    collection = sorted(get_provider(provider).collections or {"items"})[0]
    server.fail_with(401, times=None)
    http, _, _ = make_http(client, request_id_header=get_provider(provider).request_id_header)

    with pytest.raises(PullFailed) as caught:
        list(get_provider(provider).list_pages(http, server.pull_source(provider, collection), None))

    assert caught.value.data["request_id"].startswith(REQUEST_ID_PREFIX[provider])


def test_a_failure_quotes_no_request_id_from_a_header_its_provider_does_not_name(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.fail_with(503, times=None)
    http, _, _ = make_http(client, max_attempts=1, request_id_header=get_provider("github").request_id_header)

    failure = failure_of(http, customers_url(server), headers=auth())

    assert (failure.data["status_code"], failure.data["request_id"]) == (503, None)


def test_a_failure_quotes_no_request_id_when_no_header_is_named(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.fail_with(503, times=None)
    http, _, _ = make_http(client, max_attempts=1, request_id_header=None)

    failure = failure_of(http, customers_url(server), headers=auth())

    assert (failure.data["status_code"], failure.data["request_id"]) == (503, None)


# --- errors carry no secrets ----------------------------------------------------------------------


def test_errors_carry_neither_headers_nor_secret_query_values(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    http, _, _ = make_http(client)

    failure = failure_of(
        http, f"{server.base_url}/v1/customers?hapikey=topsecret&limit=5", headers=auth("sk_test_wrong")
    )

    flattened = repr(failure.to_error_object())
    assert "sk_test_wrong" not in flattened
    assert "topsecret" not in flattened
    assert "limit=5" in failure.data["url"]


def test_redact_url_drops_userinfo_and_secret_values() -> None:
    assert (
        redact_url("https://user:pw@api.example.com/x?api_key=1&cursor=abc#frag")
        == "https://api.example.com/x?api_key=REDACTED&cursor=abc"
    )


# --- the connection's rate limit ------------------------------------------------------------------


def test_the_rate_limit_is_never_exceeded_in_any_window(server: FakeProviderServer) -> None:
    clock = FakeClock()
    sent_at: list[float] = []
    with httpx.Client(
        timeout=2.0, event_hooks={"request": [lambda request: sent_at.append(clock())]}
    ) as client:
        http = PullHttp(
            client, PullStats(), rate_limit=(3, 10.0), allow_private=True, sleep=clock.sleep, clock=clock
        )
        for _ in range(10):
            http.get(customers_url(server), headers=auth())

    assert len(sent_at) == 10
    assert all(later - earlier >= 10.0 for earlier, later in zip(sent_at, sent_at[3:], strict=False))
    assert sent_at[-1] - sent_at[0] == 30.0  # and no slower than it must be


def test_retries_count_against_the_rate_limit(server: FakeProviderServer) -> None:
    server.fail_with(500, times=2)
    clock = FakeClock()
    sent_at: list[float] = []
    with httpx.Client(
        timeout=2.0, event_hooks={"request": [lambda request: sent_at.append(clock())]}
    ) as client:
        http = PullHttp(
            client, PullStats(), rate_limit=(2, 5.0), allow_private=True, sleep=clock.sleep, clock=clock
        )
        http.get(customers_url(server), headers=auth())

    assert len(sent_at) == 3
    assert sent_at[2] - sent_at[0] >= 5.0


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"rate_limit": {"allowed_requests": 10, "interval_seconds": 1}}, (10, 1.0)),
        ({"rate_limit": {"allowed_requests": 0, "interval_seconds": 1}}, None),
        ({"rate_limit": {"allowed_requests": 5, "interval_seconds": 0}}, None),
        ({}, None),
        ({"rate_limit": None}, None),
        ({"rate_limit": "fast"}, None),
        ({"rate_limit": {"allowed_requests": 3, "interval_seconds": 2.5}}, (3, 2.5)),
        # Stored before connection writes checked rate limits: ignored, so the pull still runs.
        ({"rate_limit": {"allowed_requests": 10, "interval_seconds": 0.5}}, None),
        ({"rate_limit": {"allowed_requests": 1, "interval_seconds": 1e300}}, None),
        ({"rate_limit": {"allowed_requests": 10, "interval_seconds": 1, "burst": 3}}, (10, 1.0)),
    ],
)
def test_rate_limit_from_settings(settings: dict[str, Any], expected: tuple[int, float] | None) -> None:
    assert rate_limit_from_settings(settings) == expected


@pytest.mark.parametrize("rate_limit", [(0, 1.0), (10, 0.5), (10, 0.0)])
def test_pull_http_takes_only_a_rate_limit_that_connection_writes_accept(
    client: httpx.Client, rate_limit: tuple[int, float]
) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        PullHttp(client, PullStats(), rate_limit=rate_limit)


# --- the private-address rule ---------------------------------------------------------------------


def test_a_private_address_is_refused_before_any_request(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    http, stats, _ = make_http(client, allow_private=False)

    failure = failure_of(http, customers_url(server).replace("http://", "https://"), headers=auth())

    assert (failure.error_type, failure.key) == ("bad_request", "private_address")
    assert (stats.requests, server.requests_served) == (0, 0)


def test_plain_http_is_refused_unless_private_urls_are_allowed(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    refusing, _, _ = make_http(client, allow_private=False)
    allowing, _, _ = make_http(client, allow_private=True)

    assert failure_of(refusing, customers_url(server), headers=auth()).key == "private_address"
    assert allowing.get_json(customers_url(server), headers=auth())[1].status_code == 200


def resolving(addresses: dict[str, list[str]], calls: list[str]) -> Any:
    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        queue = addresses[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


@pytest.mark.parametrize("address", ["10.0.0.7", "169.254.169.254", "::1", "::ffff:127.0.0.1", "fd00::1"])
def test_a_name_that_resolves_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, client: httpx.Client, address: str
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", resolving({"api.example.test": [address]}, []))
    http, stats, _ = make_http(client, allow_private=False)

    failure = failure_of(http, "https://api.example.test/v1/customers")

    assert (failure.error_type, failure.key) == ("bad_request", "private_address")
    assert stats.requests == 0


def test_resolution_is_checked_once_per_host_and_again_by_the_next_pull(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    # A rebinding name: public first, private afterwards.
    monkeypatch.setattr(
        socket, "getaddrinfo", resolving({"api.example.test": ["93.184.216.34", "127.0.0.1"]}, calls)
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    with httpx.Client(transport=transport) as client:
        first_pull, stats, _ = make_http(client, allow_private=False)
        first_pull.get_json("https://api.example.test/a")
        first_pull.get_json("https://api.example.test/b")
        next_pull, _, _ = make_http(client, allow_private=False)
        failure = failure_of(next_pull, "https://api.example.test/a")

    assert calls == ["api.example.test", "api.example.test"]
    assert stats.requests == 2
    assert failure.key == "private_address"


@pytest.mark.parametrize(
    "url", ["/v1/customers", "ftp://api.example.test/x", "https://api.example.test:99999/"]
)
def test_a_url_that_is_not_absolute_http_is_a_bad_request(client: httpx.Client, url: str) -> None:
    http, stats, _ = make_http(client)

    failure = failure_of(http, url)

    assert (failure.error_type, failure.key) == ("bad_request", "invalid_url")
    assert stats.requests == 0


# --- POST: a search that reads --------------------------------------------------------------------

HUBSPOT_TOKEN = "pat-na1-fakeprovider000000"
SEARCH = {
    "filterGroups": [],
    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
    "limit": 2,
}


def search_url(server: FakeProviderServer) -> str:
    return f"{server.base_url}/crm/v3/objects/contacts/search"


def test_a_post_sends_its_json_body_and_returns_the_answer(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.dataset("hubspot", "contacts").seed(3)
    http, stats, _ = make_http(client, request_id_header="X-HubSpot-Correlation-Id")

    body, response = http.post_json(search_url(server), body=SEARCH, headers=auth(HUBSPOT_TOKEN))

    assert response.status_code == 200
    assert (body["total"], len(body["results"]), body["paging"]["next"]["after"]) == (3, 2, "2")
    [request] = server.requests
    assert (request.method, request.body) == ("POST", SEARCH)
    assert request.headers["content-type"] == "application/json"
    assert (stats.requests, stats.retries) == (1, 0)


def test_a_post_is_retried_on_429_and_5xx_like_a_get(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    server.fail_with(429, times=1, retry_after=3)
    server.fail_with(502, times=1)
    http, stats, sleeps = make_http(client)

    body, _ = http.post_json(search_url(server), body=SEARCH, headers=auth(HUBSPOT_TOKEN))

    assert body["results"] == []
    assert sleeps[0] == 3.0
    assert (stats.requests, stats.retries) == (3, 2)
    assert [request.body for request in server.requests] == [SEARCH] * 3


def test_a_refused_post_is_bad_response_at_once_naming_the_method(
    server: FakeProviderServer, client: httpx.Client
) -> None:
    http, stats, _ = make_http(client, request_id_header="X-HubSpot-Correlation-Id")

    with pytest.raises(PullFailed) as caught:
        http.post_json(search_url(server), body={**SEARCH, "limit": 500}, headers=auth(HUBSPOT_TOKEN))

    assert (caught.value.error_type, caught.value.data["status_code"]) == ("bad_response", 400)
    assert caught.value.message.startswith(f"POST {search_url(server)} answered 400")
    assert caught.value.data["request_id"].startswith("fake-hubspot-")
    assert stats.requests == 1


def test_a_post_keeps_to_the_private_address_rule(server: FakeProviderServer, client: httpx.Client) -> None:
    http, stats, _ = make_http(client, allow_private=False)

    with pytest.raises(PullFailed) as caught:
        http.post_json(search_url(server), body=SEARCH, headers=auth(HUBSPOT_TOKEN))

    assert caught.value.key == "private_address"
    assert (stats.requests, server.requests_served) == (0, 0)


def test_a_redirected_post_is_not_followed() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(307, headers={"Location": "http://10.0.0.1/"})
    )
    with httpx.Client(transport=transport, follow_redirects=True) as client:
        http, stats, _ = make_http(client)
        with pytest.raises(PullFailed) as caught:
            http.post_json("https://api.example.test/search", body=SEARCH)

    assert (caught.value.error_type, caught.value.data["status_code"], stats.requests) == (
        "bad_response",
        307,
        1,
    )


def test_query_pairs_may_repeat_a_name(server: FakeProviderServer, client: httpx.Client) -> None:
    http, _, _ = make_http(client)

    http.get_json(
        f"{server.base_url}/v1/events",
        params=[("types[]", "customer.created"), ("types[]", "customer.deleted")],
        headers=auth(),
    )

    assert server.requests[0].query["types[]"] == ["customer.created", "customer.deleted"]
