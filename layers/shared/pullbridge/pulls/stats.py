"""The counters a pull record shows as `stats`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class PullStats:
    pages: int = 0
    requests: int = 0
    records_seen: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
