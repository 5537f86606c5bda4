"""When a subscription pulls, and what (`pullbridge.pulls.schedule`): pure decisions, no storage."""

from __future__ import annotations

from typing import Any

import pytest

from pullbridge.pulls.records import StoredPull, StoredSubscription
from pullbridge.pulls.schedule import (
    OVERLAP_SECONDS,
    after_pull,
    next_on_grid,
    reschedule_updates,
    updates_since,
    wants_full_scan,
)

NOW = 1_800_000_000.0


def subscription(**fields: Any) -> StoredSubscription:
    values: dict[str, Any] = {
        "id": "sub_1",
        "tenant_id": "t",
        "connection_id": "c",
        "provider": "stripe",
        "collection": "customers",
        "full_sync_interval_seconds": 3600,
        "backfill": True,
        "max_age_days": None,
        "created_at": "x",
        "updated_at": "x",
        "pull_updates_interval_seconds": 60,
        "baseline_done": True,
        "updates_mark": NOW - 60,
        "next_full_scan_at": NOW + 1000,
        "next_pull_at": NOW,
    }
    values.update(fields)
    return StoredSubscription(**values)


def pull(*, full: bool, started_at: float = NOW) -> StoredPull:
    return StoredPull(
        id="pull_1",
        tenant_id="t",
        subscription_id="sub_1",
        connection_id="c",
        provider="stripe",
        collection="customers",
        name="n",
        started_at=started_at,
        first_scan=False,
        is_full_scan=full,
        updated_since=None if full else NOW - 180,
    )


def test_between_full_scans_the_pull_is_incremental() -> None:
    assert wants_full_scan(subscription(), NOW, None) is False


@pytest.mark.parametrize(
    "fields",
    [
        {"pull_updates_interval_seconds": None},
        {"baseline_done": False},
        {"updates_mark": None},
        {"next_full_scan_at": None},
        {"next_full_scan_at": NOW},
    ],
    ids=["off", "no-baseline", "no-mark", "no-full-scan-planned", "full-scan-due"],
)
def test_a_full_scan_runs_when_there_is_nothing_to_go_on_from_or_one_is_due(fields: dict[str, Any]) -> None:
    assert wants_full_scan(subscription(**fields), NOW, None) is True


def test_a_mark_older_than_the_provider_looks_back_means_a_full_scan() -> None:
    old = subscription(updates_mark=NOW - 30 * 86_400)
    assert wants_full_scan(old, NOW, 30 * 86_400) is True
    assert wants_full_scan(old, NOW, None) is False


def test_an_incremental_pull_asks_from_the_mark_less_the_overlap_in_whole_seconds() -> None:
    assert updates_since(NOW + 0.9) == NOW - OVERLAP_SECONDS


def test_the_grid_gives_the_first_time_after_now() -> None:
    assert next_on_grid(100.0, 60.0, 100.5) == 160.0
    assert next_on_grid(100.0, 60.0, 160.0) == 220.0
    assert next_on_grid(100.0, 60.0, 400.0) == 460.0  # far behind: the next slot, not a catch-up burst


def test_a_successful_incremental_pull_moves_the_mark_and_keeps_to_the_grid() -> None:
    planned = subscription(next_pull_at=NOW)
    after_pull(planned, pull(full=False, started_at=NOW + 0.7), succeeded=True, now=NOW + 2)
    assert planned.updates_mark == NOW + 0.7
    assert planned.next_pull_at == NOW + 60  # due at NOW, so next at NOW + 60, not NOW + 60.7
    assert planned.next_full_scan_at == NOW + 1000


def test_a_failed_incremental_pull_leaves_the_mark() -> None:
    planned = subscription()
    after_pull(planned, pull(full=False), succeeded=False, now=NOW + 2)
    assert planned.updates_mark == NOW - 60
    assert planned.next_pull_at == NOW + 60


def test_a_full_scan_sets_the_mark_and_the_next_full_scan() -> None:
    planned = subscription(next_full_scan_at=NOW, updates_mark=None)
    after_pull(planned, pull(full=True), succeeded=True, now=NOW + 30)
    assert (planned.updates_mark, planned.next_full_scan_at, planned.next_pull_at) == (
        NOW,
        NOW + 3600,
        NOW + 60,
    )


def test_a_failed_full_scan_plans_the_next_one_and_leaves_the_mark() -> None:
    planned = subscription(next_full_scan_at=NOW)
    after_pull(planned, pull(full=True), succeeded=False, now=NOW + 30)
    assert (planned.updates_mark, planned.next_full_scan_at) == (NOW - 60, NOW + 3600)
    assert planned.next_pull_at == NOW + 60  # incremental pulls go on from the mark they have


def test_without_incremental_pulls_the_next_pull_is_the_next_full_scan() -> None:
    planned = subscription(pull_updates_interval_seconds=None, next_full_scan_at=NOW)
    after_pull(planned, pull(full=True), succeeded=True, now=NOW + 30)
    assert planned.next_pull_at == NOW + 3600


def test_the_full_scan_comes_first_when_it_is_sooner() -> None:
    planned = subscription(next_full_scan_at=NOW + 30)
    after_pull(planned, pull(full=False), succeeded=True, now=NOW + 1)
    assert planned.next_pull_at == NOW + 30


def test_turning_incremental_pulls_on_or_off_reschedules_an_idle_subscription() -> None:
    idle = subscription(pull_updates_interval_seconds=300, next_pull_at=NOW + 1000)
    reschedule_updates(idle, NOW)
    assert idle.next_pull_at == NOW + 300
    idle.pull_updates_interval_seconds = None
    reschedule_updates(idle, NOW)
    assert idle.next_pull_at == NOW + 1000


def test_a_subscription_not_yet_scanned_keeps_its_first_scan_due() -> None:
    new = subscription(next_full_scan_at=None, next_pull_at=NOW - 5, updates_mark=None, baseline_done=False)
    reschedule_updates(new, NOW)
    assert new.next_pull_at == NOW - 5
