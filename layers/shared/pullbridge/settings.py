"""Deployment settings, read from the environment once per cold start and validated with pydantic.

There are no silent defaults for what a deployment must decide (the table names); the rest has
documented defaults that `template.yaml` also states.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    events_table: str = Field(min_length=3)
    control_table: str = Field(min_length=3)
    retention_days: int = Field(default=30, ge=1, le=3650)
    # How long a writer may take between taking a log position and committing it. A position still
    # empty after this is fenced by a reader with a tombstone, so a late commit fails instead of landing
    # behind a reader. Correctness never depends on it; only the freshness after a crashed writer does.
    write_deadline_seconds: float = Field(default=5.0, gt=0, le=60)
    allow_private_urls: bool = False
    public_base_url: str | None = None
    dynamodb_endpoint: str | None = None
    cursor_secret: str | None = Field(default=None, min_length=32, repr=False)
    cursor_secret_arn: str | None = None
    puller_function_name: str | None = None

    @model_validator(mode="after")
    def _one_cursor_secret_source(self) -> Settings:
        if self.cursor_secret and self.cursor_secret_arn:
            raise ValueError("set CURSOR_SECRET or CURSOR_SECRET_ARN, not both")
        return self

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        def pick(name: str) -> str | None:
            value = environ.get(name)
            return value if value not in (None, "") else None

        raw = {
            "events_table": pick("EVENTS_TABLE"),
            "control_table": pick("CONTROL_TABLE"),
            "retention_days": pick("RETENTION_DAYS"),
            "write_deadline_seconds": pick("WRITE_DEADLINE_SECONDS"),
            "allow_private_urls": pick("PULLBRIDGE_ALLOW_PRIVATE_URLS"),
            "public_base_url": pick("PUBLIC_BASE_URL"),
            "dynamodb_endpoint": pick("DYNAMODB_ENDPOINT"),
            "cursor_secret": pick("CURSOR_SECRET"),
            "cursor_secret_arn": pick("CURSOR_SECRET_ARN"),
            "puller_function_name": pick("PULLER_FUNCTION_NAME"),
        }
        try:
            return cls.model_validate({k: v for k, v in raw.items() if v is not None})
        except ValidationError as exc:
            raise RuntimeError(f"invalid pullbridge configuration: {exc}") from exc


@cache
def load_settings() -> Settings:
    return Settings.from_environ(os.environ)
