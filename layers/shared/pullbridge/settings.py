"""Deployment settings per function, read from the environment once per cold start and validated.

Each function validates what it needs and only that: the ingest function does not need the cursor
secret, and the API cannot start without one. What a deployment must decide (the table names, the API's
cursor secret and puller) has no default; a missing or invalid value fails the cold start with a message
that names the environment variables, so a misconfigured stack fails at once instead of on a request.
The defaults of the rest are the ones `template.yaml` states.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class StorageSettings(BaseModel):
    """What every function needs to reach its tables. Fields are read from the environment variables
    named by their aliases; code and tests may also pass the fields' own names."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True)

    events_table: str = Field(min_length=3, validation_alias="EVENTS_TABLE")
    control_table: str = Field(min_length=3, validation_alias="CONTROL_TABLE")
    retention_days: int = Field(default=30, ge=1, le=3650, validation_alias="RETENTION_DAYS")
    # How long a writer may take between taking a log position and committing it. A position still
    # empty after this is fenced by a reader with a tombstone, so a late commit fails instead of landing
    # behind a reader. Correctness never depends on it; only the freshness after a crashed writer does.
    write_deadline_seconds: float = Field(default=5.0, gt=0, le=60, validation_alias="WRITE_DEADLINE_SECONDS")
    # Only the local stack and tests set it; in AWS the SDK finds DynamoDB itself.
    dynamodb_endpoint: str | None = Field(default=None, validation_alias="DYNAMODB_ENDPOINT")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        # An empty variable is unset: CloudFormation cannot leave a variable out conditionally.
        present = {name: value for name, value in environ.items() if value != ""}
        try:
            return cls.model_validate(present)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            )
            raise RuntimeError(f"invalid pullbridge configuration ({cls.__name__}): {problems}") from exc


class IngestSettings(StorageSettings):
    # Where providers reach the stack; it is part of what some providers sign (Standard Webhooks does not).
    public_base_url: str | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")


class OutboundSettings(StorageSettings):
    """A function that calls provider APIs, or accepts URLs it will call later."""

    allow_private_urls: bool = Field(default=False, validation_alias="PULLBRIDGE_ALLOW_PRIVATE_URLS")


class PullerSettings(OutboundSettings):
    pass


class ApiSettings(OutboundSettings):
    public_base_url: str | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")
    cursor_secret: str | None = Field(
        default=None, min_length=32, repr=False, validation_alias="CURSOR_SECRET"
    )
    cursor_secret_arn: str | None = Field(default=None, validation_alias="CURSOR_SECRET_ARN")
    # `POST .../pull` starts the puller at once; without it a trigger would wait for the schedule.
    puller_function_name: str = Field(min_length=1, validation_alias="PULLER_FUNCTION_NAME")

    @model_validator(mode="after")
    def _exactly_one_cursor_secret_source(self) -> Self:
        if (self.cursor_secret is None) == (self.cursor_secret_arn is None):
            raise ValueError(
                "set exactly one of CURSOR_SECRET (the key itself) and CURSOR_SECRET_ARN (a Secrets Manager "
                "secret holding it)"
            )
        return self

    def cursor_key(self, fetch_secret: Callable[[str], str]) -> str:
        """The key that signs cursors: the value itself, or fetched from Secrets Manager by its ARN."""
        if self.cursor_secret_arn is not None:
            return fetch_secret(self.cursor_secret_arn)
        if self.cursor_secret is not None:
            return self.cursor_secret
        raise AssertionError("unreachable: the settings hold exactly one cursor secret source")


class AdminSettings(StorageSettings):
    pass


SettingsT = TypeVar("SettingsT", bound=StorageSettings)


def load_settings(kind: type[SettingsT]) -> SettingsT:
    """The function's settings from its environment; called once, at cold start."""
    return kind.from_environ(os.environ)
