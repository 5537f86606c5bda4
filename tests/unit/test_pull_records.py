from __future__ import annotations

from pullbridge.pulls.records import StoredPull, StoredSubscription, due_key


def _pull() -> StoredPull:
    return StoredPull(
        id="pull_1",
        tenant_id="t",
        subscription_id="sub_1",
        connection_id="conn_1",
        provider="stripe",
        collection="customers",
        name="n",
        started_at=1_700_000_000.0,
        first_scan=True,
    )


def test_collected_event_ids_are_capped_at_1000_while_the_count_stays_exact() -> None:
    pull = _pull()
    pull.collect([f"evt_{i}" for i in range(600)])
    pull.collect([f"evt_{i}" for i in range(600, 1300)])
    assert len(pull.collected_event_ids) == 1000
    assert pull.collected_event_ids[-1] == "evt_999"
    assert pull.collected_events_count == 1300
    assert pull.public().collected_events_count == 1300


def test_due_keys_sort_as_their_times_do() -> None:
    assert due_key(999.5, "b") < due_key(1000.0, "a") < due_key(1_700_000_000.0, "a")


def test_a_paused_subscription_is_never_due_but_its_running_pull_still_is() -> None:
    subscription = StoredSubscription(
        id="sub_1",
        tenant_id="t",
        connection_id="c",
        provider="stripe",
        collection="customers",
        full_sync_interval_seconds=60,
        backfill=True,
        max_age_days=None,
        created_at="x",
        updated_at="x",
        status="paused",
        next_pull_at=5.0,
    )
    assert subscription.due_at is None
    subscription.running_pull_id, subscription.lease_until = "pull_1", 9.0
    assert subscription.due_at == 9.0
