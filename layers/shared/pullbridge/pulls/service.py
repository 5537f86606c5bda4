"""Subscriptions and pulls as the API serves them: create, read, update, delete, trigger, list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pullbridge.clock import Clock, system_clock, to_iso
from pullbridge.connections import get_connection
from pullbridge.cursors import CursorCodec, scope_of
from pullbridge.errors import Conflict, NotFound, PullFailed, ValidationFailed
from pullbridge.ids import new_id
from pullbridge.paging import page_index
from pullbridge.providers import get_provider
from pullbridge.pulls.models import PullPage, SubscriptionCreate, SubscriptionPage, SubscriptionUpdate
from pullbridge.pulls.records import (
    StoredPull,
    StoredSubscription,
    load_pull,
    load_subscription,
    save_pull,
    save_subscription,
    subscription_pk,
)
from pullbridge.pulls.schedule import reschedule_updates
from pullbridge.storage import Store, keys

LEASE_SECONDS = 120.0
DEAD_PULL_ERROR = PullFailed(
    "timeout", "the pull's worker stopped before finishing (its lease ran out)", key="lease_expired"
)
_ATTEMPTS = 5


def get_subscription(store: Store, tenant_id: str, subscription_id: str) -> StoredSubscription:
    subscription = load_subscription(store, subscription_id)
    if subscription is None or subscription.tenant_id != tenant_id:
        raise NotFound(f"no external event subscription {subscription_id}", key="subscription_not_found")
    return subscription


def create_subscription(
    store: Store, tenant_id: str, request: SubscriptionCreate, *, clock: Clock = system_clock
) -> StoredSubscription:
    connection = get_connection(store, tenant_id, request.connection_id)
    if connection.archived_at:
        raise ValidationFailed("connection_id: the connection is archived", data={"field": "connection_id"})
    collections = get_provider(connection.provider).pullable_collections(connection.settings)
    if collections is not None and request.collection not in collections:
        raise ValidationFailed(
            f"collection: {connection.provider} has no pullable collection '{request.collection}'"
            + (f"; choose one of {', '.join(sorted(collections))}" if collections else ""),
            data={"field": "collection"},
        )
    _check_updates_interval(request.pull_updates_interval_seconds, request.full_sync_interval_seconds)
    if request.pull_updates_interval_seconds is not None:
        _check_updates_offered(connection.provider, connection.settings)
    now = clock()
    subscription = StoredSubscription(
        id=new_id("sub"),
        tenant_id=tenant_id,
        connection_id=connection.id,
        provider=connection.provider,
        collection=request.collection,
        full_sync_interval_seconds=request.full_sync_interval_seconds,
        pull_updates_interval_seconds=request.pull_updates_interval_seconds,
        backfill=request.backfill,
        max_age_days=request.max_age_days,
        created_at=to_iso(now),
        updated_at=to_iso(now),
        next_pull_at=now,  # the first scan is due at once
    )
    # One subscription per connection and collection: they would share one snapshot.
    claimed = store.put_control(
        keys.subscription_uniqueness_pk(connection.id, request.collection),
        keys.SUBSCRIPTION_UNIQUENESS_SK,
        {"subscription_id": subscription.id},
        only_if_new=True,
    )
    if not claimed:
        raise Conflict(
            "this connection already has a subscription to that collection", key="subscription_exists"
        )
    save_subscription(store, subscription, expected_version=None)
    return subscription


def _check_updates_interval(updates: int | None, full: int) -> None:
    if updates is not None and updates >= full:
        raise ValidationFailed(
            f"pull_updates_interval_seconds: must be shorter than full_sync_interval_seconds ({full})",
            data={"field": "pull_updates_interval_seconds"},
        )


def _check_updates_offered(provider_name: str, settings: Mapping[str, Any]) -> None:
    """Incremental pulls only where the provider can say what changed: not `standard`, which has no list
    API (nor a subscription at all), nor a generic connection without `updated_since_param`."""
    if get_provider(provider_name).supports_updates(settings):
        return
    if provider_name == "generic" and settings.get("mode") == "feed":
        reason = "an events feed's pulls are incremental already"
    elif provider_name == "generic":
        reason = "set the connection's settings.updated_since_param to offer them"
    else:
        reason = f"{provider_name} cannot be asked what changed"
    raise ValidationFailed(
        f"pull_updates_interval_seconds: {reason}", data={"field": "pull_updates_interval_seconds"}
    )


def update_subscription(
    store: Store,
    tenant_id: str,
    subscription_id: str,
    request: SubscriptionUpdate,
    *,
    clock: Clock = system_clock,
) -> StoredSubscription:
    for _ in range(_ATTEMPTS):
        subscription = get_subscription(store, tenant_id, subscription_id)
        version = subscription.version
        if request.full_sync_interval_seconds is not None:
            subscription.full_sync_interval_seconds = request.full_sync_interval_seconds
        _update_incremental_pulls(store, tenant_id, subscription, request, clock())
        if request.max_age_days is not None:
            subscription.max_age_days = request.max_age_days
        if request.status == "paused":
            subscription.status = "paused"
        elif request.status == "subscribed" and subscription.status == "paused":
            subscription.status = "subscribed"
            subscription.next_pull_at = min(subscription.next_pull_at or clock(), clock())
        subscription.updated_at = to_iso(clock())
        if save_subscription(store, subscription, expected_version=version):
            return subscription
    raise Conflict("the subscription changed concurrently; retry", key="concurrent_update")


def _update_incremental_pulls(
    store: Store, tenant_id: str, subscription: StoredSubscription, request: SubscriptionUpdate, now: float
) -> None:
    """`pull_updates_interval_seconds` left out stays as it is; sent as null, incremental pulls stop."""
    sent = "pull_updates_interval_seconds" in request.model_fields_set
    if sent:
        subscription.pull_updates_interval_seconds = request.pull_updates_interval_seconds
    _check_updates_interval(
        subscription.pull_updates_interval_seconds, subscription.full_sync_interval_seconds
    )
    if sent and request.pull_updates_interval_seconds is not None:
        connection = get_connection(store, tenant_id, subscription.connection_id)
        _check_updates_offered(subscription.provider, connection.settings)
    if sent:
        reschedule_updates(subscription, now)


def delete_subscription(store: Store, tenant_id: str, subscription_id: str) -> None:
    """Stop pulling: a pull under way finds its subscription gone and stops at its next page."""
    subscription = get_subscription(store, tenant_id, subscription_id)
    store.delete_control(subscription_pk(subscription.id), keys.SUBSCRIPTION_SK)
    store.delete_control(
        keys.subscription_uniqueness_pk(subscription.connection_id, subscription.collection),
        keys.SUBSCRIPTION_UNIQUENESS_SK,
    )


def list_subscriptions(
    store: Store, codec: CursorCodec, tenant_id: str, *, cursor: str | None, limit: int
) -> SubscriptionPage:
    page = page_index(
        store,
        codec,
        tenant_id,
        partition=keys.subscriptions_index(tenant_id),
        scope=scope_of("subscriptions", {}),
        cursor=cursor,
        limit=limit,
    )
    return SubscriptionPage(
        data=[StoredSubscription(**document).public() for document in page.documents],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


def new_pull(
    subscription: StoredSubscription, now: float, *, status: str, updated_since: float | None = None
) -> StoredPull:
    """A full scan, or with `updated_since` an incremental pull of what changed since then."""
    kind = "full scan" if updated_since is None else "incremental pull"
    return StoredPull(
        id=new_id("pull"),
        tenant_id=subscription.tenant_id,
        subscription_id=subscription.id,
        connection_id=subscription.connection_id,
        provider=subscription.provider,
        collection=subscription.collection,
        name=f"{subscription.provider} {subscription.collection} {kind}",
        started_at=now,
        first_scan=not subscription.baseline_done,
        status=status,
        is_full_scan=updated_since is None,
        updated_since=updated_since,
    )


def trigger_pull(
    store: Store, tenant_id: str, subscription_id: str, *, clock: Clock = system_clock
) -> StoredPull:
    """Queue a full scan now: 409 naming the pull that holds the subscription's lease, if one does."""
    for _ in range(_ATTEMPTS):
        subscription = get_subscription(store, tenant_id, subscription_id)
        now = clock()
        if subscription.running_pull_id and (
            subscription.lease_holder is None or (subscription.lease_until or 0) > now
        ):
            raise Conflict(
                "a pull of this subscription is already running",
                key="pull_running",
                data={"pull_id": subscription.running_pull_id},
            )
        version = subscription.version
        dead = subscription.running_pull_id  # held by a worker whose lease ran out: it died
        pull = new_pull(subscription, now, status="queued")
        # Queued, unclaimed and due at once: the API starts a worker for it, and the scheduler would
        # pick it up anyway. The version check is the lease: of two concurrent triggers one wins.
        subscription.running_pull_id, subscription.lease_holder, subscription.lease_until = pull.id, None, now
        if save_subscription(store, subscription, expected_version=version):
            if dead:
                end_dead_pull(store, dead, now)
            save_pull(store, pull)
            return pull
    raise Conflict("the subscription changed concurrently; retry", key="concurrent_update")


