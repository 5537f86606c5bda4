"""A consumer's record and name in the control table, and its head in the events table: created
together, and deleted together with everything the consumer holds (docs/architecture.md, "Consumers").

The rest of its state has parts of its own: the head's stretches and moves (`consumer_heads`), reads of
its state (`consumer_reads`), its leases (`consumer_leases`), its dead letters (`dead_letters`), and how
its items look (`consumer_items`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from pullbridge.storage.attributes import n, s
from pullbridge.storage.client import error_code, storage_errors
from pullbridge.storage.consumer_items import control_item, head_item
from pullbridge.storage.keys import (
    CONSUMER_NAME_SK,
    CONSUMER_SK,
    HEAD_POSITION,
    consumer_name_pk,
    consumer_partition,
    consumer_pk,
    dead_letter_partition,
    receipt_partition,
)
from pullbridge.storage.model import ConsumerHead
from pullbridge.storage.transactions import Transactions


class ConsumerRecords(Transactions):
    def create_consumer(
        self,
        tenant_id: str,
        consumer_id: str,
        name: str,
        document: Mapping[str, Any],
        index: tuple[str, str],
        head: ConsumerHead,
    ) -> bool:
        """The record, its name's claim and its head, together. False when the name is taken."""
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self._control_table,
                    "Item": control_item(
                        consumer_name_pk(tenant_id, name), CONSUMER_NAME_SK, {"id": consumer_id}, None
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._control_table,
                    "Item": control_item(consumer_pk(consumer_id), CONSUMER_SK, document, index),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._events_table,
                    "Item": head_item(consumer_partition(tenant_id, consumer_id), head),
                }
            },
        ]
        return self._transact(actions) is None

    def consumer_id_by_name(self, tenant_id: str, name: str) -> str | None:
        with storage_errors():
            item = self._client.get_item(
                TableName=self._control_table,
                Key={"pk": s(consumer_name_pk(tenant_id, name)), "sk": s(CONSUMER_NAME_SK)},
                ConsistentRead=True,
            ).get("Item")
        return str(json.loads(item["doc"]["S"])["id"]) if item else None

    def update_consumer_record(
        self, consumer_id: str, document: Mapping[str, Any], index: tuple[str, str], expected_version: int
    ) -> bool:
        with storage_errors():
            try:
                self._client.put_item(
                    TableName=self._control_table,
                    Item=control_item(consumer_pk(consumer_id), CONSUMER_SK, document, index),
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": n(expected_version)},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def delete_consumer(self, tenant_id: str, consumer_id: str, name: str) -> None:
        """The record, the name and the head first (so nothing can use it), then what it held."""
        partition = consumer_partition(tenant_id, consumer_id)
        self._transact(
            [
                {
                    "Delete": {
                        "TableName": self._control_table,
                        "Key": {"pk": s(consumer_pk(consumer_id)), "sk": s(CONSUMER_SK)},
                    }
                },
                {
                    "Delete": {
                        "TableName": self._control_table,
                        "Key": {"pk": s(consumer_name_pk(tenant_id, name)), "sk": s(CONSUMER_NAME_SK)},
                    }
                },
                {
                    "Delete": {
                        "TableName": self._events_table,
                        "Key": {"pk": s(partition), "sk": n(HEAD_POSITION)},
                    }
                },
            ],
            raise_on_cancel=True,
        )
        for key in (
            partition,
            dead_letter_partition(tenant_id, consumer_id),
            receipt_partition(tenant_id, consumer_id),
        ):
            self._delete_partition(key)
