"""The API's edges: request and response models. Field names and shapes follow PRODUCT.md."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from pullbridge.providers import ProviderName

EventSource = Literal["webhook", "pull", "mutation"]
EventAction = Literal["created", "updated", "deleted"]


class ApiModel(BaseModel):
    """Every model of the API's edges. Its validator is built when first used, not at import: the API
    declares about 40 models, and building them all is a fifth of its cold start, for models most
    invocations never touch."""

    model_config = ConfigDict(defer_build=True)


class _Strict(ApiModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(ApiModel):
    # An HTTP error's type is one of bad_request, unauthorized, not_found, conflict, gone,
    # payload_too_large, rate_limited, internal; a failed pull's may also be e.g. timeout or bad_gateway.
    type: str
    message: str
    key: str
    data: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(ApiModel):
    error: ErrorDetail


class Event(ApiModel):
    id: str
    connection_id: str
    provider: ProviderName
    collection: str | None
    type: str
    action: EventAction | None
    record_id: str | None
    source: EventSource
    pull_id: str | None
    occurred_at: str | None
    received_at: str
    stale: bool = False
    """True when the webhook's object is older than the record already held (by the provider's own
    version): the event is logged, and the record keeps the newer state. False where it cannot be told."""
    data: Any


class EventPage(ApiModel):
    data: list[Event]
    next_cursor: str
    has_more: bool


class WebhookAccepted(ApiModel):
    event_ids: list[str]
    duplicates: int


MAX_SETTINGS_BYTES = 16_384
"""`settings` as compact JSON: room for any provider's options, far below DynamoDB's 400 KB item."""

# Each stored field has a maximum, so a whole connection fits one DynamoDB item with room to spare
# (docs/architecture.md adds them up). The metadata bounds are Stripe's.
WebhookSecret = Annotated[SecretStr, Field(min_length=1, max_length=1_024)]
CredentialName = Annotated[str, Field(min_length=1, max_length=64)]
Credential = Annotated[SecretStr, Field(max_length=8_192)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=40)]
MetadataValue = Annotated[str, Field(max_length=500)]
ConnectionName = Annotated[str, Field(min_length=1, max_length=200)]
BaseUrl = Annotated[str, Field(min_length=1, max_length=2_048)]


def _settings_within_bounds(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    if settings is not None:
        try:
            size = len(json.dumps(settings, separators=(",", ":")))
        except RecursionError as exc:
            raise ValueError("settings nest too deeply") from exc
        if size > MAX_SETTINGS_BYTES:
            raise ValueError(f"settings are {size} bytes as JSON; the most is {MAX_SETTINGS_BYTES}")
    return settings


class ConnectionCreate(_Strict):
    provider: ProviderName
    name: ConnectionName
    webhook_secrets: list[WebhookSecret] = Field(default_factory=list, max_length=10)
    credentials: dict[CredentialName, Credential] = Field(default_factory=dict, max_length=20)
    api_base_url: BaseUrl | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=50)

    _settings_bounds = field_validator("settings")(_settings_within_bounds)


class ConnectionUpdate(_Strict):
    name: ConnectionName | None = None
    webhook_secrets: list[WebhookSecret] | None = Field(default=None, min_length=1, max_length=10)
    credentials: dict[CredentialName, Credential] | None = Field(default=None, max_length=20)
    api_base_url: BaseUrl | None = None
    settings: dict[str, Any] | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = Field(default=None, max_length=50)

    _settings_bounds = field_validator("settings")(_settings_within_bounds)


class ConnectionHealth(ApiModel):
    """How well the provider's webhooks reach this connection, measured by its pulls."""

    last_webhook_at: str | None = None
    last_pull_at: str | None = None
    last_full_scan_at: str | None = None
    last_full_scan_status: Literal["success", "error"] | None = None
    missed_by_webhooks: int | None = None
    """The changes the last complete full scans (one per collection) found that no webhook had
    delivered; None where that cannot be told (the provider's webhooks do not carry the list API's
    representation, or no scan has completed since the first)."""


class Connection(ApiModel):
    """A connection as the API shows it: its secrets and credentials are never part of it."""

    id: str
    provider: ProviderName
    name: str
    status: Literal["active", "archived"]
    webhook_url: str
    webhook_secrets_count: int
    credentials_set: bool
    api_base_url: str | None
    settings: dict[str, Any]
    metadata: dict[str, str]
    created_at: str
    updated_at: str
    archived_at: str | None
    health: ConnectionHealth = Field(default_factory=ConnectionHealth)


class ConnectionPage(ApiModel):
    data: list[Connection]
    next_cursor: str
    has_more: bool


class Health(ApiModel):
    status: Literal["ok"]
    checks: dict[str, Literal["ok"]] = Field(default_factory=dict)
    """Each dependency checked: none for liveness, `{"dynamodb": "ok"}` with `?deep=true`."""


class Record(ApiModel):
    """The latest known state of one upstream record (PRODUCT.md, "Records")."""

    connection_id: str
    provider: ProviderName
    collection: str
    record_id: str
    data: Any
    deleted: bool
    first_seen_at: str
    changed_at: str
    upstream_updated_at: str | None
    last_event_id: str


class RecordPage(ApiModel):
    data: list[Record]
    next_cursor: str
    has_more: bool
