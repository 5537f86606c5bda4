"""The provider interface: verify, normalize, list pages.

A provider is one module exposing a `PROVIDER` object that satisfies `Provider`. Adding one means adding
one module and its tests; `pullbridge.providers.get_provider` imports it lazily, so the webhook path only
ever loads the provider it serves.

Contract for implementers:
- `verify` works on the raw bytes and raises `SignatureInvalid` for every failure, malformed headers
  included; no `ValueError` or `binascii.Error` may escape. Comparisons use `hmac.compare_digest`.
  Timestamped schemes reject anything more than `TIMESTAMP_TOLERANCE_SECONDS` away from `now`, in both
  directions. Any one of `secrets` may match.
- `normalize` raises `MalformedPayload` for a body the provider could not have sent, and returns one
  `NormalizedEvent` per event (HubSpot batches return several). `delivery_id` is what redeliveries share.
- `list_pages` (full-scan pulls) yields pages from the provider's list API through the injected httpx
  client. Providers without a list API raise `NotImplementedError` and declare no `collections`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pullbridge.errors import MalformedPayload, PullFailed, SignatureInvalid

if TYPE_CHECKING:  # httpx stays off the webhook path's imports
    from pullbridge.pulls.http import PullHttp

TIMESTAMP_TOLERANCE_SECONDS = 300
ACTIONS = frozenset({"created", "updated", "deleted"})


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


@dataclass(frozen=True)
class ListedRecord:
    """One record of a list API page (or, from an incremental feed, one remote event)."""

    record_id: str
    data: Any
    created_at: float | None = None
    # Set only by incremental feeds, whose items are events already: their own type, action and time.
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


@dataclass(frozen=True)
class PullSource:
    """What a full scan needs to know about the connection it reads."""

    collection: str
    base_url: str
    credentials: Mapping[str, Any] = field(repr=False)
    settings: Mapping[str, Any]


class Provider(Protocol):
    name: ClassVar[str]
    collections: ClassVar[frozenset[str]]
    # True when webhooks carry the record in the list API's representation (Stripe, Shopify), so a
    # webhook can refresh the full-scan snapshot and the next scan does not repeat the change.
    webhook_matches_list_representation: ClassVar[bool]
    # The list API's largest page, and its host when the connection sets no api_base_url.
    max_page_size: ClassVar[int]
    default_base_url: ClassVar[str | None]

    def validate_secret(self, secret: str) -> None:
        """Raise `ValidationFailed` when a webhook secret cannot be used with this scheme."""

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The connection's `settings`, checked (and normalized) for this provider, or `ValidationFailed`."""
        ...

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None: ...

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]: ...

    def list_pages(self, http: PullHttp, source: PullSource, checkpoint: str | None) -> Iterator[ListPage]:
        """Pages of `source.collection` from `checkpoint` (None: the first page), through `http`, which
        retries, rate-limits, counts requests and raises `PullFailed`."""
        ...


def parse_json_body(body: bytes) -> Any:
    """The body as JSON, or `MalformedPayload`."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedPayload("the body is not valid JSON", key="malformed_json") from exc


def parse_iso_time(value: object) -> float | None:
    """Epoch seconds from an ISO-8601 time, or None. A time without a zone is UTC, never the machine's."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        return None


def action_from_type(event_type: str) -> str | None:
    """`customer.created` -> `created`; anything else -> None."""
    last = event_type.rsplit(".", 1)[-1]
    return last if last in ACTIONS else None


def hmac_keys(secrets: Sequence[str]) -> Iterator[bytes]:
    """The secrets as HMAC keys. An empty key would let anyone sign, so it never counts as a secret."""
    for secret in secrets:
        if secret:
            try:
                yield secret.encode()
            except UnicodeEncodeError:
                continue


def base64_sha256_digest(header: str, header_name: str) -> bytes:
    """A base64 SHA-256 digest from a signature header, or the one verification error."""
    try:
        digest = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid(f"{header_name} is not base64", key="malformed_signature") from exc
    if len(digest) != hashlib.sha256().digest_size:
        raise SignatureInvalid(f"{header_name} is not a SHA-256 digest", key="malformed_signature")
    return digest


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
