"""The pure decisions of a mutation: what may be asked of a provider, what a failure leaves the mutation
as, and what a request that finds its key's mutation already there does. No I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from pullbridge.errors import BadRequest, ProviderCallFailed, ValidationFailed
from pullbridge.mutations.models import MAX_DATA_BYTES


class Step(Enum):
    NEW = "new"
    """No mutation has this key yet: store one, then write."""
    ANSWER = "answer"
    """The key's mutation has its final answer (it succeeded, or the provider refused it): return it."""
    RETRY = "retry"
    """The provider did not apply it (a 429, an unreachable host, bad credentials since fixed): write."""
    RECOVER = "recover"
    """It may have been applied (a 5xx, a timeout, or a run that died): find out first, then write."""


FINAL_ERROR_TYPES = frozenset({"unprocessable"})
"""A refusal stands for the key's 24 h (as Stripe replays a 400); other failures are worth retrying."""


def check_fields(kind: str, record_id: str | None, data: Mapping[str, Any] | None) -> None:
    """The fields each kind needs: a create names no record (the provider gives its id), an update and a
    delete name one; a create and an update carry `data`, a delete none."""
    problem: tuple[str, str] | None = None
    if kind == "create" and record_id is not None:
        problem = ("record_id", "a create names no record_id; the provider gives it")
    elif kind != "create" and record_id is None:
        problem = ("record_id", f"required for {kind}")
    elif kind != "delete" and data is None:
        problem = ("data", f"an object is required for {kind}")
    elif kind == "delete" and data is not None:
        problem = ("data", "a delete takes no data")
    if problem is not None:
        field, message = problem
        raise ValidationFailed(f"{field}: {message}", data={"field": field})


def check_request(
    provider: str,
    writable: Mapping[str, frozenset[str]],
    collection: str,
    kind: str,
    data: Mapping[str, Any] | None,
) -> None:
    """`ValidationFailed` unless the provider can make this kind of write on this collection."""
    if collection not in writable:
        known = ", ".join(sorted(writable)) or "none"
        raise ValidationFailed(
            f"collection: {provider} cannot write {collection!r}; it writes: {known}",
            key="unknown_collection",
            data={"field": "collection"},
        )
    if kind not in writable[collection]:
        kinds = ", ".join(sorted(writable[collection]))
        raise ValidationFailed(
            f"kind: {provider} cannot {kind} {collection}; it can {kinds}",
            key="unsupported_kind",
            data={"field": "kind"},
        )
    if data is not None and len(json.dumps(data, separators=(",", ":"), default=str)) > MAX_DATA_BYTES:
        raise ValidationFailed(
            f"data: at most {MAX_DATA_BYTES} bytes as JSON", key="data_too_large", data={"field": "data"}
        )


def check_connection(archived_at: str | None, credentials: Mapping[str, str]) -> None:
    """A mutation needs a live connection with credentials to write with."""
    if archived_at is not None:
        raise BadRequest(
            "connection_id: the connection is archived",
            key="connection_archived",
            data={"field": "connection_id"},
        )
    if not credentials:
        raise BadRequest(
            "connection_id: the connection has no credentials to write with; set them with "
            "PATCH /connections/{id}",
            key="missing_credentials",
            data={"field": "connection_id"},
        )


def next_step(status: str | None, error: Mapping[str, Any] | None) -> Step:
    """What a request does with the mutation its key already started (None: there is none)."""
    if status is None:
        return Step.NEW
    if status == "succeeded" or (status == "failed" and error and error.get("type") in FINAL_ERROR_TYPES):
        return Step.ANSWER
    if status == "failed":
        return Step.RETRY
    return Step.RECOVER  # pending (its run died) or unknown


def status_after(failure: ProviderCallFailed) -> str:
    """A failed write leaves the mutation `unknown` when the provider may have applied it."""
    return "unknown" if failure.may_have_applied else "failed"