def end_dead_pull(store: Store, pull_id: str, now: float) -> None:
    """A pull whose worker died holding the subscription's lease ends in `timeout` once the lease ran
    out, whoever takes the subscription over (the schedule, or a trigger): never left `queued` or
    `running` for good."""
    pull = load_pull(store, pull_id)
    if pull is None or pull.status not in ("queued", "running"):
        return
    pull.status, pull.ended_at, pull.resumable, pull.checkpoint = "error", now, False, None
    pull.error = DEAD_PULL_ERROR.to_error_object()
    save_pull(store, pull)


def get_pull(store: Store, tenant_id: str, pull_id: str) -> StoredPull:
    pull = load_pull(store, pull_id)
    if pull is None or pull.tenant_id != tenant_id:
        raise NotFound(f"no external event pull {pull_id}", key="pull_not_found")
    return pull


@dataclass(frozen=True)
class PullFilters:
    external_event_subscription_id: str | None = None
    connection_id: str | None = None
    provider: str | None = None
    status: str | None = None
    start_from: datetime | None = None
    start_to: datetime | None = None


def list_pulls(
    store: Store, codec: CursorCodec, tenant_id: str, filters: PullFilters, *, cursor: str | None, limit: int
) -> PullPage:
    """Newest first. `from`/`to` bound the index's sort key (the start time); the rest filter."""
    equals = {
        name: value
        for name, value in (
            ("subscription_id", filters.external_event_subscription_id),
            ("connection_id", filters.connection_id),
            ("provider", filters.provider),
            ("status", filters.status),
        )
        if value is not None
    }
    low = to_iso(filters.start_from.timestamp()) if filters.start_from else "0"
    high = (to_iso(filters.start_to.timestamp()) if filters.start_to else "9999") + "#~"
    scope = scope_of(
        "pulls",
        {**equals, "from": low if filters.start_from else None, "to": high if filters.start_to else None},
    )
    page = page_index(
        store,
        codec,
        tenant_id,
        partition=keys.pulls_index(tenant_id),
        scope=scope,
        cursor=cursor,
        limit=limit,
        sort_between=(low, high),
        equals=equals,
    )
    return PullPage(
        data=[StoredPull(**document).public() for document in page.documents],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )
