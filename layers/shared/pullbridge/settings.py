"""Deployment settings per function, read from the environment once per cold start and validated.

Each function validates what it needs and only that: the ingest function does not need the cursor
secret, and the API cannot start without one. What a deployment must decide (the table names, the API's
cursor secret and puller) has no default; a missing or invalid value fails the cold start with a message
that names the environment variables, so a misconfigured stack fails at once instead of on a request.
The defaults of the rest are the ones `template.yaml` states.

These are frozen dataclasses with their own checks, not pydantic models: every function reads them at
cold start, and on the webhook path, which loads no pydantic at all, pydantic's import and six models'
schema builds would cost about 90 ms of every cold start (`make bench`, `cold_init_ratio_ingest`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Self, TypeVar


class SettingsInvalid(RuntimeError):
    """A function's environment cannot run it; the message names each variable and what is wrong."""


@dataclass(frozen=True)
class Variable:
    """One setting's environment variable, how its text is read, and what a valid value is."""

    name: str
    parse: Callable[[str], Any] = str
    check: Callable[[Any], str | None] = lambda _: None


def _text(min_length: int = 1) -> Callable[[Any], str | None]:
    return lambda value: None if len(value) >= min_length else f"needs at least {min_length} characters"


def _between(low: float, high: float, *, exclusive_low: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        too_low = value <= low if exclusive_low else value < low
        if too_low or value > high:
            return f"must be {'more than' if exclusive_low else 'at least'} {low:g} and at most {high:g}"
        return None

    return check


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not a boolean (1/0, true/false)")


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    """What every function needs to reach its tables. `from_environ` reads each field from the variable
    `VARIABLES` names; code and tests may also build one from the fields' own names."""

    events_table: str
    control_table: str
    retention_days: int = 30
    # How long a writer may take between taking a log position and committing it. A position still
    # empty after this is fenced by a reader with a tombstone, so a late commit fails instead of landing
    # behind a reader. Correctness never depends on it; only the freshness after a crashed writer does.
    write_deadline_seconds: float = 5.0
    # Only the local stack and tests set it; in AWS the SDK finds DynamoDB itself.
    dynamodb_endpoint: str | None = None

    VARIABLES: ClassVar[dict[str, Variable]] = {
        "events_table": Variable("EVENTS_TABLE", check=_text(3)),
        "control_table": Variable("CONTROL_TABLE", check=_text(3)),
        "retention_days": Variable("RETENTION_DAYS", int, _between(1, 3650)),
        "write_deadline_seconds": Variable(
            "WRITE_DEADLINE_SECONDS", float, _between(0, 60, exclusive_low=True)
        ),
        "dynamodb_endpoint": Variable("DYNAMODB_ENDPOINT"),
    }

    def __post_init__(self) -> None:
        problems = [
            f"{self._variable(name).name}: {problem}"
            for name, value in self._values().items()
            if value is not None and (problem := self._variable(name).check(value))
        ]
        problems += self.cross_checks()
        if problems:
            raise SettingsInvalid(
                f"invalid pullbridge configuration ({type(self).__name__}): {'; '.join(problems)}"
            )

    def cross_checks(self) -> list[str]:
        """Rules over several settings; a subclass adds its own."""
        return []

    @classmethod
    def _variable(cls, name: str) -> Variable:
        for klass in cls.__mro__:
            variables = klass.__dict__.get("VARIABLES", {})
            if name in variables:
                return variables[name]  # type: ignore[no-any-return]
        raise KeyError(name)

    def _values(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        values: dict[str, Any] = {}
        problems: list[str] = []
        for item in fields(cls):
            variable = cls._variable(item.name)
            text = environ.get(variable.name, "")
            if text == "":  # an empty variable is unset: CloudFormation cannot leave one out conditionally
                if item.default is MISSING and item.default_factory is MISSING:
                    problems.append(f"{variable.name}: required")
                continue
            try:
                values[item.name] = variable.parse(text)
            except ValueError as exc:
                problems.append(f"{variable.name}: {exc}")
            else:
                if problem := variable.check(values[item.name]):
                    problems.append(f"{variable.name}: {problem}")
        if problems:
            raise SettingsInvalid(f"invalid pullbridge configuration ({cls.__name__}): {'; '.join(problems)}")
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class IngestSettings(StorageSettings):
    # Where providers reach the stack; it is part of what some providers sign (Standard Webhooks does not).
    public_base_url: str | None = None

    VARIABLES: ClassVar[dict[str, Variable]] = {"public_base_url": Variable("PUBLIC_BASE_URL")}


@dataclass(frozen=True, kw_only=True)
class OutboundSettings(StorageSettings):
    """A function that calls provider APIs, or accepts URLs it will call later."""

    allow_private_urls: bool = False

    VARIABLES: ClassVar[dict[str, Variable]] = {
        "allow_private_urls": Variable("PULLBRIDGE_ALLOW_PRIVATE_URLS", _flag)
    }


@dataclass(frozen=True, kw_only=True)
class PullerSettings(OutboundSettings):
    pass


@dataclass(frozen=True, kw_only=True)
class ApiSettings(OutboundSettings):
    # `POST .../pull` starts the puller at once; without it a trigger would wait for the schedule.
    puller_function_name: str
    # Powertools' Idempotency records of `POST /mutations` (the `Idempotency-Key`).
    idempotency_table: str
    public_base_url: str | None = None
    cursor_secret: str | None = field(default=None, repr=False)
    cursor_secret_arn: str | None = None

    VARIABLES: ClassVar[dict[str, Variable]] = {
        "puller_function_name": Variable("PULLER_FUNCTION_NAME", check=_text()),
        "idempotency_table": Variable("IDEMPOTENCY_TABLE", check=_text()),
        "public_base_url": Variable("PUBLIC_BASE_URL"),
        "cursor_secret": Variable("CURSOR_SECRET", check=_text(32)),
        "cursor_secret_arn": Variable("CURSOR_SECRET_ARN", check=_text()),
    }

    def cross_checks(self) -> list[str]:
        if (self.cursor_secret is None) == (self.cursor_secret_arn is None):
            return [
                "set exactly one of CURSOR_SECRET (the key itself) and CURSOR_SECRET_ARN (a Secrets Manager "
                "secret holding it)"
            ]
        return []

    def cursor_key(self, fetch_secret: Callable[[str], str]) -> str:
        """The key that signs cursors: the value itself, or fetched from Secrets Manager by its ARN."""
        if self.cursor_secret_arn is not None:
            return fetch_secret(self.cursor_secret_arn)
        if self.cursor_secret is not None:
            return self.cursor_secret
        raise AssertionError("unreachable: the settings hold exactly one cursor secret source")


@dataclass(frozen=True, kw_only=True)
class AdminSettings(StorageSettings):
    pass


SettingsT = TypeVar("SettingsT", bound=StorageSettings)


def load_settings(kind: type[SettingsT]) -> SettingsT:
    """The function's settings from its environment; called once, at cold start."""
    return kind.from_environ(os.environ)
