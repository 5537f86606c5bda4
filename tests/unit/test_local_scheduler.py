"""The local scheduler: each job at its rate, failures logged, never dying."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from pullbridge_local.scheduler import ScheduledJob, Scheduler


def test_each_job_runs_first_after_the_delay_and_then_at_its_rate() -> None:
    runs: dict[str, list[float]] = {"fast": [], "slow": []}
    started = time.monotonic()
    jobs = [
        ScheduledJob("fast", 0.1, lambda: runs["fast"].append(time.monotonic() - started)),
        ScheduledJob("slow", 10, lambda: runs["slow"].append(time.monotonic() - started)),
    ]
    scheduler = Scheduler(jobs, first_run_after_seconds=0.2)

    scheduler.start()
    time.sleep(0.65)
    scheduler.stop()

    fast = runs["fast"]
    assert fast[0] >= 0.2
    assert len(fast) >= 2
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(fast))
    assert len(runs["slow"]) == 1


def test_a_failing_run_is_logged_and_the_schedule_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    attempts = []
    third_run = threading.Event()

    def fail() -> None:
        attempts.append(1)
        if len(attempts) == 3:
            third_run.set()
        raise RuntimeError("provider down")

    scheduler = Scheduler([ScheduledJob("puller", 0.01, fail)], first_run_after_seconds=0)
    scheduler.start()

    assert third_run.wait(5)
    scheduler.stop()
    assert "scheduled run of puller failed" in caplog.text


def test_stopping_returns_promptly_between_runs() -> None:
    scheduler = Scheduler([ScheduledJob("rare", 3600, lambda: None)], first_run_after_seconds=3600)
    scheduler.start()
    started = time.monotonic()

    scheduler.stop()

    assert time.monotonic() - started < 1
