"""What the consumer operations share (`Consumers`): the store, the cursor codec that signs ack ids, the
log's reader, a clock, a sleep and an observer for metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pullbridge.clock import Clock, system_clock
from pullbridge.consumers.records import StoredConsumer
from pullbridge.cursors import CursorCodec
from pullbridge.events import EventReader
from pullbridge.storage import Store


class ConsumerObserver(Protocol):
    """What the consumers report, for metrics (`pullbridge.observability.ConsumerMetrics`)."""

    def delivered(self, consumer: StoredConsumer, *, first: int, again: int, dead: int) -> None: ...

    def described(self, consumer: StoredConsumer, *, pending: int, lag_seconds: float) -> None: ...


class _Unobserved:
    def delivered(self, consumer: StoredConsumer, *, first: int, again: int, dead: int) -> None:
        pass

    def described(self, consumer: StoredConsumer, *, pending: int, lag_seconds: float) -> None:
        pass


@dataclass
class Consumers:
    """What the consumer operations share: the store, the cursor codec (ack ids), the log's reader."""

    store: Store
    codec: CursorCodec
    reader: EventReader
    clock: Clock = system_clock
    sleep: Callable[[float], None] = time.sleep
    observer: ConsumerObserver = field(default_factory=_Unobserved)
