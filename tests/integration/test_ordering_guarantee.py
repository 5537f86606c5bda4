"""The delivery guarantee under concurrency: every poller that follows `next_cursor` sees every event of
its filter exactly once, in one order, while writers stall between taking a position and committing
(see tests/ordering_scenario.py for the scenario)."""

from __future__ import annotations

import dataclasses

from pullbridge.settings import ApiSettings
from tests.conftest import CURSOR_SECRET
from tests.ordering_scenario import run_scenario

WRITERS_PER_CONNECTION = 3
EVENTS_PER_WRITER = 15


def test_pollers_see_every_event_exactly_once_in_one_order_despite_stalled_writers(
    settings: ApiSettings,
) -> None:
    result = run_scenario(
        dataclasses.replace(settings, write_deadline_seconds=0.4),
        CURSOR_SECRET,
        writers_per_connection=WRITERS_PER_CONNECTION,
        events_per_writer=EVENTS_PER_WRITER,
    )
    assert len(result.every_event) == 2 * WRITERS_PER_CONNECTION * EVENTS_PER_WRITER
    assert result.long_stalls > 0, "the scenario must stall some writers past the deadline"
    # Both allocation paths ran: each writer's first commit follows an ADD, and later ones move the head
    assert result.head_moving_commits > 0, "no commit moved the head itself"
    reference = result.seen[0]
    for filters, seen in zip(result.filters, result.seen, strict=True):
        expected = result.expected_for(filters)
        assert len(seen) == len(set(seen)), "a poller saw an event twice"
        assert set(seen) == expected, "a poller skipped or invented events"
        # One order: every poller saw its events in the order of the unfiltered log
        assert seen == [event_id for event_id in reference if event_id in expected]
