"""When a subscription pulls, and what: a full scan every `full_sync_interval_seconds`, and between them,
with `pull_updates_interval_seconds`, incremental pulls of what changed since the high-water mark.

- The **high-water mark** (`StoredSubscription.updates_mark`) is the start of the last pull that
  succeeded: everything that changed before it is in the snapshot. A full scan sets it, and so does an
  incremental pull; a failed pull leaves it where it was.
- An incremental pull asks for the changes since the mark less `OVERLAP_SECONDS`: the provider's clock
  and ours may differ a little, and a change may become visible in its list a little after it is made.
- A full scan runs instead when there is no mark yet (the first scan, or a subscription from before
  marks), when one is due, or when the mark is older than the provider looks back (Stripe lists 30 days
  of events).
- Incremental pulls keep to a grid from the time the first was due (`due + n * interval`), so with an
  interval of 60 s and a schedule that ticks every minute one runs at every tick, instead of every other
  tick as `start + interval` would have it (a pull starts a moment after its tick).
"""

from __future__ import annotations

import math

from pullbridge.pulls.records import StoredPull, StoredSubscription

OVERLAP_SECONDS = 120.0
"""How far before the mark an incremental pull asks from: clock skew and the provider's own lag."""


def wants_full_scan(subscription: StoredSubscription, now: float, lookback_seconds: float | None) -> bool:
    """Whether the pull due now is a full scan (or else an incremental pull)."""
    mark = subscription.updates_mark
    if subscription.pull_updates_interval_seconds is None or not subscription.baseline_done or mark is None:
        return True
    if subscription.next_full_scan_at is None or now >= subscription.next_full_scan_at:
        return True
    return lookback_seconds is not None and now - updates_since(mark) > lookback_seconds


def updates_since(mark: float) -> float:
    """The time an incremental pull asks from: whole seconds, as list APIs take them."""
    return float(math.floor(mark - OVERLAP_SECONDS))


def after_pull(subscription: StoredSubscription, pull: StoredPull, *, succeeded: bool, now: float) -> None:
    """Move the mark and the next pull's time on `subscription` (the record as it is now, its
    `baseline_done` already set) once `pull` has ended."""
    due = subscription.next_pull_at
    if pull.is_full_scan:
        subscription.next_full_scan_at = pull.started_at + subscription.full_sync_interval_seconds
    if succeeded and (pull.is_full_scan or pull.updated_since is not None):
        subscription.updates_mark = pull.started_at
    next_full = subscription.next_full_scan_at or pull.started_at + subscription.full_sync_interval_seconds
    subscription.next_pull_at = next_full
    interval = subscription.pull_updates_interval_seconds
    if interval is not None and subscription.updates_mark is not None and subscription.baseline_done:
        # The grid runs from when this pull was due (a triggered pull: when it started).
        anchor = due if due is not None and due <= pull.started_at else pull.started_at
        subscription.next_pull_at = min(next_full, next_on_grid(anchor, interval, now))


def next_on_grid(anchor: float, interval: float, now: float) -> float:
    """The first time after `now` of the form `anchor + n * interval` (n >= 1)."""
    steps = max(1, math.floor((now - anchor) / interval) + 1)
    return anchor + steps * interval


def reschedule_updates(subscription: StoredSubscription, now: float) -> None:
    """After `pull_updates_interval_seconds` changed on an idle subscription: the next pull is the next
    full scan, or the next incremental pull if that comes first."""
    if subscription.running_pull_id is not None or subscription.next_full_scan_at is None:
        return  # the pull under way plans the next; before the first scan nothing is planned but it
    interval = subscription.pull_updates_interval_seconds
    subscription.next_pull_at = subscription.next_full_scan_at
    if interval is not None and subscription.updates_mark is not None:
        subscription.next_pull_at = min(subscription.next_full_scan_at, now + interval)
