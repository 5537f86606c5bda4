"""The API's cursor signing key from Secrets Manager, fetched once per cold start.

A botocore client, not Powertools Parameters: the key is read once per instance (nothing to cache),
and Parameters imports boto3 and its AppConfig and SSM providers with it, about 95 ms of every API
cold start (`make bench`, `cold_init_ratio_api`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def secrets_manager_client() -> Any:
    return botocore.session.get_session().create_client(
        "secretsmanager", config=Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 3})
    )


def fetch_secret(arn: str, client_factory: Callable[[], Any] = secrets_manager_client) -> str:
    """The secret's string value. A failure fails the cold start with the reason, never the value."""
    try:
        value = client_factory().get_secret_value(SecretId=arn).get("SecretString")
    except (BotoCoreError, ClientError) as exc:
        raise RuntimeError(f"cannot read the cursor signing key {arn}: {exc}") from exc
    if not isinstance(value, str) or not value:
        raise RuntimeError(f"the secret {arn} holds no string value")
    return value
