"""The `Retry-After` and backoff rules, one table run against both copies: the server's `pullbridge.retry`
(provider pulls) and the client package's `pullbridge_client.retry`. The layer cannot import the client
package, so there are two files; this table is what keeps them the same."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType

import httpx
import pytest

import pullbridge_client.retry as client_retry
from pullbridge import retry as server_retry

IMPLEMENTATIONS = [pytest.param(server_retry, id="server"), pytest.param(client_retry, id="client")]

NOW = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def _until(year: int, month: int, day: int) -> float:
    return datetime(year, month, day, tzinfo=UTC).timestamp() - NOW


RETRY_AFTER_CASES = [
    # delta-seconds
    ("120", 120.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("0.25", 0.25),
    ("007", 7.0),
    (" 7 ", 7.0),
    ("\t7\t", 7.0),
    ("86400000", 86400000.0),  # huge but well-formed: how long is too long is the caller's rule
    ("9" * 64, float("9" * 64)),
    ("1" * 65, None),  # overlong
    # not delta-seconds
    ("-1", None),
    ("-0.5", None),
    ("+5", None),
    ("1e3", None),
    ("inf", None),
    ("Infinity", None),
    ("nan", None),
    ("NaN", None),
    (".5", None),
    ("5.", None),
    ("1,5", None),
    ("1 2", None),
    ("١٢", None),  # non-ASCII digits
    ("soon", None),
    ("", None),
    ("   ", None),
    (None, None),
    # HTTP-date: IMF-fixdate
    ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),
    ("Thu, 01 Jan 2026 00:00:00 GMT", 0.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: retry at once
    ("Mon, 01 Jan 2026 00:02:00 GMT", 120.0),  # a wrong weekday is not checked
    (" Thu, 01 Jan 2026 00:02:00 GMT ", 120.0),
    # HTTP-date: the obsolete RFC 850 form, two-digit years
    ("Thursday, 01-Jan-26 00:01:00 GMT", 60.0),
    ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # 1994, not 2094
    ("Wednesday, 01-Jan-76 00:00:00 GMT", _until(2076, 1, 1)),  # 50 years ahead: still this century
    ("Saturday, 01-Jan-77 00:00:00 GMT", 0.0),  # 51 years ahead: 1977
    # HTTP-date: asctime
    ("Thu Jan  1 00:00:30 2026", 30.0),
    ("Sun Nov  6 08:49:37 1994", 0.0),
    ("Fri Jan 02 00:00:00 2026", 86400.0),
    # not an HTTP-date
    ("Sat, 31 Feb 2026 00:00:00 GMT", None),
    ("Thu, 01 Jan 2026 25:00:00 GMT", None),
    ("Thu, 01 Jan 2026 00:02:00 UTC", None),
    ("Thu, 01 Jan 2026 00:02:00 +0000", None),
    ("Thu, 01 Jan 2026 00:02:00", None),
    ("thu, 01 jan 2026 00:02:00 gmt", None),
    ("Thu, 1 Jan 2026 00:02:00 GMT", None),
    ("Thursday, 01-Jan-2026 00:01:00 GMT", None),
    ("2026-01-01T00:02:00Z", None),
]


@pytest.mark.parametrize("retry", IMPLEMENTATIONS)
@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER_CASES)
def test_retry_after_seconds(retry: ModuleType, value: str | None, expected: float | None) -> None:
    assert retry.retry_after_seconds(value, now=NOW) == expected


BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0
BACKOFF_CASES = [
    # attempt, random(), seconds
    (0, 0.0, 0.25),
    (0, 1.0, 0.5),
    (0, 0.5, 0.375),
    (1, 0.0, 0.5),
    (1, 1.0, 1.0),
    (2, 0.0, 1.0),
    (2, 1.0, 2.0),
    (5, 0.0, 8.0),
    (5, 1.0, 16.0),
    (6, 0.0, 15.0),  # 0.5 * 2**6 = 32: capped at 30
    (6, 1.0, 30.0),
    (1_000, 0.0, 15.0),  # no overflow however many attempts
    (1_000, 1.0, 30.0),
    (10**12, 1.0, 30.0),
    (0, 2.0, 0.5),  # a random source out of [0, 1] cannot break the bounds
    (0, -1.0, 0.25),
]


@pytest.mark.parametrize("retry", IMPLEMENTATIONS)
@pytest.mark.parametrize(("attempt", "draw", "expected"), BACKOFF_CASES)
def test_backoff_seconds(retry: ModuleType, attempt: int, draw: float, expected: float) -> None:
    random: Callable[[], float] = lambda: draw  # noqa: E731

    assert retry.backoff_seconds(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP, random=random) == expected


@pytest.mark.parametrize("retry", IMPLEMENTATIONS)
def test_a_negative_attempt_is_refused(retry: ModuleType) -> None:
    with pytest.raises(ValueError, match="attempt"):
        retry.backoff_seconds(-1, base=BACKOFF_BASE, cap=BACKOFF_CAP, random=lambda: 0.0)


def _code_without_docstring(module: ModuleType) -> str:
    tree = ast.parse(inspect.getsource(module))
    docstring, *body = tree.body
    assert isinstance(docstring, ast.Expr)
    assert isinstance(docstring.value, ast.Constant)
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def test_the_two_copies_are_the_same_code() -> None:
    """Only their docstrings differ (each says where the other is)."""
    assert _code_without_docstring(server_retry) == _code_without_docstring(client_retry)


# --- the two callers: the client's reading of an error response, and the puller's 429 handling ----------

DATE_HEADER = "Thu, 01 Jan 2026 00:00:00 GMT"  # NOW, as the responding server's clock reads it
CALLER_CASES = [
    (value, expected) for value, expected in RETRY_AFTER_CASES if expected is not None and expected <= 600
]


def _client_wait(retry_after: str, date: str) -> float | None:
    from pullbridge_client.errors import response_retry_after

    return response_retry_after(httpx.Response(429, headers={"retry-after": retry_after, "date": date}))


def _puller_wait(retry_after: str, date: str) -> float | None:
    from pullbridge.pulls.http import PullHttp
    from pullbridge.pulls.stats import PullStats

    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": retry_after, "Date": date}),
            httpx.Response(200, json={}),
        ]
    )
    client = httpx.Client(transport=httpx.MockTransport(lambda _: next(answers)))
    sleeps: list[float] = []
    PullHttp(client, PullStats(), allow_private=True, sleep=sleeps.append, max_backoff_seconds=600).get_json(
        "http://127.0.0.1:9/v1/customers"
    )
    return sleeps[0] if sleeps else None


CALLERS = [pytest.param(_puller_wait, id="puller"), pytest.param(_client_wait, id="client")]


@pytest.mark.parametrize("wait", CALLERS)
@pytest.mark.parametrize(("value", "expected"), CALLER_CASES)
def test_the_client_and_the_puller_wait_what_the_rules_say(
    wait: Callable[[str, str], float | None], value: str, expected: float
) -> None:
    """An HTTP-date is measured against the response's own `Date`, so these are exact on any clock."""
    assert wait(value, DATE_HEADER) == expected
