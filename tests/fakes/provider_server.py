"""Fake provider APIs on a real HTTP server (127.0.0.1, a free port, a daemon thread).

One server serves every provider's endpoints side by side, with item shapes built from the published
fixtures in `shared/fixtures` (see its SOURCES.md); each provider is a module of its own:

| provider | lists | writes (and reads by id) | module |
|---|---|---|---|
| stripe | `GET /v1/{collection}`, `GET /v1/events` | customers, products: `POST /v1/{c}[/{id}]` (form), `DELETE` | `fake_stripe`, `fake_stripe_writes` |
| github | `GET /repos/{owner}/{repo}/{issues,pulls}` (`Link` to `/repositories/{id}/...`) | issues: `POST`, `PATCH .../issues/{number}` | `fake_github` |
| shopify | `GET /admin/api/{version}/{collection}.json` (`updated_at_min`; `Link` with `page_info`) | products, customers: `POST`, `PUT`, `DELETE .../{id}.json` | `fake_shopify` |
| hubspot | `GET /crm/v3/objects/{collection}`, `POST .../{collection}/search` | `POST`, `PATCH`, `DELETE /crm/v3/objects/{c}[/{id}]` | `fake_hubspot` |
| generic | `GET /api/items` (REST, `updated_since`), `GET /events` (a feed) | items: `POST /api/items`, `PATCH`, `DELETE /api/items/{id}` | `fake_generic` |

Upstream is mutable: `server.dataset(provider, collection)` is an in-memory collection (`datasets.Dataset`)
with `seed` (history), and `add`, `update`, `delete` (changes made now by the server's `clock`, or at
`changed_at`, stamped into the records' update times and, for Stripe, logged as events). A write through
a fake's API changes its dataset the same way, so a later list sees it; it validates and refuses as the
real API does, with the real error bodies (`fake_errors`).

Faults are switched on per test: `fail_with`, `stall`, `malformed_json`, `reject_parameter`. `method=`
narrows one to an HTTP method, or to `WRITES`. A refusal (`fail_with`) reaches a write before it is made,
so nothing changes, unless `applied=True` (the write is made, then the status answers: a 5xx after the
provider applied it); a `stall` holds a write's answer back after the write is made (the client times out
while the change exists upstream), unless `applied=False`. Every request is recorded (`requests`, with its
headers, JSON body, form pairs and raw bytes) and counted (`requests_served`, `requests_by_path`).
Requests without the right credentials (`server.credentials(provider)`) get 401.

    with FakeProviderServer() as server:
        server.dataset("stripe", "customers").seed(250)
        source = server.pull_source("stripe", "customers")
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from pullbridge.providers.base import PullSource
from tests.fakes.datasets import Dataset
from tests.fakes.fake_generic import UPDATED_SINCE_PARAM, FakeGeneric
from tests.fakes.fake_github import FakeGitHub
from tests.fakes.fake_http import BASE_TIME, FakeRequest, Route, fixture_json, iso
from tests.fakes.fake_hubspot import HUBSPOT_PROPERTIES, FakeHubSpot
from tests.fakes.fake_server_http import FakeHandler, QuietServer
from tests.fakes.fake_shopify import SHOPIFY_FIXTURES, FakeShopify
from tests.fakes.fake_stripe import STRIPE_COLLECTIONS, FakeStripe
from tests.fakes.fake_stripe import stripe_factory as _stripe_factory

__all__ = [
    "BASE_TIME",
    "COLLECTIONS",
    "CREDENTIALS",
    "GENERIC_MUTATIONS",
    "REQUEST_ID_HEADER",
    "REQUEST_ID_PREFIX",
    "WRITES",
    "Dataset",
    "FakeProviderServer",
    "RecordedRequest",
    "_stripe_factory",
    "fixture_json",
    "iso",
]

CREDENTIALS: dict[str, dict[str, str]] = {
    "stripe": {"api_key": "sk_test_fakeprovider000000"},
    "github": {"token": "ghp_fakeprovider000000"},
    "shopify": {"access_token": "shpat_fakeprovider000000"},
    "hubspot": {"access_token": "pat-na1-fakeprovider000000"},
    "generic": {"bearer_token": "generic-fakeprovider-000000"},
}
"""The credentials each fake provider accepts (generic also takes `X-Api-Key: <bearer_token>`)."""

GENERIC_API_KEY_HEADER = "X-Api-Key"

COLLECTIONS: dict[str, tuple[str, ...]] = {
    "stripe": tuple(STRIPE_COLLECTIONS),
    "github": ("issues", "pulls"),
    "shopify": tuple(SHOPIFY_FIXTURES),
    "hubspot": tuple(HUBSPOT_PROPERTIES),
    "generic": ("items", "events"),
}
REQUEST_ID_HEADER = {
    "stripe": "Request-Id",
    "github": "X-GitHub-Request-Id",
    "shopify": "X-Request-Id",
    "hubspot": "X-HubSpot-Correlation-Id",
    "generic": "X-Request-Id",
}
REQUEST_ID_PREFIX = {
    "stripe": "req_fake",
    "github": "FAKE:",
    "shopify": "fake-shopify-",
    "hubspot": "fake-hubspot-",
    "generic": "fake-generic-",
}
"""How each fake provider's request ids begin (Stripe's and GitHub's are shaped like the real ones)."""
GENERIC_WEBHOOK_SETTINGS = {"signature_header": "X-Signature", "delivery_id_header": "X-Delivery-Id"}
GENERIC_MUTATIONS: dict[str, Any] = {
    "items": {
        "create": {"method": "POST", "path": "/api/items"},
        "update": {"method": "PATCH", "path": "/api/items/{record_id}"},
        "delete": {"method": "DELETE", "path": "/api/items/{record_id}"},
        "read": {"path": "/api/items/{record_id}"},
        "answer_path": "data",
    }
}
"""`settings.mutations` that write the fake generic API's items (`settings("generic", mutations=...)`)."""


