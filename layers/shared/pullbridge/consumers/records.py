"""A consumer's record (its name, filters and limits) in the control table, found by id or by name."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from pullbridge.consumers.models import ID_PREFIX, ConsumerFilters, Ordering
from pullbridge.consumers.planning import Limits
from pullbridge.errors import NotFound
from pullbridge.events import EventFilters
from pullbridge.storage import Store, keys


class StoredConsumer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    tenant_id: str
    name: str
    filters: dict[str, Any]
    ack_wait_seconds: int
    max_deliveries: int | None
    max_ack_pending: int
    ordering: Ordering
    created_at: str
    updated_at: str
    version: int = 1

    @property
    def event_filters(self) -> EventFilters:
        return EventFilters(**self.filters)

    def limits(self, max_batch_size: int) -> Limits:
        return Limits(
            max_batch_size=max_batch_size,
            max_ack_pending=self.max_ack_pending,
            max_deliveries=self.max_deliveries,
            ack_wait_seconds=self.ack_wait_seconds,
            ordering=self.ordering,
        )

    def public_filters(self) -> ConsumerFilters:
        return ConsumerFilters(**self.filters)

    def index_key(self) -> tuple[str, str]:
        return keys.consumers_index(self.tenant_id), f"{self.created_at}#{self.id}"


def not_found(reference: str) -> NotFound:
    return NotFound(f"no consumer {reference}", key="consumer_not_found")


# A name stands for one id until the consumer is deleted, so an instance remembers what names meant:
# a worker's every receive and ack then reads only the record. A remembered id whose record is gone
# (deleted, perhaps re-created under the same name) is looked up again.
_ids_by_name: dict[tuple[str, str], str] = {}
_MAX_REMEMBERED_NAMES = 10_000
# The record itself is remembered for a moment: workers receive and ack many times a second, and a
# change of limits (PATCH) reaches other instances within this time. A deleted consumer is found out
# anyway: its state is gone.
RECORD_SECONDS = 5.0
_records: dict[str, tuple[float, StoredConsumer]] = {}


def find_consumer(store: Store, tenant_id: str, reference: str) -> StoredConsumer:
    """The tenant's consumer with this id or name; another tenant's is as unknown as a missing one."""
    if reference.startswith(f"{ID_PREFIX}_"):
        return _load(store, tenant_id, reference, reference)
    remembered = _ids_by_name.get((tenant_id, reference))
    if remembered is not None:
        try:
            return _load(store, tenant_id, remembered, reference)
        except NotFound:
            _ids_by_name.pop((tenant_id, reference), None)
    consumer_id = store.consumer_id_by_name(tenant_id, reference)
    if consumer_id is None:
        raise not_found(reference)
    consumer = _load(store, tenant_id, consumer_id, reference)
    if len(_ids_by_name) >= _MAX_REMEMBERED_NAMES:
        _ids_by_name.clear()
    _ids_by_name[(tenant_id, reference)] = consumer_id
    return consumer


def remember(consumer: StoredConsumer, at: float) -> None:
    if len(_records) >= _MAX_REMEMBERED_NAMES:
        _records.clear()
    _records[consumer.id] = (at, consumer)


def forget(consumer_id: str) -> None:
    """After a change or a delete on this instance: the record, and any name that stood for it."""
    _records.pop(consumer_id, None)
    for key in [key for key, known in _ids_by_name.items() if known == consumer_id]:
        del _ids_by_name[key]


def named(consumer: StoredConsumer) -> None:
    """A consumer just created: its name now stands for it, whatever it stood for before."""
    _ids_by_name[(consumer.tenant_id, consumer.name)] = consumer.id
    remember(consumer, time.monotonic())


def _load(store: Store, tenant_id: str, consumer_id: str, reference: str) -> StoredConsumer:
    now = time.monotonic()
    remembered = _records.get(consumer_id)
    if remembered is not None and now - remembered[0] < RECORD_SECONDS:
        consumer = remembered[1]
        if consumer.tenant_id == tenant_id and reference in (consumer.id, consumer.name):
            return consumer
    document = store.get_control(keys.consumer_pk(consumer_id), keys.CONSUMER_SK)
    by_name = not reference.startswith(f"{ID_PREFIX}_")
    if (
        document is None
        or document.get("tenant_id") != tenant_id
        or (by_name and document.get("name") != reference)
    ):
        raise not_found(reference)
    consumer = StoredConsumer.model_validate(document)
    remember(consumer, now)
    return consumer
