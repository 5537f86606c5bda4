"""A generic signed source: an HMAC scheme configured per connection in `settings` (`settings.py`), checked
and read by `webhook.py`, and optionally pulls from a REST collection or an events feed (`pulls.py`) and
writes (`writes.py`), configured there too."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pullbridge.providers.base import (
    ListPage,
    NormalizedEvent,
    ProviderHttp,
    PullSource,
    ResponseT,
    WebhookRequest,
    WriteRequest,
    WrittenRecord,
)
from pullbridge.providers.generic import pulls, webhook, writes
from pullbridge.providers.generic.settings import validate_settings
from pullbridge.providers.signing import check_secret

__all__ = ["PROVIDER", "Generic"]


class Generic:
    name: ClassVar[str] = "generic"
    # The collection is per connection (`settings.collection`); there is no fixed list to declare.
    collections: ClassVar[frozenset[str]] = frozenset()
    webhook_matches_list_representation: ClassVar[bool] = False
    webhook_carries_records: ClassVar[bool] = False
    # The configured `page_size` governs each connection; this is the default the engine plans with.
    max_page_size: ClassVar[int] = 100
    default_base_url: ClassVar[str | None] = None
    # The de facto convention; an API without it simply leaves `data.request_id` null.
    request_id_header: ClassVar[str | None] = "X-Request-Id"
    updates_lookback_seconds: ClassVar[float | None] = None
    write_idempotency_keys: ClassVar[bool] = False

    def record_version(self, data: Any) -> float | None:
        return None

    def validate_secret(self, secret: str) -> None:
        check_secret(secret, "a webhook secret", ascii_only=False)

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return validate_settings(settings)

    def pullable_collections(self, settings: Mapping[str, Any]) -> frozenset[str] | None:
        """The connection's `collection` when it names one (its webhooks' events are in it), else any."""
        collection = settings.get("collection")
        return frozenset({collection}) if isinstance(collection, str) and collection else None

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        webhook.verify(request, secrets, settings, now)

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        return webhook.normalize(request, settings)

    def list_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        return pulls.list_pages(http, source, checkpoint)

    def supports_updates(self, settings: Mapping[str, Any]) -> bool:
        return pulls.supports_updates(settings)

    def updated_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        return pulls.updated_pages(http, source, since, checkpoint)

    def writable_collections(self, settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
        return writes.writable_collections(settings)

    def write(
        self, http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest
    ) -> WrittenRecord:
        return writes.write(http, source, request)

    def read_record(self, http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
        return writes.read_record(http, source, record_id)

    def error_message(self, body: Any) -> str | None:
        return writes.error_message(body)


PROVIDER = Generic()
