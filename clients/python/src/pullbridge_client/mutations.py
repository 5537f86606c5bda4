"""The mutation routes, as methods of `Client` (this mixin): `mutate` writes to the provider through
pullbridge; `list_mutations`, `iter_mutations` and `get_mutation` read what was written.

Every `mutate` call carries an `Idempotency-Key`: the caller's, or a new random one (uuid4) made for the
call. Its retries (after a 5xx, a lost answer, a 429) send the same key, and the server answers a repeat
of a key with the first answer, so the client's retries do not apply a write twice. As in Stripe's
libraries, a key is made per call: calling `mutate` twice is two writes, unless both calls pass the same
`idempotency_key` (within 24 h).

The limit is the provider's: when the first attempt's outcome is unknown (a 5xx or a timeout at the
provider), the server reads an update's or a delete's record back before writing again, but sends a
create again; only where the provider keeps idempotency keys (Stripe) is that create not made twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pullbridge_client._params import given
from pullbridge_client._params import path as _path
from pullbridge_client.consumers import _many, _one
from pullbridge_client.models import Page
from pullbridge_client.mutation_models import MUTATION_KINDS, Mutation, MutationKind, MutationStatus

__all__ = ["MutationMethods", "new_idempotency_key"]


def new_idempotency_key() -> str:
    """A fresh `Idempotency-Key`: a random UUID (version 4)."""
    return str(uuid.uuid4())


class MutationMethods:
    """What `Client` gets for mutations. It uses the client's `request` and `_page`."""

    if TYPE_CHECKING:

        def request(
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, Any] | None = None,
            json_body: Any = None,
            timeout: float | None = None,
            idempotency_key: str | None = None,
        ) -> Any: ...

        def _page(self, path: str, params: Mapping[str, Any]) -> Page[dict[str, Any]]: ...

    def mutate(
        self,
        connection_id: str,
        collection: str,
        kind: MutationKind,
        *,
        record_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Mutation:
        """Creates, updates or deletes one record of `collection` at the connection's provider, and
        returns the `Mutation` (status `succeeded`; `record` is the provider's object after the change,
        `event_id` the log event it was recorded as).

        `record_id` is needed for an update or a delete, and refused for a create; `data` (the fields to
        write, a JSON object) for a create or an update, and refused for a delete: ValueError before any
        request. Without `idempotency_key` a new one is made for this call and kept across its retries;
        pass your own to make a repeat of the whole call (e.g. after a crash) safe too.

        Raises: `Unprocessable` (422) when the provider refused the write (`.provider_status_code`,
        `.provider_message`, `.request_id`); `BadRequest` (400) for bad input or a kind the provider
        cannot do; `NotFound`, `Conflict` (the key was used with another body), `RateLimited`, and
        `ServerError` (502 `bad_gateway`, 504 `timeout`) once the retries are spent: then the write may
        have been applied, `.mutation_id` names the mutation (status `unknown`), and calling again with
        the same `idempotency_key` is safe.
        """
        if kind not in MUTATION_KINDS:
            raise ValueError(f"kind must be one of {', '.join(MUTATION_KINDS)}, not {kind!r}")
        if (record_id is None) == (kind != "create"):
            raise ValueError(
                f"a {kind} needs a record_id" if record_id is None else "a create takes no record_id"
            )
        if (data is None) == (kind != "delete"):
            raise ValueError(f"a {kind} needs data" if data is None else "a delete takes no data")
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping (a JSON object), not {type(data).__name__}")
        body = given(
            connection_id=connection_id, collection=collection, kind=kind, record_id=record_id, data=data
        )
        key = idempotency_key if idempotency_key is not None else new_idempotency_key()
        answer = self.request("POST", "/mutations", json_body=body, idempotency_key=key)
        return _one(Mutation.from_dict, answer)

    def list_mutations(
        self,
        cursor: str | None = None,
        *,
        limit: int | None = None,
        connection_id: str | None = None,
        status: MutationStatus | None = None,
    ) -> Page[Mutation]:
        """One page of mutations, newest first (`limit` None: the API's default page size)."""
        params = {"cursor": cursor, "limit": limit, "connection_id": connection_id, "status": status}
        page = self._page("/mutations", params)
        return Page(_many(Mutation.from_dict, page.data), page.next_cursor, page.has_more)

    def iter_mutations(
        self,
        *,
        connection_id: str | None = None,
        status: MutationStatus | None = None,
        limit: int | None = None,
    ) -> Iterator[Mutation]:
        """Every matching mutation, newest first (`limit` is the page size)."""
        cursor: str | None = None
        while True:
            page = self.list_mutations(cursor, limit=limit, connection_id=connection_id, status=status)
            yield from page.data
            if not page.has_more:
                return
            cursor = page.next_cursor

    def get_mutation(self, mutation_id: str) -> Mutation:
        return _one(Mutation.from_dict, self.request("GET", _path("mutations", mutation_id)))
