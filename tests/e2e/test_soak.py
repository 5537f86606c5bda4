"""The soak (bench/soak, `make soak`) end to end: a 60-second run under faults keeps every guarantee, and
the checker catches each deliberately broken build it claims to catch, from the history of a real run
of that build (the break is made in the stack's worker processes: `bench.soak.builds`).

The broken runs are short and aimed: each uses the faults and timing that make its bug show, and asserts
the violation that names it, with the history lines of the offending operations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak.checker import (
    DELETE_FROM_FAILED_SCAN,
    PHANTOM_DELETE,
    POLLER_GAP,
    Violation,
    describe,
)
from bench.soak.run import SoakConfig, SoakResult, run_soak
from bench.soak.summary import summary
from tests.fakes.provider_server import FakeProviderServer

pytestmark = pytest.mark.e2e

SEED = 18
FAULTS = "dynamodb:0.1,provider:0.2,kill.after@IngestFunction:0.01,kill.taken@IngestFunction:0.2"
"""The issue's plan, and worker kills: an ingest dying after its commit landed (the provider redelivers
it), or between taking log positions and committing them (readers wait, then fence the gap)."""


def _soak(out: Path, **options: object) -> SoakResult:
    result = run_soak(SoakConfig(out=out, **options))  # type: ignore[arg-type]
    assert result.crashes == [], result.crashes
    return result


def _found(result: SoakResult, kind: str) -> list[Violation]:
    return [violation for violation in result.report.violations if violation.kind == kind]


@pytest.mark.timeout(150)
def test_a_60_second_soak_under_faults_keeps_every_guarantee(tmp_path: Path) -> None:
    result = _soak(tmp_path, duration=60, seed=SEED, faults=FAULTS)

    report = result.report
    print(summary(result))  # shown when the test fails, with the history's lines
    assert report.violations == [], describe(result.history, report)
    assert report.notes == []
    # It did what it says, under the faults it says
    for kind in (
        "webhook (first)",
        "webhook (2xx)",
        "poll",
        "consumer receive",
        "consumer ack",
        "consumer nack",
        "consumer extend",
        "consumer term",
        "death",
        "mutation create",
        "trigger",
        "upstream created",
        "upstream updated",
        "upstream deleted",
    ):
        assert report.operations[kind] > 0, kind
    assert {fault.split(".")[0] for fault in report.faults} == {"dynamodb", "provider", "kill"}
    assert report.checked["deliveries answered 2xx after a 5xx"] > 0
    assert report.checked["5xx answers"] > 0
    assert report.checked["successful full scans replayed"] >= 4
    assert report.checked["records compared"] > 0
    assert report.checked["succeeded mutations"] > 0


def test_the_checker_catches_a_reader_that_skips_gaps(tmp_path: Path) -> None:
    # Writers that take positions by ADD (under conflicts) and take a second to commit them: a correct
    # reader waits at the gap; this one passes it, and what lands there later is behind every poller.
    result = _soak(
        tmp_path,
        duration=20,
        seed=SEED,
        faults="dynamodb.conflict@IngestFunction:0.5",
        broken=("reader_skips_gaps",),
        conditions=("slow_add",),
    )

    gaps = _found(result, POLLER_GAP)
    assert gaps, describe(result.history, result.report)
    for gap in gaps:
        logged, passed = (result.history[line] for line in gap.lines)
        assert logged["t"] == "log"  # the event the poller never saw
        assert passed["t"] == "poll"  # the page that went past its position
        positions = [line["position"] for line in result.history if line["t"] == "log"]
        assert logged["position"] in positions


def test_the_checker_catches_a_consumer_that_acks_before_the_lease_check(tmp_path: Path) -> None:
    # Workers that ack every batch late (after its leases ran out): a correct build answers those acks
    # `expired`; this one answers them acked, and takes the event from whoever holds it now.
    result = _soak(
        tmp_path, duration=15, seed=SEED, faults="", broken=("ack_before_lease_check",), late_acks=1.0
    )

    late = _found(result, "consumer.ack_after_expiry")
    assert late, describe(result.history, result.report)
    for violation in late:
        received, acked = result.history[violation.lines[0]], result.history[violation.lines[-1]]
        assert (received["t"], acked["t"], acked["op"]) == ("receive", "settle", "ack")
        assert acked["worker"] == received["worker"]
        assert acked["at"] > min(_lease_ends(received))


def _lease_ends(receive: dict[str, object]) -> list[float]:
    from bench.soak.checker import epoch

    deliveries = receive["deliveries"]
    assert isinstance(deliveries, list)
    return [epoch(item["lease_expires_at"]) or 0.0 for item in deliveries]


def _fail_a_second_page(fake: FakeProviderServer, trigger: int) -> None:
    """From the third trigger on, every other one: the next scan to ask for a second page gets a 400."""
    if trigger >= 3 and trigger % 2:
        fake.fail_with(400, on_page=2, times=1)


def test_the_checker_catches_a_scan_that_deletes_on_failure(tmp_path: Path) -> None:
    # After a first scan of each subscription, frequent scans, now and then refused at their second page
    # (a 400: the scan fails part-way, after a first page that went well); this build then logs `deleted`
    # for every record of the snapshot it had not reached.
    result = _soak(
        tmp_path,
        duration=15,
        seed=SEED,
        faults="",
        broken=("scan_deletes_on_failure",),
        trigger_every=(0.5, 1.5),
        before_trigger=_fail_a_second_page,
        initial_scans=True,
    )

    failed = _found(result, DELETE_FROM_FAILED_SCAN)
    assert failed, describe(result.history, result.report)
    assert _found(result, PHANTOM_DELETE)
    pulls = {pull["id"]: pull for line in result.history if line["t"] == "pulls" for pull in line["pulls"]}
    for violation in failed:
        deleted = result.history[violation.lines[-1]]["event"]
        assert (deleted["source"], deleted["action"]) == ("pull", "deleted")
        assert pulls[deleted["pull_id"]]["status"] == "error"