class FakeProvider(Protocol):
    """One fake provider: its collections, and the endpoints it serves."""

    datasets: dict[str, Dataset]

    def route(self, method: str, parts: list[str]) -> Route | None: ...


# --- faults ---------------------------------------------------------------------------------------


WRITES = "write"
"""`method=WRITES` in `fail_with` and `stall`: any request to an endpoint that writes (a create, an update,
a delete), whatever its method; a search that reads with a POST is no write."""


@dataclass
class Fault:
    kind: str  # "status" | "stall" | "malformed" | "parameter"
    remaining: int | None  # None: every matching request
    on_page: int | None
    path: str | None
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    parameter: str | None = None
    method: str | None = None  # an HTTP method, WRITES, or None: any request
    applied: bool = False  # on a write: whether the write is made before the fault answers
    body: Any = None  # the error body; None: the provider's own for the status

    def matches(self, path: str, page: int, method: str = "GET", *, write: bool = False) -> bool:
        return (
            (self.remaining is None or self.remaining > 0)
            and (self.on_page is None or self.on_page == page)
            and (self.path is None or path.startswith(self.path))
            and (self.method is None or self.method == method or (self.method == WRITES and write))
        )


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it: `headers` with lower-case names (`idempotency-key`,
    `content-type`, ...), `body` the parsed JSON (None when there is none, or it is form-encoded), `form`
    the form-encoded pairs in order (None when the body is not form-encoded), `raw_body` the bytes."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str] = field(repr=False)
    body: Any = None
    raw_body: bytes = field(default=b"", repr=False)
    form: list[tuple[str, str]] | None = None

    @property
    def form_dict(self) -> dict[str, str]:
        """The form pairs as a dict (the last value of a repeated name)."""
        return dict(self.form or [])


# --- the server -----------------------------------------------------------------------------------


