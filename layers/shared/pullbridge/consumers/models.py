"""The API's edges for consumers. Field names, ranges and defaults follow PRODUCT.md's Consumers section."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from pullbridge.models import ApiModel, Event, EventSource
from pullbridge.providers import ProviderName

Ordering = Literal["record", "none"]
NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"
ID_PREFIX = "cns"
MAX_LEASE_SECONDS = 43_200

AckIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=512)]], Field(min_length=1, max_length=1000)
]
LeaseSeconds = Annotated[int, Field(ge=1, le=MAX_LEASE_SECONDS)]
MaxDeliveries = Annotated[int | None, Field(ge=1, le=1000)]
MaxAckPending = Annotated[int, Field(ge=1, le=10_000)]


class _Strict(ApiModel):
    model_config = ConfigDict(extra="forbid")


class ConsumerFilters(_Strict):
    connection_id: str | None = Field(default=None, min_length=1, max_length=64)
    provider: ProviderName | None = None
    collection: str | None = Field(default=None, min_length=1, max_length=64)
    type: str | None = Field(default=None, min_length=1, max_length=200)
    source: EventSource | None = None


class StartAt(_Strict):
    """Exactly one of `cursor` (a `GET /events` cursor made with the consumer's filters) and `time`."""

    cursor: str | None = Field(default=None, min_length=1, max_length=1024)
    time: datetime | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StartAt:
        if (self.cursor is None) == (self.time is None):
            raise ValueError("give exactly one of cursor and time")
        if self.time is not None and self.time.tzinfo is None:
            raise ValueError("time needs a timezone, e.g. 2026-01-01T00:00:00Z")
        return self


class ConsumerCreate(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique in the tenant; not starting with `cns_`.")
    filters: ConsumerFilters = Field(default_factory=ConsumerFilters)
    start: Literal["all", "new"] | StartAt = "all"
    ack_wait_seconds: LeaseSeconds = 30
    max_deliveries: MaxDeliveries = 10
    max_ack_pending: MaxAckPending = 1000
    ordering: Ordering = "record"

    @model_validator(mode="after")
    def _name_is_not_an_id(self) -> ConsumerCreate:
        # Every route takes an id or a name: a name shaped like an id would be ambiguous.
        if self.name.startswith(f"{ID_PREFIX}_"):
            raise ValueError(f"name: may not start with '{ID_PREFIX}_', which consumer ids start with")
        return self


class ConsumerUpdate(_Strict):
    """Only the fields sent change; `"max_deliveries": null` means no limit."""

    ack_wait_seconds: LeaseSeconds | None = None
    max_deliveries: MaxDeliveries = None
    max_ack_pending: MaxAckPending | None = None


class Consumer(ApiModel):
    id: str
    name: str
    filters: ConsumerFilters
    ack_wait_seconds: int
    max_deliveries: int | None
    max_ack_pending: int
    ordering: Ordering
    num_pending: int
    num_ack_pending: int
    num_waiting: int
    num_dead: int
    lag_seconds: float
    created_at: str
    updated_at: str


class ConsumerPage(ApiModel):
    data: list[Consumer]
    next_cursor: str
    has_more: bool


class ReceiveRequest(_Strict):
    max_batch_size: int = Field(default=10, ge=1, le=1000)
    wait: float = Field(default=0, ge=0, le=20)


class Delivery(ApiModel):
    ack_id: str
    delivery_count: int
    lease_expires_at: str
    event: Event


class ReceiveResult(ApiModel):
    data: list[Delivery]


class AckRequest(_Strict):
    ack_ids: AckIds


class AckResult(ApiModel):
    acked: int
    expired: list[str]


class NackRequest(_Strict):
    ack_ids: AckIds
    delay_seconds: int = Field(default=0, ge=0, le=MAX_LEASE_SECONDS)


class NackResult(ApiModel):
    nacked: int
    expired: list[str]


class ExtendRequest(_Strict):
    ack_ids: AckIds
    seconds: LeaseSeconds


class ExtendResult(ApiModel):
    extended: int
    lease_expires_at: str
    expired: list[str]


class TermRequest(_Strict):
    ack_ids: AckIds
    reason: str = Field(default="", max_length=1000)


class TermResult(ApiModel):
    termed: int
    expired: list[str]


class DeadLetter(ApiModel):
    event_id: str
    delivery_count: int
    reason: str
    dead_at: str
    event: Event | None
    """A copy kept with the dead letter; None only if the event had left the log when it died."""


class DeadLetterPage(ApiModel):
    data: list[DeadLetter]
    next_cursor: str
    has_more: bool


class RedriveRequest(_Strict):
    event_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=1000
    )
    all: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> RedriveRequest:
        if (self.event_ids is None) == (not self.all):
            raise ValueError('give either event_ids or "all": true')
        return self


class RedriveResult(ApiModel):
    redriven: int
    remaining: int


class SeekRequest(_Strict):
    """Exactly one of `{"cursor": c}`, `{"time": t}` and `{"position": "new" | "all"}`; `{"start": ...}`
    takes what `POST /consumers` takes as its start."""

    cursor: str | None = Field(default=None, min_length=1, max_length=1024)
    time: datetime | None = None
    position: Literal["new", "all"] | None = None
    start: Literal["all", "new"] | StartAt | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SeekRequest:
        if sum(value is not None for value in (self.cursor, self.time, self.position, self.start)) != 1:
            raise ValueError('give exactly one of cursor, time and position ("new" or "all")')
        if self.time is not None and self.time.tzinfo is None:
            raise ValueError("time needs a timezone, e.g. 2026-01-01T00:00:00Z")
        return self

    def target(self) -> Literal["all", "new"] | StartAt:
        if self.start is not None:
            return self.start
        if self.position is not None:
            return self.position
        return StartAt(cursor=self.cursor, time=self.time)


def stored_filters(filters: ConsumerFilters) -> dict[str, Any]:
    return filters.model_dump(exclude_none=True)
