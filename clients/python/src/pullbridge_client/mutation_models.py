"""The mutation routes' object: `Mutation`, a create, update or delete sent through pullbridge to the
provider's API.

Like `Event` and the consumer objects, it keeps the fields a newer server adds in `extra` (and
`to_dict()` gives the whole object back), and `from_dict` raises ValueError for a missing field,
TypeError for a wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pullbridge_client.consumer_models import _Fields
from pullbridge_client.errors import ErrorObject

__all__ = ["MUTATION_KINDS", "MUTATION_STATUSES", "Mutation", "MutationKind", "MutationStatus"]

MutationKind = Literal["create", "update", "delete"]
MutationStatus = Literal["pending", "succeeded", "failed", "unknown"]
MUTATION_KINDS: tuple[MutationKind, ...] = ("create", "update", "delete")
MUTATION_STATUSES: tuple[MutationStatus, ...] = ("pending", "succeeded", "failed", "unknown")


@dataclass(frozen=True, kw_only=True)
class Mutation:
    """A create, update or delete of one provider record, as `POST /mutations` and `GET /mutations` answer.

    `kind`: `create`, `update` or `delete`. `record_id`: the provider's id of the record (None for a
    create that did not get that far). `status`: `pending`, `succeeded`, `failed`, or `unknown` when
    the provider may have applied it but did not say (a 5xx or a timeout). `record`: the provider's
    object after the change (None when there is none). `event_id`: the log event the change was
    recorded as (`source: "mutation"`), once it succeeded. `error`: why it failed or is unknown.
    """

    id: str
    connection_id: str
    collection: str
    kind: str
    record_id: str | None
    status: str
    record: Any
    event_id: str | None
    error: ErrorObject | None
    created_at: str
    updated_at: str
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any) -> Mutation:
        read = _Fields("mutation", value)
        return cls(
            id=read.text("id"),
            connection_id=read.text("connection_id"),
            collection=read.text("collection"),
            kind=read.text("kind"),
            record_id=read.optional_text("record_id"),
            status=read.text("status"),
            record=read.anything("record"),
            event_id=read.optional_text("event_id"),
            error=read.optional_error("error"),
            created_at=read.text("created_at"),
            updated_at=read.text("updated_at"),
            extra=read.extra(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The mutation as a JSON object: the contract's fields in its order, then any `extra` ones."""
        known = {name: getattr(self, name) for name in _MUTATION_FIELDS}
        return {**known, "error": None if self.error is None else self.error.to_dict(), **self.extra}


_MUTATION_FIELDS = [name for name in Mutation.__dataclass_fields__ if name != "extra"]
