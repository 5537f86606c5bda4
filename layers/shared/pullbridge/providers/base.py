"""The provider interface: verify, normalize, list pages.

A provider is one module (or package) named after it, exposing a `PROVIDER` object that satisfies
`Provider`; `pullbridge.providers.get_provider` imports it lazily, so the webhook path only ever loads the
provider it serves. A provider imports nothing from `pullbridge.pulls`: what it needs of the pull's HTTP
client is `ProviderHttp`, and the HMAC pieces it shares with the others are in `providers.signing`.

Contract for implementers:
- `verify` works on the raw bytes and raises `SignatureInvalid` for every failure, malformed headers
  included; no `ValueError` or `binascii.Error` may escape. Comparisons use `hmac.compare_digest`.
  Timestamped schemes reject anything more than `TIMESTAMP_TOLERANCE_SECONDS` away from `now`, in both
  directions. Any one of `secrets` may match.
- `normalize` raises `MalformedPayload` for a body the provider could not have sent, and returns one
  `NormalizedEvent` per event (HubSpot batches return several). `delivery_id` is what redeliveries share.
- `list_pages` (full-scan pulls) yields pages from the provider's list API through `ProviderHttp`.
  Providers without a list API raise `NotImplementedError` and declare no `collections`.
- `updated_pages` (incremental pulls) yields pages of the records changed since a time, and the deletes
  the provider itself reports (`ListedRecord.action == "deleted"`); `supports_updates` says whether a
  connection with these settings can be asked for them, and `updates_lookback_seconds` how far back the
  provider keeps what it answers from (None: no limit).
- `pullable_collections` says which collections a connection may subscribe to; `request_id_header` names
  the response header a pull error quotes as `data.request_id`.
- Mutations: `writable_collections` says which kinds (`create`, `update`, `delete`) each collection takes
  for a connection with these settings; `write` makes one write through `ProviderHttp.send` with the
  provider's real request shape and returns the object after it as `list_pages` lists it (so the snapshot
  hash matches and the next scan emits nothing); `read_record` reads one record back (None when the
  provider answers 404), which a retry of a mutation whose outcome is unknown uses before writing again;
  `error_message` picks the human message out of the provider's error body.
- `validate_settings` checks every key of a connection's `settings` and refuses unknown ones; most
  providers declare one `SettingRule` per key and call `check_settings`. Every provider takes
  `rate_limit` (`check_rate_limit`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeGuard, TypeVar

from pullbridge.errors import MalformedPayload, PullFailed, SignatureInvalid, ValidationFailed

TIMESTAMP_TOLERANCE_SECONDS = 300
ACTIONS = frozenset({"created", "updated", "deleted"})

RATE_LIMIT_KEYS = ("allowed_requests", "interval_seconds")
MAX_RATE_LIMIT_REQUESTS = 100_000
MAX_RATE_LIMIT_INTERVAL_SECONDS = 3_600
"""An hour, the longest window a provider counts in. A pull waits up to this long for its next request;
much longer waits would outlive the invocation (and overflow `time.sleep`)."""

SettingRule = Callable[[str, Any], Any]
"""Checks one value of `settings`: given its field name (`settings.<key>`) and a value that is not null,
returns what to store, or raises `ValidationFailed` naming the field (see `invalid_setting`)."""


@dataclass(frozen=True)
class WebhookRequest:
    """A delivery exactly as it arrived. `headers` keys are lower-case."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def require_header(self, name: str) -> str:
        value = self.header(name)
        if not value:
            raise SignatureInvalid(f"missing {name} header", key="missing_signature")
        return value


@dataclass(frozen=True)
class NormalizedEvent:
    """One event as the provider described it, before the log gives it an id and a position."""

    delivery_id: str
    type: str
    data: Any
    collection: str | None = None
    action: str | None = None
    record_id: str | None = None
    occurred_at: float | None = None
    version: float | None = None
    """The provider's own order of the record's states (its `updated_at`, Stripe's event `created`), as
    epoch seconds: a delivery older than the record held is stale. None where the provider gives none."""


@dataclass(frozen=True)
class ListedRecord:
    """One record of a list API page (or, from an incremental feed, one remote event)."""

    record_id: str
    data: Any
    created_at: float | None = None
    # Set by incremental feeds, whose items are events already: their own type, action and time. In the
    # pages of `updated_pages`, `action` is "deleted" only for a delete the provider reports.
    type: str | None = None
    action: str | None = None
    occurred_at: float | None = None


@dataclass(frozen=True)
class ListPage:
    records: list[ListedRecord]
    next_checkpoint: str | None
    """Where the next page starts (opaque to the engine); None when this was the last page."""
    incremental: bool = False
    """True for an events feed: its records are emitted as they are, and the last checkpoint is kept
    for the next pull, instead of diffing a full scan against the snapshot."""


MUTATION_KINDS = ("create", "update", "delete")


