"""One mutation's run: checked, stored as `pending`, written upstream, and, once the provider answered,
logged as an event with its record and snapshot in one commit (so the next scan emits nothing for it).

A request with an `Idempotency-Key` finds the mutation the key started (`records.mutation_for_key`); what
it does then is `planning.next_step`. Powertools' Idempotency utility (`idempotency`) is in front of this:
it lets one request with a key run at a time, and replays the answer of one that finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from pullbridge.clock import Clock, system_clock, to_iso
from pullbridge.connection_records import StoredConnection
from pullbridge.connections import get_connection
from pullbridge.cursors import CursorCodec, scope_of
from pullbridge.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ProviderCallFailed,
    ProviderRefused,
    ProviderUnavailable,
    PullFailed,
)
from pullbridge.hashing import content_hash
from pullbridge.ids import event_position, new_id
from pullbridge.mutations.models import Mutation, MutationCreate, MutationPage
from pullbridge.mutations.planning import (
    Step,
    check_connection,
    check_fields,
    check_request,
    next_step,
    status_after,
)
from pullbridge.mutations.records import (
    StoredMutation,
    load_mutation,
    mutation_for_key,
    point_key,
    save_mutation,
    stored_error,
)
from pullbridge.paging import page_index
from pullbridge.providers import get_provider
from pullbridge.providers.base import Provider, PullSource, WriteRequest, WrittenRecord
from pullbridge.pulls.http import PullHttp, rate_limit_from_settings
from pullbridge.pulls.stats import PullStats
from pullbridge.storage import EventDraft, RecordChange, SnapshotChange, Store, keys
from pullbridge.urls import Resolver, resolve_host

ACTIONS = {"create": "created", "update": "updated", "delete": "deleted"}
READ_ATTEMPTS = 3
"""A read (a record read back, or checked before a write is repeated) is retried a little; a write never."""
MAX_READ_BACKOFF_SECONDS = 2.0

Outcome = dict[str, Any]
"""What a run answers, as JSON (Powertools keeps it for the key's 24 h): `{"mutation": ..., "error": ...}`,
`error` set when the provider refused the write (a 422)."""


class Mutations:
    def __init__(
        self,
        store: Store,
        http_client: httpx.Client,
        *,
        allow_private: bool,
        clock: Clock = system_clock,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._store = store
        self._http_client = http_client
        self._allow_private = allow_private
        self._clock = clock
        self._resolver = resolver

    def run(self, tenant_id: str, request: MutationCreate, idempotency_key: str | None) -> Outcome:
        """Make the write, or answer what the key's earlier request did. Raises the failures worth retrying
        (429, 5xx, timeouts: `ProviderCallFailed`, with `data.mutation_id`) and bad input (4xx)."""
        check_fields(request.kind, request.record_id, request.data)
        connection = get_connection(self._store, tenant_id, request.connection_id)
        check_connection(connection.archived_at, connection.credentials)
        provider = get_provider(connection.provider)
        check_request(
            provider.name,
            provider.writable_collections(connection.settings),
            request.collection,
            request.kind,
            request.data,
        )
        source = _source(connection, provider, request.collection)
        now = self._clock()
        existing = self._keyed(tenant_id, idempotency_key, now) if idempotency_key else None
        step = next_step(existing.status if existing else None, existing.error if existing else None)
        if existing is not None and step is Step.ANSWER:
            return _outcome(existing)
        if existing is not None:
            logged = self._logged(tenant_id, existing)
            if logged is not None:
                return logged
            if step is Step.RETRY:
                # Sent again (its last write never reached the provider). Should this run die after sending
                # it, the next must not send it blindly: from now on it is `pending`, which recovers.
                existing.status, existing.error = "pending", None
                save_mutation(self._store, existing)
        mutation = existing or self._start(tenant_id, connection, request, idempotency_key, now)
        write = WriteRequest(
            collection=request.collection,
            kind=request.kind,
            record_id=request.record_id,
            data=request.data,
            # Passed on where the provider keeps keys (Stripe): a retry of this mutation is replayed there.
            idempotency_key=idempotency_key or mutation.id,
        )
        return self._write(
            tenant_id, connection, provider, source, mutation, write, recover=step is Step.RECOVER
        )

    def _logged(self, tenant_id: str, mutation: StoredMutation) -> Outcome | None:
        """A run that died after its commit (its last save failed, or its worker died): the write landed
        and its event is in the log, under the mutation's delivery id. It succeeded; nothing is sent again."""
        event_ids = self._store.logged_as(mutation.connection_id, _delivery_id(mutation))
        position = event_position(event_ids[0]) if event_ids else None
        event = self._store.get_event(tenant_id, position) if position is not None else None
        if event is None:
            return None
        mutation.record_id = event.get("record_id")
        self._end(mutation, "succeeded", record=event.get("data"), event_id=event_ids[0])
        return _outcome(mutation)

    def _keyed(self, tenant_id: str, idempotency_key: str, now: float) -> StoredMutation | None:
        mutation_id = mutation_for_key(self._store, tenant_id, idempotency_key, now)
        return load_mutation(self._store, tenant_id, mutation_id) if mutation_id else None

    def _start(
        self,
        tenant_id: str,
        connection: StoredConnection,
        request: MutationCreate,
        idempotency_key: str | None,
        now: float,
    ) -> StoredMutation:
        """The mutation stored as `pending` before the provider hears of it: a run that dies leaves a trace
        a retry finds."""
        mutation = StoredMutation(
            id=new_id("mut"),
            tenant_id=tenant_id,
            connection_id=connection.id,
            provider=connection.provider,
            collection=request.collection,
            kind=request.kind,
            record_id=request.record_id,
            created_at=now,
            updated_at=now,
        )
        save_mutation(self._store, mutation)
        if idempotency_key:
            point_key(self._store, tenant_id, idempotency_key, mutation)
        return mutation

    def _write(
        self,
        tenant_id: str,
        connection: StoredConnection,
        provider: Provider,
        source: PullSource,
        mutation: StoredMutation,
        write: WriteRequest,
        *,
        recover: bool,
    ) -> Outcome:
        http = PullHttp(
            self._http_client,
            PullStats(),
            rate_limit=rate_limit_from_settings(connection.settings),
            request_id_header=provider.request_id_header,
            error_message=provider.error_message,
            max_attempts=READ_ATTEMPTS,
            max_backoff_seconds=MAX_READ_BACKOFF_SECONDS,
            allow_private=self._allow_private,
            resolver=self._resolver,
        )
        mutation.attempts += 1
        try:
            written = (
                self._recover(provider, http, source, write, mutation)
                if recover
                else provider.write(http, source, write)
            )
        except ProviderCallFailed as failure:
            failure.data["mutation_id"] = mutation.id
            self._end(mutation, status_after(failure), error=failure.to_error_object())
            if isinstance(failure, ProviderRefused):
                return _outcome(mutation)  # final: the key answers it again
            raise
        except PullFailed as failure:
            raise self._unsent_or_unread(mutation, failure) from failure
        if written.deleted and written.data is None:
            # Shopify, HubSpot and many APIs answer a delete with nothing: the tombstone keeps the last state.
            written = replace(written, data=self._last_known(mutation, written.record_id))
        mutation.record_id = written.record_id
        event_id = self._log(tenant_id, connection, mutation, written)
        self._end(mutation, "succeeded", record=written.data, event_id=event_id)
        return _outcome(mutation)

    def _recover(
        self,
        provider: Provider,
        http: PullHttp,
        source: PullSource,
        write: WriteRequest,
        mutation: StoredMutation,
    ) -> WrittenRecord:
        """An earlier run may have applied the write: find out before writing again.

        - A create is sent again only where the provider replays its idempotency key (Stripe); elsewhere a
          second send could make a second object, so the outcome stays unknown (409).
        - An update or a delete reads the record first: a delete that landed is done without a second
          call; an update of a record that is gone is refused, as the provider would refuse it. Where the
          record cannot be read (a generic connection without a `read` path), the outcome stays unknown.
        """
        if write.kind == "create" or write.record_id is None:
            if not provider.write_idempotency_keys:
                raise _still_unknown(mutation, f"{provider.name} keeps no idempotency keys")
            return provider.write(http, source, write)
        try:
            current = provider.read_record(http, source, write.record_id)
        except PullFailed as unreadable:
            if unreadable.error_type != "bad_request":
                raise
            raise _still_unknown(mutation, unreadable.message) from unreadable
        if current is None and write.kind == "delete":
            return WrittenRecord(write.record_id, None, deleted=True)
        if current is None:
            raise ProviderRefused(
                f"{write.collection} {write.record_id} no longer exists upstream",
                key="record_not_found",
                data={"status_code": 404, "message": None, "request_id": None},
            )
        return provider.write(http, source, write)

    def _last_known(self, mutation: StoredMutation, record_id: str) -> Any:
        stored = self._store.get_record(mutation.connection_id, mutation.collection, record_id)
        return stored.data if stored is not None else {"id": record_id}

    def _unsent_or_unread(self, mutation: StoredMutation, failure: PullFailed) -> Exception:
        """A `PullFailed` is a check before sending (credentials, the URL rule: 400, nothing sent) or a read
        that failed (reading back after the write, or before repeating one: the outcome is unknown)."""
        data = {**failure.data, "mutation_id": mutation.id}
        if failure.error_type == "bad_request":
            self._end(mutation, "failed", error=stored_error(failure.to_error_object()))
            return BadRequest(failure.message, key=failure.key, data=data)
        unknown = ProviderUnavailable(
            f"the write's outcome could not be read back: {failure.message}",
            may_have_applied=True,
            key="outcome_unknown",
            data=data,
        )
        self._end(mutation, "unknown", error=unknown.to_error_object())
        return unknown

    def _log(
        self, tenant_id: str, connection: StoredConnection, mutation: StoredMutation, written: WrittenRecord
    ) -> str:
        """The change as an event, with its record and snapshot, in one commit. Its delivery id is the
        mutation's, so a run that repeats the commit (after dying past it) logs it once."""
        action = ACTIONS[mutation.kind]
        now = to_iso(self._clock())
        document = {
            "connection_id": connection.id,
            "provider": connection.provider,
            "collection": mutation.collection,
            "type": f"{mutation.collection}.{action}",
            "action": action,
            "record_id": written.record_id,
            "source": "mutation",
            "pull_id": None,
            "occurred_at": now,
            "received_at": now,
            "data": written.data,
        }
        version = written.version
        draft = EventDraft(
            connection.id,
            document,
            delivery_id=_delivery_id(mutation),
            snapshot=SnapshotChange(
                connection.id,
                mutation.collection,
                written.record_id,
                None if written.deleted else content_hash(written.data),
            ),
            record=RecordChange(
                connection.id,
                mutation.collection,
                written.record_id,
                written.data,
                deleted=written.deleted,
                upstream_updated_at=to_iso(version) if version is not None else None,
                version=version,
            ),
        )
        result = self._store.append(tenant_id, connection.id, [draft])
        return (result.event_ids or result.duplicate_event_ids)[0]

    def _end(
        self,
        mutation: StoredMutation,
        status: str,
        *,
        record: Any = None,
        event_id: str | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        mutation.status = status
        mutation.record = record
        mutation.event_id = event_id
        mutation.error = dict(error) if error is not None else None
        mutation.updated_at = self._clock()
        save_mutation(self._store, mutation)


def _delivery_id(mutation: StoredMutation) -> str:
    """What the mutation's event is logged as, once: a run that repeats the commit finds it."""
    return f"mutation:{mutation.id}"


def _still_unknown(mutation: StoredMutation, why: str) -> Conflict:
    """A retry that cannot tell whether the first write landed, and will not risk a second one."""
    return Conflict(
        f"the outcome of {mutation.id} is unknown and cannot be checked ({why}): look at the provider, "
        "and send the write again with a new Idempotency-Key if it did not land",
        key="outcome_unknown",
        data={"mutation_id": mutation.id},
    )


def get_mutation(store: Store, tenant_id: str, mutation_id: str) -> Mutation:
    mutation = load_mutation(store, tenant_id, mutation_id)
    if mutation is None:
        raise NotFound(f"no mutation {mutation_id}", key="mutation_not_found")
    return mutation.public()


def list_mutations(
    store: Store,
    codec: CursorCodec,
    tenant_id: str,
    *,
    connection_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> MutationPage:
    """Newest first; `connection_id` and `status` filter."""
    equals = {name: value for name, value in (("connection_id", connection_id), ("status", status)) if value}
    page = page_index(
        store,
        codec,
        tenant_id,
        partition=keys.mutations_index(tenant_id),
        scope=scope_of("mutations", equals),
        cursor=cursor,
        limit=limit,
        equals=equals,
    )
    return MutationPage(
        data=[StoredMutation(**document).public() for document in page.documents],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


def _source(connection: StoredConnection, provider: Provider, collection: str) -> PullSource:
    base_url = connection.api_base_url or provider.default_base_url
    if not base_url:
        raise BadRequest(
            "connection_id: the connection has no api_base_url to write to",
            key="missing_base_url",
            data={"field": "connection_id"},
        )
    return PullSource(
        collection=collection,
        base_url=base_url,
        credentials=connection.credentials,
        settings=connection.settings,
    )


def _outcome(mutation: StoredMutation) -> Outcome:
    public = mutation.public().model_dump(mode="json")
    error = public["error"] if mutation.status == "failed" else None
    return {"mutation": public, "error": error}


def answer(outcome: Outcome) -> Mutation:
    """The mutation an outcome answers with, or the refusal it answers with (422)."""
    error = outcome.get("error")
    if error:
        raise ProviderRefused(error["message"], key=error["key"], data=error["data"])
    return Mutation.model_validate(outcome["mutation"])
