"""The delivery guarantee under concurrency, summarised (the approach of
`tests/integration/test_ordering_guarantee.py`): writers in separate Stores stall between taking a position
and committing it, some past the write deadline so readers fence their positions and they retry; one
writer dies holding a position; pollers follow `next_cursor` at random page sizes, unfiltered and per
connection. Counted: events committed, and per poller the events it skipped and saw twice."""

from __future__ import annotations

from bench.bench_common import CURSOR_SECRET, Rig, figure, log
from tests.ordering_scenario import run_scenario

DEADLINE_SECONDS = 0.4


def run(rig: Rig) -> None:
    settings = rig.fresh_tables(write_deadline_seconds=DEADLINE_SECONDS)
    result = run_scenario(settings, CURSOR_SECRET)
    skips = dups = out_of_order = 0
    reference = result.seen[0]
    for filters, seen in zip(result.filters, result.seen, strict=True):
        expected = result.expected_for(filters)
        skips += len(expected - set(seen))
        dups += len(seen) - len(set(seen))
        out_of_order += seen != [event_id for event_id in reference if event_id in expected]
    log(
        f"exactly once: {len(result.every_event)} events, {result.long_stalls} commits stalled past the "
        f"deadline, {result.head_moving_commits} commit attempts that moved the head themselves (landed or cancelled), "
        f"pollers saw {[len(seen) for seen in result.seen]}"
    )
    figure(
        "exactly_once",
        f"events={len(result.every_event)} pollers={len(result.filters)} skips={skips} dups={dups} "
        f"out_of_order={out_of_order}",
    )
