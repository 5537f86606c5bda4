"""Powertools' Idempotency records (of `POST /mutations`) in their own table, over the injected client.

Imported only by the first mutation that carries an `Idempotency-Key`: Powertools' persistence layer
imports boto3, which nothing else on the API's path needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


def idempotency_persistence(client: DynamoDBClient, table_name: str) -> DynamoDBPersistenceLayer:
    """The table's key is `id`, its TTL attribute `expiration` (template.yaml, IdempotencyTable)."""
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
