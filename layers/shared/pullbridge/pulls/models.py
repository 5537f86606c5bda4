"""The API's edges for subscriptions and pulls. Field names and shapes follow PRODUCT.md."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from pullbridge.models import ApiModel, ErrorDetail
from pullbridge.providers import ProviderName

SubscriptionStatus = Literal["subscribed", "paused", "error"]
PullStatus = Literal["queued", "running", "success", "error"]


class _Strict(ApiModel):
    model_config = ConfigDict(extra="forbid")


MIN_UPDATES_INTERVAL_SECONDS = 60
MAX_UPDATES_INTERVAL_SECONDS = 86_400


class SubscriptionCreate(_Strict):
    connection_id: str = Field(min_length=1, max_length=64)
    collection: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_./-]+$")
    full_sync_interval_seconds: int = Field(default=10_800, ge=60, le=30 * 86_400)
    pull_updates_interval_seconds: int | None = Field(
        default=None,
        ge=MIN_UPDATES_INTERVAL_SECONDS,
        le=MAX_UPDATES_INTERVAL_SECONDS,
        description="Incremental pulls between full scans, this often; null: none. Shorter than "
        "full_sync_interval_seconds.",
    )
    backfill: bool = True
    max_age_days: int | None = Field(default=None, ge=1, le=3650)


class SubscriptionUpdate(_Strict):
    full_sync_interval_seconds: int | None = Field(default=None, ge=60, le=30 * 86_400)
    pull_updates_interval_seconds: int | None = Field(
        default=None,
        ge=MIN_UPDATES_INTERVAL_SECONDS,
        le=MAX_UPDATES_INTERVAL_SECONDS,
        description="Sent as null, incremental pulls stop; left out, they stay as they are.",
    )
    max_age_days: int | None = Field(default=None, ge=1, le=3650)
    status: Literal["subscribed", "paused"] | None = None


class Subscription(ApiModel):
    id: str
    connection_id: str
    provider: ProviderName
    collection: str
    full_sync_interval_seconds: int
    pull_updates_interval_seconds: int | None
    backfill: bool
    max_age_days: int | None
    status: SubscriptionStatus
    next_pull_at: str | None
    last_pull_id: str | None
    error: ErrorDetail | None
    created_at: str
    updated_at: str


class SubscriptionPage(ApiModel):
    data: list[Subscription]
    next_cursor: str
    has_more: bool


class PullStatsModel(ApiModel):
    pages: int
    requests: int
    records_seen: int
    created: int
    updated: int
    deleted: int
    unchanged: int
    retries: int


class Pull(ApiModel):
    id: str
    external_event_subscription_id: str
    connection_id: str
    provider: ProviderName
    collection: str
    name: str
    status: PullStatus
    is_full_scan: bool
    start_datetime: str
    end_datetime: str | None
    collected_event_ids: list[str]
    collected_events_count: int
    stats: PullStatsModel
    error: ErrorDetail | None


class PullPage(ApiModel):
    data: list[Pull]
    next_cursor: str
    has_more: bool


def error_detail(error: dict[str, Any] | None) -> ErrorDetail | None:
    return ErrorDetail.model_validate(error) if error else None