@dataclass(frozen=True)
class WriteRequest:
    """One mutation as the provider makes it: `record_id` for update and delete, `data` for create and
    update (already checked to be an object). `idempotency_key` is passed on where the provider takes one."""

    collection: str
    kind: str
    record_id: str | None = None
    data: Mapping[str, Any] | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class WrittenRecord:
    """The provider's object after a write, as its list API shows it. For a delete, `data` is what the
    provider answered (or the record as last read) and `deleted` is True."""

    record_id: str
    data: Any
    deleted: bool = False
    version: float | None = None
    """As `NormalizedEvent.version`: the object's own order of states, where the provider gives one."""


@dataclass(frozen=True)
class PullSource:
    """What a full scan needs to know about the connection it reads."""

    collection: str
    base_url: str
    credentials: Mapping[str, Any] = field(repr=False)
    settings: Mapping[str, Any]


ResponseT = TypeVar("ResponseT")
QueryParams = Mapping[str, str] | Sequence[tuple[str, str]]


class ProviderHttp(Protocol[ResponseT]):
    """What a provider needs from the pull's HTTP client (`pullbridge.pulls.http.PullHttp` is one): the
    JSON of a GET (or of a search's POST), and the next page's URL from a response's `Link` header, kept on
    the API's host. The
    client retries, rate-limits, counts requests and raises `PullFailed`. A response is opaque to the
    provider: it only hands it back to `next_link`."""

    def get_json(
        self, url: str, *, params: QueryParams | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, ResponseT]:
        """The JSON body of the 2xx answer to `GET url`, and the response itself. `params` is a mapping, or
        pairs where a name repeats (`types[]=a&types[]=b`)."""
        ...

    def next_link(self, response: ResponseT, *, same_origin_as: str) -> str | None:
        """The `Link: <...>; rel="next"` URL, None when there is none; `PullFailed` off the host."""
        ...

    def post_json(
        self, url: str, *, body: Any, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, ResponseT]:
        """The JSON body of the 2xx answer to `POST url` with a JSON `body`: a search that only reads."""
        ...

    def require_same_origin(self, url: str, reference: str) -> None:
        """`PullFailed` unless `url` (e.g. a checkpoint that is a URL) is on `reference`'s host."""
        ...

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: Sequence[tuple[str, str]] | None = None,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, ResponseT]:
        """A write, sent once and never retried (the provider may have applied it): a JSON `json_body` or
        a form-encoded `form` (pairs, so `metadata[a]=b` keeps its order). The JSON body of the 2xx answer
        (None when it is empty, as a 204's), and the response. Failures are `ProviderCallFailed`:
        `ProviderRefused` for a 4xx, `ProviderRateLimited` for a 429, `ProviderUnavailable` for a 5xx or an
        unreachable host, `ProviderTimeout` for no answer in time."""
        ...


