"""The embedded DynamoDB over real HTTP, with tables made from template.yaml."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pullbridge_local.dynamodb import EmbeddedDynamoDB
from pullbridge_local.template import create_tables, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedDynamoDB]:
    with EmbeddedDynamoDB() as server:
        yield server


@pytest.fixture
def client(embedded: EmbeddedDynamoDB) -> DynamoDBClient:
    embedded.reset()
    return embedded.client()


def test_tables_are_created_from_the_template_with_a_prefix(client: DynamoDBClient) -> None:
    names = create_tables(client, load_template(), prefix="dev-")

    assert names == {
        "EventsTable": "dev-EventsTable",
        "ControlTable": "dev-ControlTable",
        "IdempotencyTable": "dev-IdempotencyTable",
    }
    control = client.describe_table(TableName="dev-ControlTable")["Table"]
    assert control["TableStatus"] == "ACTIVE"
    assert [index["IndexName"] for index in control.get("GlobalSecondaryIndexes", [])] == [
        "by_tenant",
        "by_due",
    ]


def test_creating_the_tables_again_keeps_them_and_their_items(client: DynamoDBClient) -> None:
    create_tables(client, load_template())
    client.put_item(TableName="ControlTable", Item={"pk": {"S": "a"}, "sk": {"S": "b"}})

    create_tables(client, load_template())

    assert "Item" in client.get_item(TableName="ControlTable", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})


def test_time_to_live_is_enabled_as_the_template_says(client: DynamoDBClient) -> None:
    create_tables(client, load_template())

    description = client.describe_time_to_live(TableName="EventsTable")["TimeToLiveDescription"]
    assert (description.get("TimeToLiveStatus"), description.get("AttributeName")) == (
        "ENABLED",
        "expires_at",
    )


def test_reset_drops_every_table(embedded: EmbeddedDynamoDB, client: DynamoDBClient) -> None:
    create_tables(client, load_template())

    embedded.reset()

    assert client.list_tables()["TableNames"] == []


# --- transactions: moto's semantics, without a deep copy of every table they touch -----------------


def _fill(client: DynamoDBClient, count: int) -> None:
    for start in range(0, count, 25):
        client.batch_write_item(
            RequestItems={
                "EventsTable": [
                    {"PutRequest": {"Item": {"pk": {"S": "T#fill"}, "sk": {"N": str(n)}, "n": {"N": str(n)}}}}
                    for n in range(start, min(start + 25, count))
                ]
            }
        )


def _key(position: int) -> dict[str, Any]:
    return {"pk": {"S": "T#fill"}, "sk": {"N": str(position)}}


def _touching_three_items(condition_holds: bool) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": "EventsTable",
                "Key": _key(1),
                "UpdateExpression": "SET n = :changed, extra = :changed",
                "ExpressionAttributeValues": {":changed": {"N": "-1"}},
            }
        },
        {"Delete": {"TableName": "EventsTable", "Key": _key(2)}},
        {"Put": {"TableName": "EventsTable", "Item": {**_key(10_000), "n": {"N": "10000"}}}},
        {
            "ConditionCheck": {
                "TableName": "EventsTable",
                "Key": _key(3),
                "ConditionExpression": "n = :three",
                "ExpressionAttributeValues": {":three": {"N": "3" if condition_holds else "4"}},
            }
        },
    ]


def _item(client: DynamoDBClient, position: int) -> dict[str, Any] | None:
    return client.get_item(TableName="EventsTable", Key=_key(position), ConsistentRead=True).get("Item")


def test_a_cancelled_transaction_leaves_updated_deleted_and_put_items_as_they_were(
    client: DynamoDBClient,
) -> None:
    create_tables(client, load_template())
    _fill(client, 200)

    with pytest.raises(client.exceptions.TransactionCanceledException) as cancelled:
        client.transact_write_items(TransactItems=_touching_three_items(condition_holds=False))

    reasons = [reason["Code"] for reason in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _item(client, 1) == {**_key(1), "n": {"N": "1"}}
    assert _item(client, 2) == {**_key(2), "n": {"N": "2"}}
    assert _item(client, 10_000) is None
    assert client.scan(TableName="EventsTable", Select="COUNT")["Count"] == 200


def test_a_committed_transaction_applies_every_item(client: DynamoDBClient) -> None:
    create_tables(client, load_template())
    _fill(client, 200)

    client.transact_write_items(TransactItems=_touching_three_items(condition_holds=True))

    assert _item(client, 1) == {**_key(1), "n": {"N": "-1"}, "extra": {"N": "-1"}}
    assert _item(client, 2) is None
    assert _item(client, 10_000) == {**_key(10_000), "n": {"N": "10000"}}


def test_a_transaction_copies_the_items_it_names_not_the_tables(
    client: DynamoDBClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto deep-copies each touched table once per transaction item, so a webhook's cost grew with the
    log. The embedded server copies only what the transaction names, whatever the table holds."""
    create_tables(client, load_template())
    _fill(client, 500)
    copied: list[str] = []
    deepcopy = copy.deepcopy

    def counting_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        copied.append(type(value).__name__)
        return deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting_deepcopy)

    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=_touching_three_items(condition_holds=False))
    client.transact_write_items(TransactItems=_touching_three_items(condition_holds=True))

    assert "Table" not in copied
    # The named items that exist, and moto's own copy of the one it updates, per transaction; not 500
    assert copied.count("Item") <= 8


def test_transactions_leave_no_table_copies_behind(client: DynamoDBClient) -> None:
    """moto keeps every model object it makes in a list until a reset: a backup made with `copy.copy`
    stayed alive per transaction, gigabytes at thousands of webhooks."""
    from moto.dynamodb.models.table import Table

    create_tables(client, load_template())
    _fill(client, 50)

    def tables_tracked() -> int:
        return len(Table.instances_tracked)  # type: ignore[attr-defined]

    before = tables_tracked()
    for _ in range(20):
        client.transact_write_items(TransactItems=_touching_three_items(condition_holds=True))
    assert tables_tracked() == before
