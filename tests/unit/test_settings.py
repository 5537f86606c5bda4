"""Settings per function: each validates at cold start what it needs, and only that."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pullbridge.settings import (
    AdminSettings,
    ApiSettings,
    IngestSettings,
    PullerSettings,
    StorageSettings,
)
from tests.paths import REPO_ROOT

TABLES = {"EVENTS_TABLE": "events", "CONTROL_TABLE": "control"}
CURSOR_KEY = "k" * 40
API = TABLES | {
    "CURSOR_SECRET": CURSOR_KEY,
    "PULLER_FUNCTION_NAME": "stack-PullerFunction-1",
    "IDEMPOTENCY_TABLE": "idempotency",
}


def test_settings_come_from_the_environment_variables() -> None:
    settings = PullerSettings.from_environ(
        TABLES
        | {"RETENTION_DAYS": "7", "PULLBRIDGE_ALLOW_PRIVATE_URLS": "1", "WRITE_DEADLINE_SECONDS": "2.5"}
    )
    assert (settings.events_table, settings.control_table) == ("events", "control")
    assert (settings.retention_days, settings.allow_private_urls, settings.write_deadline_seconds) == (
        7,
        True,
        2.5,
    )


@pytest.mark.parametrize("kind", [IngestSettings, PullerSettings, AdminSettings])
def test_functions_other_than_the_api_need_no_cursor_secret_or_puller(kind: type[StorageSettings]) -> None:
    assert kind.from_environ(TABLES).events_table == "events"


def test_the_api_starts_with_a_cursor_secret_and_a_puller() -> None:
    settings = ApiSettings.from_environ(API)
    assert settings.puller_function_name == "stack-PullerFunction-1"
    assert settings.cursor_key(fetch_secret=lambda arn: pytest.fail(f"fetched {arn}")) == CURSOR_KEY


def test_the_api_fetches_its_cursor_secret_by_arn() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cursor-AbCdEf"
    environ = TABLES | {"CURSOR_SECRET_ARN": arn, "PULLER_FUNCTION_NAME": "p", "IDEMPOTENCY_TABLE": "i"}
    fetched: list[str] = []
    key = ApiSettings.from_environ(environ).cursor_key(lambda name: fetched.append(name) or CURSOR_KEY)
    assert (key, fetched) == (CURSOR_KEY, [arn])


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "EVENTS_TABLE"),
        ({"EVENTS_TABLE": "ev"}, "EVENTS_TABLE"),
        (TABLES | {"RETENTION_DAYS": "0"}, "RETENTION_DAYS"),
        (TABLES | {"WRITE_DEADLINE_SECONDS": "soon"}, "WRITE_DEADLINE_SECONDS"),
        (TABLES | {"CONTROL_TABLE": ""}, "CONTROL_TABLE"),  # empty is unset, not a name
    ],
    ids=["nothing", "short-table-name", "zero-retention", "unreadable-deadline", "empty-control-table"],
)
def test_missing_or_invalid_storage_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(
        RuntimeError, match=rf"invalid pullbridge configuration \(IngestSettings\): .*{named}"
    ):
        IngestSettings.from_environ(environ)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            TABLES | {"PULLER_FUNCTION_NAME": "p", "IDEMPOTENCY_TABLE": "i"},
            "set exactly one of CURSOR_SECRET",
        ),
        (API | {"CURSOR_SECRET_ARN": "arn:aws:secretsmanager:x"}, "set exactly one of CURSOR_SECRET"),
        (TABLES | {"CURSOR_SECRET": CURSOR_KEY}, "PULLER_FUNCTION_NAME: required"),
        (API | {"CURSOR_SECRET": "short"}, "CURSOR_SECRET: needs at least 32 characters"),
        (API | {"PULLER_FUNCTION_NAME": ""}, "PULLER_FUNCTION_NAME: required"),
        (API | {"IDEMPOTENCY_TABLE": ""}, "IDEMPOTENCY_TABLE: required"),
    ],
    ids=[
        "no-cursor-secret",
        "two-cursor-secrets",
        "no-puller",
        "short-cursor-secret",
        "empty-puller",
        "no-idempotency-table",
    ],
)
def test_the_api_refuses_to_start_without_exactly_one_cursor_secret_and_a_puller(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        ApiSettings.from_environ(environ)


def test_the_cursor_secret_is_never_in_the_settings_repr_or_errors() -> None:
    assert CURSOR_KEY not in repr(ApiSettings.from_environ(API))
    with pytest.raises(RuntimeError) as refused:
        ApiSettings.from_environ(API | {"CURSOR_SECRET_ARN": "arn:aws:secretsmanager:x"})
    assert CURSOR_KEY not in str(refused.value)


def test_a_misconfigured_api_function_fails_its_cold_start_with_the_reason() -> None:
    """Imported as Lambda imports it, in a fresh interpreter: the import itself fails, with the message."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CURSOR_SECRET", "CURSOR_SECRET_ARN", "PULLER_FUNCTION_NAME"}
    }
    environ |= TABLES | {
        "PULLER_FUNCTION_NAME": "p",
        "IDEMPOTENCY_TABLE": "i",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    path = os.pathsep.join(
        [str(REPO_ROOT / "functions" / "api"), str(REPO_ROOT / "layers" / "shared"), *sys.path[1:]]
    )
    started = subprocess.run(
        [sys.executable, "-c", "import app"],
        env=environ | {"PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "invalid pullbridge configuration (ApiSettings)" in started.stderr
    assert "set exactly one of CURSOR_SECRET" in started.stderr