class Provider(Protocol):
    name: ClassVar[str]
    collections: ClassVar[frozenset[str]]
    """The collections the provider can list; empty when it has none, or when each connection names its
    own (generic)."""
    # True when webhooks carry the record in the list API's representation (Stripe, Shopify), so a
    # webhook can refresh the full-scan snapshot and the next scan does not repeat the change.
    webhook_matches_list_representation: ClassVar[bool]
    # True when a webhook about a record carries the whole record (Stripe, Shopify, GitHub issues and
    # pull requests): it keeps the record's latest state (`GET /records`).
    webhook_carries_records: ClassVar[bool]
    # The list API's largest page, and its host when the connection sets no api_base_url.
    max_page_size: ClassVar[int]
    default_base_url: ClassVar[str | None]
    request_id_header: ClassVar[str | None]
    """Where the list API's responses carry the id its support asks for; None when it has no list API."""
    updates_lookback_seconds: ClassVar[float | None]
    """How far back `updated_pages` can look (Stripe keeps events 30 days); None: as far as needed."""
    write_idempotency_keys: ClassVar[bool]
    """True when the provider replays a write sent again with its idempotency key (Stripe, for 24 h): a
    create whose outcome is unknown can then be sent again safely. Elsewhere it could make a second object."""

    def validate_secret(self, secret: str) -> None:
        """Raise `ValidationFailed` when a webhook secret cannot be used with this scheme."""

    def record_version(self, data: Any) -> float | None:
        """A listed record's version (see `NormalizedEvent.version`), or None."""
        ...

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The connection's `settings`, checked (and normalized) for this provider, or `ValidationFailed`."""
        ...

    def pullable_collections(self, settings: Mapping[str, Any]) -> frozenset[str] | None:
        """The collections a connection with these (validated) `settings` may subscribe to; None when it
        may name any."""
        ...

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None: ...

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]: ...

    def list_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """Pages of `source.collection` from `checkpoint` (None: the first page), through `http`."""
        ...

    def supports_updates(self, settings: Mapping[str, Any]) -> bool:
        """Whether a connection with these (validated) settings can be pulled incrementally."""
        ...

    def updated_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """Pages of the records of `source.collection` changed at or after `since` (epoch seconds), and
        the deletes the provider reports, from `checkpoint` (None: the first page). A record may come more
        than once; the first time is its latest state."""
        ...

    def writable_collections(self, settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
        """The collections a connection with these (validated) settings can write, each with its kinds."""
        ...

    def write(
        self, http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest
    ) -> WrittenRecord:
        """Make `request` upstream (`source.collection` is `request.collection`) through `http.send`."""
        ...

    def read_record(self, http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
        """One record of `source.collection` as the list API shows it; None when the provider answers
        404 (or shows it deleted)."""
        ...

    def error_message(self, body: Any) -> str | None:
        """The provider's own message in an error body (`{"error": {"message": ...}}` for Stripe), or None."""
        ...


def _finite_number(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        # 1e999 is valid JSON, but no JSON writer can give it back: refuse it rather than store Infinity.
        raise ValueError(f"{text[:40]} is out of range")
    return number


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_body(body: bytes) -> Any:
    """The body as JSON (RFC 8259: no NaN or Infinity, numbers a double can hold), or `MalformedPayload`."""
    try:
        return json.loads(body, parse_float=_finite_number, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedPayload(f"the body is not valid JSON: {exc}"[:300], key="malformed_json") from exc


def format_iso_time(seconds: float) -> str:
    """Epoch seconds as ISO-8601 UTC to the second, `2024-06-20T12:00:00Z`, the form list APIs take in a
    query (rounded down: a lower bound only grows)."""
    return datetime.fromtimestamp(math.floor(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_time(value: object) -> float | None:
    """Epoch seconds from an ISO-8601 time, or None. A time without a zone is UTC, never the machine's."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        return None


def epoch_seconds(value: object) -> float | None:
    """A number of seconds since the epoch as a float, or None (booleans, other types, out of range)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def action_from_type(event_type: str) -> str | None:
    """`customer.created` -> `created`; anything else -> None."""
    last = event_type.rsplit(".", 1)[-1]
    return last if last in ACTIONS else None


def payload_header(request: WebhookRequest, name: str, provider_label: str) -> str:
    """A header `normalize` needs after the signature held: its absence is a malformed delivery (400)."""
    value = request.header(name)
    if not value:
        raise MalformedPayload(f"a {provider_label} delivery carries a {name} header", key="missing_header")
    return value


def credential(source: PullSource, name: str) -> str:
    """A pull credential, checked before it goes into a header."""
    value = source.credentials.get(name)
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
        raise PullFailed(
            "bad_request",
            f"the connection's credentials need a printable ASCII {name!r}",
            key="missing_credentials",
            data={"field": f"credentials.{name}"},
        )
    return value


def invalid_setting(field: str, message: str) -> ValidationFailed:
    """The 400 for one wrong `settings` field; `field` is its full name, e.g. `settings.rate_limit`."""
    return ValidationFailed(f"{field}: {message}", key="invalid_settings", data={"field": field})


def check_settings(
    provider: str, settings: Mapping[str, Any], rules: Mapping[str, SettingRule]
) -> dict[str, Any]:
    """The settings as stored: each key checked by its rule, and null read as unset (left out). A key with
    no rule is refused, so a typo such as `rate_limt` is heard instead of silently ignored."""
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        field = setting_field(key)
        rule = rules.get(key)
        if rule is None:
            raise invalid_setting(
                field, f"{provider} has no such setting; its settings are {', '.join(sorted(rules))}"
            )
        if value is not None:
            checked[key] = rule(field, value)
    return checked


def check_rate_limit(field: str, value: object) -> dict[str, int | float]:
    """`settings.rate_limit`: exactly `{"allowed_requests": n, "interval_seconds": s}`, an integer n from 1
    and a number of seconds s from 1, each up to its maximum."""
    if not isinstance(value, Mapping):
        raise invalid_setting(field, 'must be an object {"allowed_requests": n, "interval_seconds": s}')
    for key in value:
        if key not in RATE_LIMIT_KEYS:
            raise invalid_setting(f"{field}.{_cut_short(key)}", "is not a rate_limit key")
    allowed, interval = value.get("allowed_requests"), value.get("interval_seconds")
    if not _is_integer(allowed) or not 1 <= allowed <= MAX_RATE_LIMIT_REQUESTS:
        raise invalid_setting(
            f"{field}.allowed_requests", f"must be an integer from 1 to {MAX_RATE_LIMIT_REQUESTS}"
        )
    if not _is_number(interval) or not 1 <= interval <= MAX_RATE_LIMIT_INTERVAL_SECONDS:
        raise invalid_setting(
            f"{field}.interval_seconds",
            f"must be a number of seconds from 1 to {MAX_RATE_LIMIT_INTERVAL_SECONDS}",
        )
    return {"allowed_requests": allowed, "interval_seconds": interval}


def check_boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid_setting(field, "must be true or false")
    return value


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    # NaN fails every comparison, so the range check refuses it; infinity is above every maximum.
    return _is_integer(value) or (isinstance(value, float) and not math.isnan(value))


def setting_field(key: str) -> str:
    """The field name of a `settings` key, as errors name it: `settings.<key>`."""
    return f"settings.{_cut_short(key)}"


def _cut_short(key: object, limit: int = 64) -> str:
    # A key is the caller's text, of any length: an error names it, but briefly.
    text = str(key)
    return text if len(text) <= limit else text[:limit] + "…"