class FakeProviderServer:
    def __init__(
        self,
        *,
        github_repository: str = "octokit-fixture-org/paginate-issues",
        github_repository_id: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` dates the changes tests make (`add`, `update`, `delete`): a test may run it fast."""
        self.github_repository = github_repository
        self.github_repository_id = github_repository_id
        self.clock = clock
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._request_ids = itertools.count(1)
        self._httpd: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self.stripe = FakeStripe(self._lock, self._now)
        self.github = FakeGitHub(
            self._lock, self._now, lambda: self.base_url, github_repository, github_repository_id
        )
        self.shopify = FakeShopify(self._lock, self._now, lambda: self.base_url)
        self.hubspot = FakeHubSpot(self._lock, self._now, lambda: self.base_url)
        self.generic = FakeGeneric(self._lock, self._now, lambda: self.base_url)
        self._providers: dict[str, FakeProvider] = {
            "stripe": self.stripe,
            "github": self.github,
            "shopify": self.shopify,
            "hubspot": self.hubspot,
            "generic": self.generic,
        }

    def _now(self) -> float:
        return self.clock()

    # lifecycle

    def __enter__(self) -> FakeProviderServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("Handler", (FakeHandler,), {"fake": self})
        self._httpd = QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-providers",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: every provider's API base (pulls need allow_private)."""
        if self._httpd is None:
            raise RuntimeError("the fake provider server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # upstream data

    def dataset(self, provider: str, collection: str) -> Dataset:
        return self._providers[provider].datasets[collection]

    def credentials(self, provider: str) -> dict[str, str]:
        return dict(CREDENTIALS[provider])

    def settings(self, provider: str, collection: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Connection settings that pull this fake: GitHub's repository; for generic, the webhook scheme
        plus `items` as a REST collection (`collection="items"`, paged by cursor, with `updated_since` for
        incremental pulls; add `next_cursor_path=None, cursor_param=None` to follow `Link`) or `events` as
        a feed."""
        settings: dict[str, Any] = {}
        if provider == "github":
            settings["repository"] = self.github_repository
        if provider == "generic":
            settings.update(GENERIC_WEBHOOK_SETTINGS)
            if collection == "events":
                settings.update(mode="feed", feed_path="/events", feed_occurred_at_path="created_at")
            else:
                settings.update(
                    mode="rest",
                    list_path="/api/items",
                    items_path="data",
                    id_path="id",
                    next_cursor_path="paging.next_cursor",
                    cursor_param="cursor",
                    created_at_path="created_at",
                    updated_since_param=UPDATED_SINCE_PARAM,
                )
        settings.update(overrides)
        return {key: value for key, value in settings.items() if value is not None}

    def pull_source(self, provider: str, collection: str, **settings: Any) -> PullSource:
        return PullSource(
            collection=collection,
            base_url=self.base_url,
            credentials=self.credentials(provider),
            settings=self.settings(provider, collection, **settings),
        )

    # faults

    def fail_with(
        self,
        status: int,
        *,
        times: int | None = 1,
        on_page: int | None = None,
        retry_after: float | str | None = None,
        path: str | None = None,
        method: str | None = None,
        applied: bool = False,
        body: Any = None,
    ) -> None:
        """Answer `status` to the next `times` matching requests (None: all of them), with `Retry-After`
        when given (seconds or an HTTP-date), and the provider's own error body for the status (or `body`).
        `on_page` is 1-based, counted from the listing's start; `path` is a path prefix, e.g.
        `/v1/customers`; `method` an HTTP method, or `WRITES` for any write.

        A write that meets the fault is not made, as a provider that refuses it does not make it; with
        `applied=True` it is made first (a 5xx from a provider that applied the write)."""
        with self._lock:
            retry = None if retry_after is None else str(retry_after)
            self._faults.append(
                Fault(
                    "status",
                    times,
                    on_page,
                    path,
                    status=status,
                    retry_after=retry,
                    method=method,
                    applied=applied,
                    body=body,
                )
            )

    def stall(
        self,
        seconds: float,
        *,
        times: int | None = 1,
        on_page: int | None = None,
        path: str | None = None,
        method: str | None = None,
        applied: bool = True,
    ) -> None:
        """Hold matching responses back `seconds` (so the client times out), then answer normally. A write
        is made first, then its answer stalls: the client times out while the change exists upstream.
        With `applied=False` the write is dropped instead (after the wait, a 504 and no change)."""
        with self._lock:
            self._faults.append(
                Fault("stall", times, on_page, path, seconds=seconds, method=method, applied=applied)
            )

    def malformed_json(
        self, *, times: int | None = 1, on_page: int | None = None, path: str | None = None
    ) -> None:
        """Answer matching requests 200 with a truncated JSON body."""
        with self._lock:
            self._faults.append(Fault("malformed", times, on_page, path))

    def reject_parameter(self, name: str, *, status: int = 400, path: str | None = None) -> None:
        """Answer `status` to every request that carries the query parameter (or JSON body key) `name`, as
        an API that does not take it does: e.g. a store whose API version refuses `updated_at_min`."""
        with self._lock:
            self._faults.append(Fault("parameter", None, None, path, status=status, parameter=name))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # counters

    @property
    def requests_served(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def requests_by_path(self) -> Counter[str]:
        with self._lock:
            return Counter(request.path for request in self._requests)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset_counters(self) -> None:
        with self._lock:
            self._requests.clear()

    # internals

    def route(self, method: str, path: str) -> Route | None:
        """The provider and the endpoint that serve `method path`; None when no fake provider does."""
        parts = [unquote(part) for part in path.split("/") if part]
        for provider in self._providers.values():
            routed = provider.route(method, parts)
            if routed is not None:
                return routed
        return None

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
        raw_body: bytes = b"",
        form: list[tuple[str, str]] | None = None,
    ) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, headers, body, raw_body, form))

    def _refused_parameter(self, path: str, request: FakeRequest) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == "parameter" and fault.matches(path, 1):
                    body_keys = request.body.keys() if isinstance(request.body, dict) else ()
                    if fault.parameter in request.query or fault.parameter in body_keys:
                        return fault
        return None

    def _take_fault(self, path: str, page: int, method: str = "GET", *, write: bool = False) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind != "parameter" and fault.matches(path, page, method, write=write):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _request_id_header(self, provider: str) -> dict[str, str]:
        return {REQUEST_ID_HEADER[provider]: self._request_id(provider)}

    def _request_id(self, provider: str) -> str:
        number = next(self._request_ids)
        if provider == "stripe":
            return f"{REQUEST_ID_PREFIX[provider]}{number:010d}"
        if provider == "github":
            return f"{REQUEST_ID_PREFIX[provider]}{number:05X}:{number:07X}:{number:07X}:00000000"
        return f"{REQUEST_ID_PREFIX[provider]}{number:08d}"

    def _authorized(self, provider: str, headers: dict[str, str]) -> bool:
        expected = CREDENTIALS[provider]
        if provider == "shopify":
            return headers.get("x-shopify-access-token") == expected["access_token"]
        secret = next(iter(expected.values()))
        if provider == "generic" and headers.get(GENERIC_API_KEY_HEADER.lower()) == secret:
            return True
        return headers.get("authorization") == f"Bearer {secret}"
