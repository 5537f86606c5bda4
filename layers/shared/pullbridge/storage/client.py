"""The DynamoDB client, and the one place botocore's failures become `StorageUnavailable`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

_THROTTLING_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def dynamodb_client(endpoint_url: str | None = None) -> DynamoDBClient:
    """The DynamoDB client a function creates once per cold start and injects everywhere."""
    config = Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "total_max_attempts": 3},
        tcp_keepalive=True,
    )
    # botocore's session, not boto3's: the same client without importing boto3's resources and
    # s3transfer, about 20 ms of every cold start.
    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=endpoint_url, config=config
    )
    return cast("DynamoDBClient", client)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def storage_error(exc: Exception) -> StorageUnavailable:
    """What a caller hears of a DynamoDB failure: a 5xx to retry, with the error code and no more."""
    code = error_code(exc) if isinstance(exc, ClientError) else ""
    kind = "throttled" if code in _THROTTLING_CODES else "failed"
    return StorageUnavailable(f"storage {kind}; retry later", data={"code": code} if code else {})


@contextmanager
def storage_errors() -> Iterator[None]:
    """Every botocore failure inside becomes `StorageUnavailable`."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise storage_error(exc) from exc
