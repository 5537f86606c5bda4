"""The API's edges: request and response models. Field names and shapes follow PRODUCT.md."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ProviderName = Literal["stripe", "github", "shopify", "hubspot", "standard", "generic"]
EventSource = Literal["webhook", "pull"]
EventAction = Literal["created", "updated", "deleted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    # An HTTP error's type is one of bad_request, unauthorized, not_found, conflict, gone,
    # payload_too_large, rate_limited, internal; a failed pull's may also be e.g. timeout or bad_gateway.
    type: str
    message: str
    key: str
    data: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorDetail


class Event(BaseModel):
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
    data: Any


class EventPage(BaseModel):
    data: list[Event]
    next_cursor: str
    has_more: bool


class WebhookAccepted(BaseModel):
    event_ids: list[str]
    duplicates: int


class RateLimit(_Strict):
    allowed_requests: int = Field(ge=1)
    interval_seconds: float = Field(gt=0)


class ConnectionCreate(_Strict):
    provider: ProviderName
    name: str = Field(min_length=1, max_length=200)
    webhook_secrets: list[SecretStr] = Field(default_factory=list, max_length=10)
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    api_base_url: str | None = Field(default=None, max_length=2048)
    settings: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)


class ConnectionUpdate(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_secrets: list[SecretStr] | None = Field(default=None, min_length=1, max_length=10)
    credentials: dict[str, SecretStr] | None = None
    api_base_url: str | None = Field(default=None, max_length=2048)
    settings: dict[str, Any] | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=50)


class Connection(BaseModel):
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


class ConnectionPage(BaseModel):
    data: list[Connection]
    next_cursor: str
    has_more: bool


class Health(BaseModel):
    status: Literal["ok"]
