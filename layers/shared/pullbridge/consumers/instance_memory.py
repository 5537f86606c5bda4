"""What this instance remembers of each consumer between its receives (at most 10,000 consumers each,
forgotten all at once past that): how many events it last saw in flight, where it last found the end
of the consumer's log, and the pace at which the consumer's stretches of the log are done with. None of
it decides anything: it tells a receive how to read (whole or filtered, from the head or its stretch)
and how long to wait, and the conditional writes decide."""

from __future__ import annotations

from dataclasses import dataclass

PACE_SECONDS = 0.25
"""The pace of a consumer's stretches is measured over at least this long (`Pace`)."""
seen_in_flight: dict[str, int] = {}
"""How many events each consumer had in flight when this instance last read its state."""
paces: dict[str, Pace] = {}
log_ends: dict[str, int] = {}
"""Where this instance last found the end of each consumer's log (a read that held all the log had)."""


@dataclass
class Pace:
    """How fast the stretches of one consumer are done with, as this instance saw `fin` move: the
    positions a second, a moving average. It tells a receive how long those before it should take."""

    at: float | None = None
    decided: int = 0
    rate: float = 0.0

    def saw(self, at: float, decided: int) -> None:
        if self.at is None or decided < self.decided:  # the first look, or a seek: start again
            self.at, self.decided, self.rate = at, decided, 0.0
        elif decided > self.decided and at - self.at >= PACE_SECONDS:
            rate = (decided - self.decided) / (at - self.at)
            self.rate = rate if self.rate == 0.0 else 0.7 * self.rate + 0.3 * rate
            self.at, self.decided = at, decided

    def wait_for(self, start: int, decided: int) -> float:
        """The seconds until `fin` reaches `start` from `decided`, at this pace (0 when unknown)."""
        return max(0, start - decided) / self.rate if self.rate > 0 else 0.0


def pace_of(consumer_id: str) -> Pace:
    pace = paces.get(consumer_id)
    if pace is None:
        if len(paces) >= 10_000:
            paces.clear()
        pace = paces[consumer_id] = Pace()
    return pace


def remember_in_flight(consumer_id: str, count: int) -> None:
    if len(seen_in_flight) >= 10_000:
        seen_in_flight.clear()
    seen_in_flight[consumer_id] = count
