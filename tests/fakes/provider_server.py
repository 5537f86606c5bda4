"""Fake provider list APIs on a real HTTP server (127.0.0.1, a free port, a daemon thread).

One server serves every provider's list endpoints side by side, with item shapes built from the published
fixtures in `shared/fixtures` (see its SOURCES.md):

| provider | path | paging |
|---|---|---|
| stripe | `GET /v1/{collection}` | list object; `limit` (<= 100), `starting_after` |
| github | `GET /repos/{owner}/{repo}/{issues,pulls}` | `state`, `per_page` (<= 100); `Link` to `/repositories/{id}/...?page=N` |
| shopify | `GET /admin/api/{version}/{collection}.json` | `limit` (<= 250), `Link` with `page_info` |
| hubspot | `GET /crm/v3/objects/{collection}` | `limit` (<= 100), `after`; `paging.next.after` |
| generic REST (`items`) | `GET /api/items` | `limit`, `cursor`; `paging.next_cursor` and `Link` |
| generic feed (`events`) | `GET /events` | `limit`, `cursor`; `{data, next_cursor, has_more}` |

Upstream is mutable: `server.dataset(provider, collection)` is an in-memory collection with `add`,
`update`, `delete`, `seed`. Faults are switched on per test: `fail_with`, `stall`, `malformed_json`. Every
request is counted (`requests_served`, `requests_by_path`, `requests`). Requests without the right
credentials (`server.credentials(provider)`) get 401.

    with FakeProviderServer() as server:
        server.dataset("stripe", "customers").seed(250)
        source = server.pull_source("stripe", "customers")
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pullbridge.providers.base import PullSource
from tests.paths import FIXTURES_DIR as FIXTURES

BASE_TIME = 1_700_000_000
"""Seeded record n was created at BASE_TIME + 60 n."""

CREDENTIALS: dict[str, dict[str, str]] = {
    "stripe": {"api_key": "sk_test_fakeprovider000000"},
    "github": {"token": "ghp_fakeprovider000000"},
    "shopify": {"access_token": "shpat_fakeprovider000000"},
    "hubspot": {"access_token": "pat-na1-fakeprovider000000"},
    "generic": {"bearer_token": "generic-fakeprovider-000000"},
}
"""The credentials each fake provider accepts (generic also takes `X-Api-Key: <bearer_token>`)."""

GENERIC_API_KEY_HEADER = "X-Api-Key"

STRIPE_COLLECTIONS = {
    "customers": "customer",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "charges": "charge",
    "products": "product",
    "prices": "price",
    "payment_intents": "payment_intent",
}
SHOPIFY_FIXTURES = {
    "orders": ("orders.json", "orders"),
    "products": ("product.json", "product"),
    "customers": ("customer.json", "customer"),
}
HUBSPOT_PROPERTIES = {
    "contacts": lambda n: {"email": f"contact{n}@example.com", "firstname": f"Contact {n}"},
    "companies": lambda n: {"name": f"Company {n}", "domain": f"company{n}.example.com"},
    "deals": lambda n: {"dealname": f"Deal {n}", "amount": str(100 * n)},
}
GITHUB_COLLECTIONS = ("issues", "pulls")
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "stripe": tuple(STRIPE_COLLECTIONS),
    "github": GITHUB_COLLECTIONS,
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


def fixture_json(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def iso(epoch: float, offset: str = "Z") -> str:
    moment = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return moment + offset


def _encode_cursor(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, sort_keys=True).encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


class BadRequest(Exception):
    """A request the fake provider refuses with 400, as the real one would."""


# --- datasets -------------------------------------------------------------------------------------


class Dataset:
    """One upstream collection. Ids are compared as strings (`update(450789469)` and `update("450789469")`
    name the same record); records go out in the provider's list order."""

    def __init__(
        self,
        provider: str,
        collection: str,
        *,
        id_field: str,
        factory: Callable[[int], dict[str, Any]],
        sort_key: Callable[[dict[str, Any], int], Any],
        sequence: Iterator[int],
        lock: threading.RLock,
        touch: Callable[[dict[str, Any]], None] | None = None,
        claim: Callable[[Any], None] | None = None,
    ) -> None:
        self.provider = provider
        self.collection = collection
        self.id_field = id_field
        self._factory = factory
        self._sort_key = sort_key
        self._sequence = sequence
        self._lock = lock
        self._touch = touch
        self._claim = claim
        self._rows: dict[str, tuple[int, dict[str, Any]]] = {}

    def add(self, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store `record`. Without its id it is completed from the fixture template (new id, new created
        time); with one it is stored exactly as given. Returns a copy of what is stored."""
        with self._lock:
            seq = next(self._sequence)
            record = copy.deepcopy(record or {})
            if self.id_field not in record:
                record = {**self._factory(seq), **record}
            elif self._claim is not None:
                self._claim(record[self.id_field])
            key = str(record[self.id_field])
            if key in self._rows:
                raise ValueError(f"{self.provider} {self.collection} already has {key}")
            self._rows[key] = (seq, record)
            return copy.deepcopy(record)

    def seed(self, count: int) -> list[dict[str, Any]]:
        """`count` new records from the fixture template, with unique ids and increasing created times."""
        return [self.add() for _ in range(count)]

    def update(self, record_id: str | int, **changes: Any) -> dict[str, Any]:
        with self._lock:
            record = self._rows[str(record_id)][1]
            record.update(copy.deepcopy(changes))
            if self._touch is not None:
                self._touch(record)
            return copy.deepcopy(record)

    def delete(self, record_id: str | int) -> dict[str, Any]:
        with self._lock:
            return self._rows.pop(str(record_id))[1]

    def get(self, record_id: str | int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._rows[str(record_id)][1])

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def records(self) -> list[dict[str, Any]]:
        """Copies of the records in list order."""
        return [copy.deepcopy(record) for _, record in self._ordered()]

    def ids(self) -> list[str]:
        """The record ids (as strings) in list order."""
        return [str(record[self.id_field]) for _, record in self._ordered()]

    def __len__(self) -> int:
        return len(self._rows)

    def _ordered(self) -> list[tuple[int, dict[str, Any]]]:
        """(seq, record) in list order; the records are the live ones: copy before handing them out."""
        with self._lock:
            rows = list(self._rows.values())
        return sorted(rows, key=lambda row: self._sort_key(row[1], row[0]))


def _touch_field(name: str, *, iso_offset: str = "Z") -> Callable[[dict[str, Any]], None]:
    clock = itertools.count(BASE_TIME + 10**7)

    def touch(record: dict[str, Any]) -> None:
        if name in record:
            record[name] = iso(next(clock), iso_offset)

    return touch


# --- faults ---------------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str  # "status" | "stall" | "malformed"
    remaining: int | None  # None: every matching request
    on_page: int | None
    path: str | None
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0

    def matches(self, path: str, page: int) -> bool:
        return (
            (self.remaining is None or self.remaining > 0)
            and (self.on_page is None or self.on_page == page)
            and (self.path is None or path.startswith(self.path))
        )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str] = field(repr=False)


@dataclass
class Answer:
    status: int
    body: Any
    page: int = 1
    headers: dict[str, str] = field(default_factory=dict)


Endpoint = Callable[[dict[str, list[str]]], Answer]
"""An endpoint of a fake provider: the query string in, the answer out (`BadRequest` for a 400)."""
Route = tuple[str, Endpoint]
"""The provider serving a path, and its endpoint."""


# --- the server -----------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a stalled answer (the timeout tests) hangs up: expected, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeProviderServer:
    def __init__(
        self,
        *,
        github_repository: str = "octokit-fixture-org/paginate-issues",
        github_repository_id: int = 1000,
    ) -> None:
        self.github_repository = github_repository
        self.github_repository_id = github_repository_id
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._request_ids = itertools.count(1)
        self._httpd: _QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._datasets = self._make_datasets()

    # lifecycle

    def __enter__(self) -> FakeProviderServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
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
        return self._datasets[provider, collection]

    def credentials(self, provider: str) -> dict[str, str]:
        return dict(CREDENTIALS[provider])

    def settings(self, provider: str, collection: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Connection settings that pull this fake: GitHub's repository; for generic, the webhook scheme
        plus `items` as a REST collection (`collection="items"`, paged by cursor; add
        `next_cursor_path=None, cursor_param=None` to follow `Link`) or `events` as a feed."""
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
    ) -> None:
        """Answer `status` to the next `times` matching requests (None: all of them), with `Retry-After`
        when given (seconds or an HTTP-date). `on_page` is 1-based, counted from the listing's start;
        `path` is a path prefix, e.g. `/v1/customers`."""
        with self._lock:
            self._faults.append(
                Fault(
                    "status",
                    times,
                    on_page,
                    path,
                    status=status,
                    retry_after=None if retry_after is None else str(retry_after),
                )
            )

    def stall(
        self, seconds: float, *, times: int | None = 1, on_page: int | None = None, path: str | None = None
    ) -> None:
        """Hold matching responses back `seconds` (so the client times out), then answer normally."""
        with self._lock:
            self._faults.append(Fault("stall", times, on_page, path, seconds=seconds))

    def malformed_json(
        self, *, times: int | None = 1, on_page: int | None = None, path: str | None = None
    ) -> None:
        """Answer matching requests 200 with a truncated JSON body."""
        with self._lock:
            self._faults.append(Fault("malformed", times, on_page, path))

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

    def _make_datasets(self) -> dict[tuple[str, str], Dataset]:
        datasets: dict[tuple[str, str], Dataset] = {}

        def add(
            provider: str,
            collection: str,
            id_field: str,
            factory: Callable[[int], dict[str, Any]],
            sort_key: Callable[[dict[str, Any], int], Any],
            sequence: Iterator[int],
            touch: Callable[[dict[str, Any]], None] | None = None,
            claim: Callable[[Any], None] | None = None,
        ) -> None:
            datasets[provider, collection] = Dataset(
                provider,
                collection,
                id_field=id_field,
                factory=factory,
                sort_key=sort_key,
                sequence=sequence,
                lock=self._lock,
                touch=touch,
                claim=claim,
            )

        for collection, singular in STRIPE_COLLECTIONS.items():
            add(
                "stripe",
                collection,
                "id",
                _stripe_factory(fixture_json(f"stripe/objects/{singular}.json")),
                lambda record, seq: (-_number(record.get("created")), -seq),
                itertools.count(1),
            )
        # Issues and pull requests share one number space, as in a real repository.
        numbers = _SharedNumbers()
        issue_template = fixture_json("github/rest/paginate-issues.normalized-fixture.json")[0]["response"][0]
        pull_template = fixture_json("github/pull_request/opened.payload.json")["pull_request"]
        for collection, template in (("issues", issue_template), ("pulls", pull_template)):
            add(
                "github",
                collection,
                "number",
                _github_factory(template, self.github_repository, collection, numbers),
                lambda record, seq: -_number(record.get("number")),
                itertools.count(1),
                _touch_field("updated_at"),
                numbers.claim,
            )
        for collection, (name, key) in SHOPIFY_FIXTURES.items():
            add(
                "shopify",
                collection,
                "id",
                _shopify_factory(_first(fixture_json(f"shopify/rest/{name}")[key]), collection),
                lambda record, seq: _number(record.get("id")),
                itertools.count(1),
                _touch_field("updated_at", iso_offset="-05:00"),
            )
        hubspot_template = fixture_json("hubspot/crm/docs-api-reference.objects-list.example.json")[
            "results"
        ][0]
        for collection, properties in HUBSPOT_PROPERTIES.items():
            add(
                "hubspot",
                collection,
                "id",
                _hubspot_factory(hubspot_template, properties),
                lambda record, seq: _number(record.get("id")),
                itertools.count(1),
                _touch_field("updatedAt"),
            )
        add(
            "generic",
            "items",
            "id",
            _generic_item,
            lambda record, seq: seq,
            itertools.count(1),
            _touch_field("updated_at"),
        )
        add("generic", "events", "id", _generic_event, lambda record, seq: seq, itertools.count(1))
        self._numbers = numbers
        return datasets

    def _record(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, headers))

    def _take_fault(self, path: str, page: int) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, page):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

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

    # endpoints: each returns an Answer; BadRequest becomes a 400

    def route(self, path: str) -> Route | None:
        """The provider and the endpoint that serve `path`; None when no fake provider does."""
        parts = [part for part in path.split("/") if part]
        for router in (
            self._stripe_route,
            self._github_route,
            self._shopify_route,
            self._hubspot_route,
            self._generic_route,
        ):
            routed = router(parts)
            if routed is not None:
                return routed
        return None

    def _stripe_route(self, parts: list[str]) -> Route | None:
        if len(parts) == 2 and parts[0] == "v1" and parts[1] in STRIPE_COLLECTIONS:
            return "stripe", lambda query: self._stripe(parts[1], query)
        return None

    def _github_route(self, parts: list[str]) -> Route | None:
        """`/repos/{owner}/{repo}/{collection}`, and the `/repositories/{id}/...` form its `Link`s use."""
        if len(parts) == 4 and parts[0] == "repos" and parts[3] in GITHUB_COLLECTIONS:
            if parts[1:3] != self.github_repository.split("/"):
                return "github", lambda query: Answer(404, {"message": "Not Found"})
            return "github", lambda query: self._github(parts[3], query)
        repository_path = ["repositories", str(self.github_repository_id)]
        if len(parts) == 3 and parts[:2] == repository_path and parts[2] in GITHUB_COLLECTIONS:
            return "github", lambda query: self._github(parts[2], query)
        return None

    def _shopify_route(self, parts: list[str]) -> Route | None:
        if len(parts) != 4 or parts[:2] != ["admin", "api"] or not parts[3].endswith(".json"):
            return None
        collection = parts[3].removesuffix(".json")
        if collection not in SHOPIFY_FIXTURES:
            return None
        return "shopify", lambda query: self._shopify(parts[2], collection, query)

    def _hubspot_route(self, parts: list[str]) -> Route | None:
        if len(parts) == 4 and parts[:3] == ["crm", "v3", "objects"] and parts[3] in HUBSPOT_PROPERTIES:
            return "hubspot", lambda query: self._hubspot(parts[3], query)
        return None

    def _generic_route(self, parts: list[str]) -> Route | None:
        endpoints: dict[tuple[str, ...], Endpoint] = {
            ("api", "items"): self._generic_items,
            ("events",): self._generic_feed,
        }
        endpoint = endpoints.get(tuple(parts))
        return None if endpoint is None else ("generic", endpoint)

    def _stripe(self, collection: str, query: dict[str, list[str]]) -> Answer:
        limit = _int_param(query, "limit", default=10, maximum=100)
        records = self._datasets["stripe", collection]._ordered()
        start = 0
        after = _param(query, "starting_after")
        if after is not None:
            ids = [record["id"] for _, record in records]
            if after not in ids:
                return Answer(
                    400,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "param": "starting_after",
                            "message": f"No such object: '{after}'",
                        }
                    },
                )
            start = ids.index(after) + 1
        page = [copy.deepcopy(record) for _, record in records[start : start + limit]]
        body = {
            "object": "list",
            "url": f"/v1/{collection}",
            "has_more": start + limit < len(records),
            "data": page,
        }
        return Answer(200, body, page=start // limit + 1)

    def _github(self, collection: str, query: dict[str, list[str]]) -> Answer:
        per_page = min(_int_param(query, "per_page", default=30, maximum=None), 100)
        page_number = _int_param(query, "page", default=1, maximum=None)
        state = _param(query, "state") or "open"
        if state not in ("open", "closed", "all"):
            return Answer(422, {"message": "Validation Failed"})
        if collection == "issues":
            merged = [record for _, record in self._datasets["github", "issues"]._ordered()] + [
                _pull_as_issue(record, self.github_repository)
                for _, record in self._datasets["github", "pulls"]._ordered()
            ]
            merged.sort(key=lambda record: -_number(record.get("number")))
        else:
            merged = [record for _, record in self._datasets["github", "pulls"]._ordered()]
        listed = [record for record in merged if state == "all" or record.get("state") == state]
        start = (page_number - 1) * per_page
        page = [copy.deepcopy(record) for record in listed[start : start + per_page]]
        last = max(1, -(-len(listed) // per_page))
        link_base = f"{self.base_url}/repositories/{self.github_repository_id}/{collection}"

        def link(number: int) -> str:
            return f"{link_base}?{urlencode({'state': state, 'per_page': per_page, 'page': number})}"

        links = []
        if page_number > 1:
            links.append(f'<{link(page_number - 1)}>; rel="prev"')
        if page_number < last:
            links += [f'<{link(page_number + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page_number > 1:
            links.append(f'<{link(1)}>; rel="first"')
        headers = {"Link": ", ".join(links)} if links else {}
        return Answer(200, page, page=page_number, headers=headers)

    def _shopify(self, version: str, collection: str, query: dict[str, list[str]]) -> Answer:
        limit = _int_param(query, "limit", default=50, maximum=250)
        page_info = _param(query, "page_info")
        if page_info is not None:
            if set(query) - {"limit", "page_info"}:
                raise BadRequest("page_info cannot be combined with other filters")
            state = _decode_cursor(page_info)
            if state is None:
                raise BadRequest("Invalid value.")
            status, after, page_number = (
                state.get("status"),
                int(state.get("after", 0)),
                int(state.get("page", 1)),
            )
        else:
            status, after, page_number = _param(query, "status"), 0, 1
        records = [record for _, record in self._datasets["shopify", collection]._ordered()]
        if collection == "orders":
            status = status or "open"
            records = [record for record in records if _order_status_matches(record, status)]
        remaining = [record for record in records if _number(record.get("id")) > after]
        page = [copy.deepcopy(record) for record in remaining[:limit]]
        headers = {}
        if len(remaining) > limit:
            cursor = _encode_cursor({"status": status, "after": page[-1]["id"], "page": page_number + 1})
            next_url = f"{self.base_url}/admin/api/{version}/{collection}.json?" + urlencode(
                {"limit": limit, "page_info": cursor}
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Answer(200, {collection: page}, page=page_number, headers=headers)

    def _hubspot(self, collection: str, query: dict[str, list[str]]) -> Answer:
        limit = _int_param(query, "limit", default=10, maximum=100)
        after_param = _param(query, "after")
        if after_param is not None and not after_param.isdigit():
            raise BadRequest(f"Invalid after: {after_param}")
        after = int(after_param or 0)
        records = [record for _, record in self._datasets["hubspot", collection]._ordered()]
        before = sum(1 for record in records if _number(record.get("id")) <= after)
        remaining = [record for record in records if _number(record.get("id")) > after]
        page = [copy.deepcopy(record) for record in remaining[:limit]]
        body: dict[str, Any] = {"results": page}
        if len(remaining) > limit:
            next_after = str(page[-1]["id"])
            body["paging"] = {
                "next": {
                    "after": next_after,
                    "link": f"{self.base_url}/crm/v3/objects/{collection}?after={next_after}&limit={limit}",
                }
            }
        return Answer(200, body, page=before // limit + 1)

    def _generic_items(self, query: dict[str, list[str]]) -> Answer:
        limit = _int_param(query, "limit", default=100, maximum=1000)
        after = self._generic_position(_param(query, "cursor"))
        rows = self._datasets["generic", "items"]._ordered()
        before = sum(1 for seq, _ in rows if seq <= after)
        remaining = [(seq, record) for seq, record in rows if seq > after]
        page = remaining[:limit]
        next_cursor = _encode_cursor({"after": page[-1][0]}) if len(remaining) > limit else None
        headers = {}
        if next_cursor is not None:
            next_url = f"{self.base_url}/api/items?" + urlencode({"limit": limit, "cursor": next_cursor})
            headers["Link"] = f'<{next_url}>; rel="next"'
        body = {"data": [copy.deepcopy(record) for _, record in page], "paging": {"next_cursor": next_cursor}}
        return Answer(200, body, page=before // limit + 1, headers=headers)

    def _generic_feed(self, query: dict[str, list[str]]) -> Answer:
        limit = _int_param(query, "limit", default=100, maximum=1000)
        after = self._generic_position(_param(query, "cursor"))
        rows = self._datasets["generic", "events"]._ordered()
        before = sum(1 for seq, _ in rows if seq <= after)
        remaining = [(seq, record) for seq, record in rows if seq > after]
        page = remaining[:limit]
        # The cursor after the last event returned; with nothing new, the position that was asked for.
        next_cursor = _encode_cursor({"after": page[-1][0] if page else after})
        body = {
            "data": [copy.deepcopy(record) for _, record in page],
            "next_cursor": next_cursor,
            "has_more": len(remaining) > limit,
        }
        return Answer(200, body, page=before // limit + 1)

    @staticmethod
    def _generic_position(cursor: str | None) -> int:
        if cursor is None:
            return 0
        state = _decode_cursor(cursor)
        if state is None or not isinstance(state.get("after"), int):
            raise BadRequest("invalid cursor")
        return int(state["after"])


class _SharedNumbers:
    def __init__(self) -> None:
        self._next = 1

    def take(self) -> int:
        number, self._next = self._next, self._next + 1
        return number

    def claim(self, number: Any) -> None:
        """A record added with its own number: later ones are numbered after it."""
        self._next = max(self._next, _number(number) + 1)


# --- record factories -----------------------------------------------------------------------------


def _stripe_factory(template: dict[str, Any]) -> Callable[[int], dict[str, Any]]:
    prefix = str(template["id"]).split("_", 1)[0]

    def make(seq: int) -> dict[str, Any]:
        record = copy.deepcopy(template)
        record.update(id=f"{prefix}_fake{seq:010d}", created=BASE_TIME + 60 * seq, livemode=False)
        if template.get("object") == "customer":
            record["email"] = f"customer{seq}@example.com"
        return record

    return make


def _github_factory(
    template: dict[str, Any], repository: str, collection: str, numbers: _SharedNumbers
) -> Callable[[int], dict[str, Any]]:
    def make(seq: int) -> dict[str, Any]:
        number = numbers.take()
        created = iso(BASE_TIME + 60 * number)
        closed = number % 3 == 0
        kind = "issues" if collection == "issues" else "pull"
        record = copy.deepcopy(template)
        record.update(
            id=10_000 + number,
            number=number,
            title=f"Test {'issue' if collection == 'issues' else 'pull request'} {number}",
            state="closed" if closed else "open",
            created_at=created,
            updated_at=created,
            closed_at=created if closed else None,
            url=f"https://api.github.com/repos/{repository}/{'issues' if kind == 'issues' else 'pulls'}/{number}",
            html_url=f"https://github.com/{repository}/{kind}/{number}",
        )
        return record

    return make


def _pull_as_issue(pull: dict[str, Any], repository: str) -> dict[str, Any]:
    """A pull request as the issues list shows it: an issue with a `pull_request` key."""
    number = pull.get("number")
    api = f"https://api.github.com/repos/{repository}"
    return {
        "url": f"{api}/issues/{number}",
        "id": pull.get("id"),
        "number": number,
        "title": pull.get("title"),
        "user": pull.get("user"),
        "state": pull.get("state"),
        "created_at": pull.get("created_at"),
        "updated_at": pull.get("updated_at"),
        "closed_at": pull.get("closed_at"),
        "body": pull.get("body"),
        "pull_request": {
            "url": f"{api}/pulls/{number}",
            "html_url": f"https://github.com/{repository}/pull/{number}",
            "diff_url": f"https://github.com/{repository}/pull/{number}.diff",
            "patch_url": f"https://github.com/{repository}/pull/{number}.patch",
            "merged_at": pull.get("merged_at"),
        },
    }


def _shopify_factory(template: dict[str, Any], collection: str) -> Callable[[int], dict[str, Any]]:
    def make(seq: int) -> dict[str, Any]:
        created = iso(BASE_TIME + 60 * seq, "-05:00")
        record = copy.deepcopy(template)
        record.update(id=5_000_000_000 + seq, created_at=created, updated_at=created)
        if collection == "orders":
            closed = seq % 4 == 0
            record.update(
                name=f"#{1000 + seq}", order_number=1000 + seq, closed_at=created if closed else None
            )
        elif collection == "products":
            record.update(title=f"Product {seq}", handle=f"product-{seq}")
        else:
            record.update(email=f"customer{seq}@example.com")
        return record

    return make


def _order_status_matches(order: dict[str, Any], status: str) -> bool:
    if status == "any":
        return True
    if status == "cancelled":
        return order.get("cancelled_at") is not None
    closed = order.get("closed_at") is not None or order.get("cancelled_at") is not None
    return closed if status == "closed" else not closed


def _hubspot_factory(
    template: dict[str, Any], properties: Callable[[int], dict[str, str]]
) -> Callable[[int], dict[str, Any]]:
    # The docs example also shows keys that only some requests return; they hold placeholders only.
    kept = {
        key: value for key, value in template.items() if key in {"id", "properties", "createdAt", "updatedAt"}
    }

    def make(seq: int) -> dict[str, Any]:
        created = iso(BASE_TIME + 60 * seq).replace("Z", ".000Z")
        record = copy.deepcopy(kept)
        record.update(
            id=str(100_000 + seq),
            properties={**properties(seq), "hs_object_id": str(100_000 + seq)},
            createdAt=created,
            updatedAt=created,
            archived=False,
        )
        return record

    return make


def _generic_item(seq: int) -> dict[str, Any]:
    created = iso(BASE_TIME + 60 * seq)
    return {"id": f"item_{seq:06d}", "name": f"Item {seq}", "created_at": created, "updated_at": created}


def _generic_event(seq: int) -> dict[str, Any]:
    return {
        "id": f"evt_{seq:06d}",
        "type": "ticket.created",
        "created_at": iso(BASE_TIME + 60 * seq),
        "data": {"id": f"tkt_{seq:06d}", "subject": f"Ticket {seq}", "status": "open"},
    }


# --- HTTP -----------------------------------------------------------------------------------------


def _first(value: Any) -> Any:
    """The list fixture's first item (`orders.json` holds a list), or the single-record fixture."""
    return value[0] if isinstance(value, list) else value


def _param(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int_param(query: dict[str, list[str]], name: str, *, default: int, maximum: int | None) -> int:
    raw = _param(query, name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (maximum is not None and int(raw) > maximum):
        raise BadRequest(f"{name} must be an integer between 1 and {maximum}")
    return int(raw)


def _number(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProviderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake._record("GET", parts.path, query, headers)
        routed = fake.route(parts.path)
        if routed is None:
            self._send(404, {"error": "no such endpoint"}, {})
            return
        provider, endpoint = routed
        extra = {REQUEST_ID_HEADER[provider]: fake._request_id(provider)}
        if not fake._authorized(provider, headers):
            self._send(401, _unauthorized_body(provider), extra)
            return
        try:
            answer = endpoint(query)
        except BadRequest as exc:
            self._send(400, {"error": {"message": str(exc)}}, extra)
            return
        fault = fake._take_fault(parts.path, answer.page)
        if fault is not None and fault.kind == "status":
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            self._send(fault.status, {"error": {"message": f"injected {fault.status}"}}, extra)
            return
        if fault is not None and fault.kind == "stall":
            fake._stopping.wait(fault.seconds)
        if fault is not None and fault.kind == "malformed":
            self._send_raw(200, b'{"data": [{"id": "trunc', extra)
            return
        self._send(answer.status, answer.body, {**extra, **answer.headers})

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self._send_raw(status, json.dumps(body).encode(), headers)

    def _send_raw(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. it timed out on a stall)


def _unauthorized_body(provider: str) -> Any:
    if provider == "stripe":
        return {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
    if provider == "github":
        return {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
    if provider == "shopify":
        return {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    if provider == "hubspot":
        return {
            "status": "error",
            "message": "Authentication credentials not found.",
            "category": "INVALID_AUTHENTICATION",
        }
    return {"error": "unauthorized"}
