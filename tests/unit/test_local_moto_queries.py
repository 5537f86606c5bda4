"""The embedded DynamoDB's `Query` reads only the queried partition (`pullbridge_local.moto_queries`), and
answers exactly what moto's own `Query` answers: the same items, counts and `LastEvaluatedKey`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from pullbridge_local import moto_queries
from pullbridge_local.template import create_tables, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PARTITIONS = ("T#a", "T#b", "T#a#K#c")


@pytest.fixture
def client() -> Iterator[DynamoDBClient]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, load_template())
        rng = random.Random(5)
        for partition in PARTITIONS:
            for position in rng.sample(range(1, 400), 60):  # put out of order: moto keeps insertion order
                dynamodb.put_item(
                    TableName="EventsTable",
                    Item={
                        "pk": {"S": partition},
                        "sk": {"N": str(position)},
                        "kind": {"S": rng.choice(["a", "b"])},
                        "body": {"S": "x" * rng.randrange(0, 300)},
                    },
                )
        for connection in ("c1", "c2"):
            for record in rng.sample(range(1000), 40):
                dynamodb.put_item(
                    TableName="ControlTable",
                    Item={
                        "pk": {"S": f"REC#{connection}#customer"},
                        "sk": {"S": f"cus_{record:04d}"},
                        "gsi1pk": {"S": "T#t#REC"},
                        "gsi1sk": {"S": f"{connection}#{record:04d}"},
                    },
                )
        yield dynamodb


def _patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Table, "query", moto_queries._query)
    monkeypatch.setattr(Table, "all_items", moto_queries._all_items)


def _query_requests(rng: random.Random) -> Iterator[dict[str, Any]]:
    for _ in range(60):
        partition = rng.choice([*PARTITIONS, "T#none"])
        low, high = sorted(rng.sample(range(0, 420), 2))
        condition, values = rng.choice(
            [
                ("pk = :p", {}),
                ("pk = :p AND sk > :low", {":low": {"N": str(low)}}),
                ("pk = :p AND sk <= :high", {":high": {"N": str(high)}}),
                (
                    "pk = :p AND sk BETWEEN :low AND :high",
                    {":low": {"N": str(low)}, ":high": {"N": str(high)}},
                ),
            ]
        )
        request: dict[str, Any] = {
            "TableName": "EventsTable",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {":p": {"S": partition}, **values},
            "ConsistentRead": rng.random() < 0.5,
            "ScanIndexForward": rng.random() < 0.7,
        }
        if rng.random() < 0.7:
            request["Limit"] = rng.randrange(1, 40)
        if rng.random() < 0.3:
            request["FilterExpression"] = "kind = :kind"
            request["ExpressionAttributeValues"][":kind"] = {"S": "a"}
        yield request


def _all_pages(client: DynamoDBClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    pages = []
    while True:
        page = client.query(**request)
        page.pop("ResponseMetadata")
        pages.append(page)
        if "LastEvaluatedKey" not in page or len(pages) > 50:
            return pages
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def test_a_table_query_answers_what_moto_answers(
    client: DynamoDBClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = list(_query_requests(random.Random(11)))
    requests.append(
        {
            "TableName": "ControlTable",
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":p": {"S": "REC#c1#customer"}, ":prefix": {"S": "cus_0"}},
            "Limit": 7,
        }
    )
    expected = [_all_pages(client, request) for request in requests]

    _patched(monkeypatch)
    answered = [_all_pages(client, request) for request in requests]

    assert answered == expected
    assert any(len(pages) > 1 for pages in expected)  # paging through ExclusiveStartKey was exercised


def test_a_table_query_lists_only_its_partition_and_an_index_query_is_moto_s_own(
    client: DynamoDBClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patched(monkeypatch)
    whole_table_listings: list[str] = []
    original = moto_queries._original_all_items

    def counting(table: Table) -> list[Any]:
        whole_table_listings.append(table.name)
        return original(table)

    monkeypatch.setattr(moto_queries, "_original_all_items", counting)

    page = client.query(
        TableName="EventsTable",
        KeyConditionExpression="pk = :p AND sk > :low",
        ExpressionAttributeValues={":p": {"S": "T#a#K#c"}, ":low": {"N": "0"}},
    )
    assert page["Count"] == 60
    assert whole_table_listings == []

    by_index = client.query(
        TableName="ControlTable",
        IndexName="by_tenant",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues={":p": {"S": "T#t#REC"}},
    )
    assert by_index["Count"] == 80
    assert whole_table_listings == ["ControlTable"]


def test_install_is_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Table, "query", Table.query)
    monkeypatch.setattr(Table, "all_items", Table.all_items)
    moto_queries.install()
    moto_queries.install()
    assert Table.query is moto_queries._query
    assert Table.all_items is moto_queries._all_items
