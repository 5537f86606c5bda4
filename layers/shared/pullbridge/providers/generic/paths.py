"""Reading the values a generic connection's JSON paths point at, in webhooks and list pages alike."""

from __future__ import annotations

from typing import Any

from pullbridge.providers.base import epoch_seconds, parse_iso_time


def resolve(payload: Any, path: str | None) -> Any:
    """The value at a dotted path (`$.a.b`, `items.0.id`), or None when the path is unset or leads nowhere."""
    if path is None:
        return None
    found = payload
    for segment in path.removeprefix("$.").split("."):
        if isinstance(found, dict):
            found = found.get(segment)
        elif (
            isinstance(found, list) and segment.isascii() and segment.isdigit() and int(segment) < len(found)
        ):
            found = found[int(segment)]
        else:
            return None
    return found


def id_string(value: object) -> str | None:
    """An id as the log keeps it: a non-empty string, or an integer as its decimal string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def time_seconds(value: object) -> float | None:
    """A time as seconds since the epoch, or as ISO-8601 text; None for anything else."""
    return parse_iso_time(value) if isinstance(value, str) else epoch_seconds(value)
