"""Time, injectable so tests control it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Returns seconds since the epoch, like `time.time`."""

system_clock: Clock = time.time


def to_iso(epoch_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, the contract's time format."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
