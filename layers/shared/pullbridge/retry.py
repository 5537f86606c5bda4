"""When to retry: how long a `Retry-After` asks to wait, and the backoff between other retries.

Pure functions: the caller passes the clock and the random source, so the rules are tested exactly.

`retry_after_seconds(value, now=...)` reads a `Retry-After` header (RFC 9110, section 10.2.3):
- Surrounding whitespace is ignored. No value, an empty one, or one over 64 characters: None.
- **delta-seconds**: ASCII digits, optionally with a decimal fraction (`120`, `1.5`): that many seconds.
  Some servers send fractions; the RFC's integer form is the special case. A sign, an exponent, `inf`,
  `nan` or anything else: None.
- **HTTP-date** in any of the RFC's three forms, always GMT: the IMF-fixdate
  `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850 form `Sunday, 06-Nov-94 08:49:37 GMT` (a
  two-digit year more than 50 years ahead means the century before) and asctime
  `Sun Nov  6 08:49:37 1994`. The weekday is not checked against the date. The wait is the date less
  `now` (epoch seconds: the caller's clock, or the response's own `Date` when it has one, so clock skew
  does not matter); a date in the past means 0, retry at once.
- The result is never negative, NaN or infinite. How long is too long to wait is the caller's rule.

`wait_for(retry_after, date, now=...)` is what both callers use: the `Retry-After` of a response, with
`now` taken from its `Date` header when that is readable (`http_date_seconds`).

`backoff_seconds(attempt, base=..., cap=..., random=...)` is exponential backoff with "equal jitter":
the ceiling is `min(cap, base * 2**attempt)` (attempt 0 is the first retry; the exponent stops growing
at 32, so a huge attempt neither overflows nor takes long), and the wait is uniform in
`[ceiling / 2, ceiling]`: `ceiling / 2 + random() * ceiling / 2`, with `random()` in [0, 1]. Half of each
wait is guaranteed, so retries stay spaced out; the other half spreads many clients apart.

This module is the server's copy of the client package's `pullbridge_client.retry`
(clients/python/src/pullbridge_client/retry.py), for the provider pulls: the Lambda layer ships only the
functions' own code and cannot import the client package, and the client imports no server module.
tests/unit/test_retry_rules.py runs one table of cases against both, so they cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["backoff_seconds", "http_date_seconds", "retry_after_seconds", "wait_for"]

MAX_RETRY_AFTER_LENGTH = 64
MAX_BACKOFF_EXPONENT = 32

_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_IMF_FIXDATE = re.compile(rf"{_WEEKDAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT")
_RFC_850 = re.compile(rf"{_LONG_WEEKDAY}, (?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT")
_ASCTIME = re.compile(rf"{_WEEKDAY} {_MONTH} (?P<day>[ 0-9][0-9]) {_TIME} (?P<year>[0-9]{{4}})")


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """The seconds a `Retry-After` value asks to wait (>= 0), or None when it is absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > MAX_RETRY_AFTER_LENGTH:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    moment = _http_date(text, now=now)
    if moment is None:
        return None
    return max(0.0, moment - now)


def http_date_seconds(value: str | None, *, now: float) -> float | None:
    """An HTTP-date header (a response's `Date`) as epoch seconds, None when absent or unreadable."""
    text = (value or "").strip()
    if not text or len(text) > MAX_RETRY_AFTER_LENGTH:
        return None
    return _http_date(text, now=now)


def wait_for(retry_after: str | None, date: str | None, *, now: float) -> float | None:
    """The wait a response's `Retry-After` asks for, with an HTTP-date measured against the response's own
    `Date` when it has a readable one, so a skewed local clock does not stretch or cut the wait."""
    server_now = http_date_seconds(date, now=now)
    return retry_after_seconds(retry_after, now=now if server_now is None else server_now)


def _http_date(text: str, *, now: float) -> float | None:
    """An HTTP-date as epoch seconds, None when it is none of the three forms or no real date."""
    match = _IMF_FIXDATE.fullmatch(text) or _ASCTIME.fullmatch(text)
    if match is not None:
        year = int(match["year"])
    else:
        match = _RFC_850.fullmatch(text)
        if match is None:
            return None
        year = _full_year(int(match["year"]), now=now)
    try:
        moment = datetime(
            year,
            _MONTHS[match["month"]],
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=UTC,
        )
    except ValueError:  # e.g. 31 Feb or 25:00:00
        return None
    return moment.timestamp()


def _full_year(two_digits: int, *, now: float) -> int:
    """RFC 9110: a two-digit year that would be more than 50 years in the future is in the past century."""
    this_year = datetime.fromtimestamp(now, UTC).year
    year = this_year - this_year % 100 + two_digits
    return year - 100 if year > this_year + 50 else year


def backoff_seconds(attempt: int, *, base: float, cap: float, random: Callable[[], float]) -> float:
    """The wait before retry number `attempt` (0 for the first): uniform in [ceiling / 2, ceiling]."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    ceiling = min(cap, base * 2.0 ** min(attempt, MAX_BACKOFF_EXPONENT))
    share = min(1.0, max(0.0, random()))  # a source outside [0, 1] must not break the bounds
    return ceiling / 2 + share * ceiling / 2
