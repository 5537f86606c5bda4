"""What every part of the store shares: the injected client, the table names and the clock."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from pullbridge.settings import StorageSettings
else:
    DynamoDBClient = Any


class StoreCore:
    def __init__(self, client: DynamoDBClient, settings: StorageSettings, *, clock: Any = time.time) -> None:
        self._client = client
        self._events_table = settings.events_table
        self._control_table = settings.control_table
        self._retention_seconds = settings.retention_days * 86_400
        self._deadline_ms = int(settings.write_deadline_seconds * 1000)
        self._clock = clock

    @property
    def retention_seconds(self) -> int:
        return self._retention_seconds
