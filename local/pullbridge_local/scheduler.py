"""Runs the template's schedules in a background thread, as EventBridge would invoke the functions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    rate_seconds: float
    run: Callable[[], object]


class Scheduler:
    """Runs each job at its rate, one run at a time.

    A failing run is logged and the schedule goes on. A run that overruns its rate is followed by the
    next one at once, without catching up on the runs it missed.
    """

    def __init__(self, jobs: list[ScheduledJob], *, first_run_after_seconds: float) -> None:
        self._jobs = jobs
        self._first_run_after_seconds = first_run_after_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run_forever, name="local-scheduler", daemon=True)

    def start(self) -> None:
        if self._jobs:
            self._thread.start()

    def stop(self, *, timeout_seconds: float = 10) -> None:
        """Stops after the run in progress, if any, waiting at most `timeout_seconds` for it."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_seconds)

    def _run_forever(self) -> None:
        first_run_at = time.monotonic() + self._first_run_after_seconds
        due_at = [first_run_at] * len(self._jobs)
        while True:
            index = min(range(len(self._jobs)), key=due_at.__getitem__)
            if self._stopping.wait(max(0.0, due_at[index] - time.monotonic())):
                return
            job = self._jobs[index]
            try:
                job.run()
            except Exception:
                logger.exception("scheduled run of %s failed", job.name)
            due_at[index] = max(due_at[index] + job.rate_seconds, time.monotonic())
