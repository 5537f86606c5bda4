"""The API's edges for mutations (PRODUCT.md, "Mutations")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from pullbridge.models import ApiModel, ErrorDetail

MutationKind = Literal["create", "update", "delete"]
MutationStatus = Literal["pending", "succeeded", "failed", "unknown"]
"""`pending` while the provider is called; `failed` when it did not apply the write; `unknown` when it may
have (a 5xx or a timeout after the request was sent): a retry with the same key finds out first."""

MAX_DATA_BYTES = 65_536
"""`data` as compact JSON: more than any provider takes in one write (Stripe's metadata alone is 50 keys
of 500 characters), far below DynamoDB's item size."""


class MutationCreate(ApiModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: str = Field(min_length=1, max_length=64)
    collection: str = Field(min_length=1, max_length=64)
    kind: MutationKind
    record_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="Required for update and delete."
    )
    data: dict[str, Any] | None = Field(
        default=None, description="The fields to write: required for create and update, absent for delete."
    )
    # Which fields a kind needs is checked by `planning.check_fields`, so the 400 names the field.


class Mutation(ApiModel):
    id: str
    connection_id: str
    collection: str
    kind: MutationKind
    record_id: str | None
    status: MutationStatus
    record: Any = Field(description="The provider's object after the change; null until it succeeded.")
    event_id: str | None = Field(description="The log event that records the change, once it succeeded.")
    error: ErrorDetail | None
    created_at: str
    updated_at: str


class MutationPage(ApiModel):
    data: list[Mutation]
    next_cursor: str
    has_more: bool
