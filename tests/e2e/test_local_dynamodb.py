"""The embedded DynamoDB over real HTTP, with tables made from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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

    assert names == {"EventsTable": "dev-EventsTable", "ControlTable": "dev-ControlTable"}
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
