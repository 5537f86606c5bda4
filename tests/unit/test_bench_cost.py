"""The write-unit accounting of `make bench` (bench/bench_cost.py): item sizes computed by hand
with DynamoDB's rules, the billing of each kind of write, and the meter on a real (moto) table."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bench.bench_common import item_size, number_size, value_size
from bench.bench_cost import ItemWrite, WriteUnitMeter, from_wire, webhook_body, write_units
from pullbridge.storage import dynamodb_client
from pullbridge_local.dynamodb import EmbeddedDynamoDB


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("0", 1),
        ("7", 2),
        ("12345", 4),  # 5 significant digits: 3 + 1
        ("1700000000000", 2),  # trailing zeros are not significant: "17"
        ("-0.00120", 2),  # nor leading ones, nor the sign: "12"
        ("1.5E+10", 2),
        ("1798070400", 5),  # "17980704"
    ],
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert number_size(number) == size
    assert value_size({"N": number}) == size


def test_a_key_only_item_is_its_names_and_values() -> None:
    # "pk" 2 + "T#acme" 6, "sk" 2 + the number 0 (1)
    assert item_size({"pk": {"S": "T#acme"}, "sk": {"N": "0"}}) == 11


def test_strings_and_names_count_utf8_bytes_and_binaries_their_bytes() -> None:
    # "é" 2 + "€" 3, "b" 1 + 3 bytes
    assert item_size({"é": {"S": "€"}, "b": {"B": b"\x00\x01\x02"}}) == 9


def test_lists_and_maps_cost_three_bytes_and_one_per_element() -> None:
    # "event_ids" 9 + list overhead 3 + (1 + "evt_1" 5)
    assert item_size({"event_ids": {"L": [{"S": "evt_1"}]}}) == 18
    # "m" 1 + map overhead 3 + (1 + "a" 1 + BOOL 1) + (1 + "bb" 2 + NULL 1)
    assert item_size({"m": {"M": {"a": {"BOOL": True}, "bb": {"NULL": True}}}}) == 11
    assert value_size({"L": []}) == 3
    assert value_size({"M": {}}) == 3


def test_sets_are_the_sum_of_their_elements() -> None:
    # "ss" 2 + 1 + 2, "ns" 2 + 2 + 2, "bs" 2 + 2 + 1
    sets: dict[str, dict[str, Any]] = {
        "ss": {"SS": ["a", "bc"]},
        "ns": {"NS": ["1", "22"]},
        "bs": {"BS": [b"xy", b"z"]},
    }
    assert item_size(sets) == 16


def test_a_dedupe_claim_by_hand() -> None:
    claim: dict[str, dict[str, Any]] = {
        "pk": {"S": "W#conn_1#msg_1"},  # 2 + 14
        "sk": {"N": "0"},  # 2 + 1
        "event_ids": {"L": [{"S": "evt_abc"}]},  # 9 + 3 + 1 + 7
        "expires_at": {"N": "1798070400"},  # 10 + 5
    }
    assert item_size(claim) == 16 + 3 + 20 + 15


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="not a DynamoDB attribute value"):
        value_size({"X": 1})


def _write(request: str, action: str, before: int, after: int) -> ItemWrite:
    return ItemWrite(request, action, "T", {"pk": {"S": "a"}}, before, after)


@pytest.mark.parametrize(
    ("request_name", "action", "before", "after", "units"),
    [
        ("PutItem", "Put", 0, 1024, 1),
        ("PutItem", "Put", 0, 1025, 2),
        ("PutItem", "Put", 0, 0, 1),  # never less than one unit
        ("PutItem", "Put", 3000, 100, 3),  # a replaced item: the larger of old and new
        ("UpdateItem", "Update", 100, 2049, 3),
        ("DeleteItem", "Delete", 2049, 0, 3),  # the item it deletes
        ("BatchWriteItem", "Put", 0, 500, 1),
        ("TransactWriteItems", "Put", 0, 1024, 2),
        ("TransactWriteItems", "Put", 0, 1025, 4),
        ("TransactWriteItems", "Update", 3000, 100, 6),  # the larger of before and after
        ("TransactWriteItems", "Update", 107, 107, 2),
        ("TransactWriteItems", "ConditionCheck", 477, 0, 2),  # the assumption: a write of its size
        ("TransactWriteItems", "ConditionCheck", 0, 0, 2),
        ("TransactWriteItems", "Delete", 5000, 0, 10),
    ],
)
def test_write_units_follow_the_billing_rules(
    request_name: str, action: str, before: int, after: int, units: int
) -> None:
    assert _write(request_name, action, before, after).units == units


def test_write_units_add_up_over_the_items() -> None:
    webhook = [
        _write("TransactWriteItems", "Update", 107, 107),
        _write("TransactWriteItems", "ConditionCheck", 477, 0),
        _write("TransactWriteItems", "Put", 0, 102),
        _write("TransactWriteItems", "Put", 0, 1429),
        _write("TransactWriteItems", "Put", 0, 1461),
    ]
    assert write_units(webhook) == 2 + 2 + 2 + 4 + 4


def test_wire_values_are_decoded_as_botocore_takes_them() -> None:
    wire = {"M": {"b": {"B": base64.b64encode(b"hi").decode()}, "l": {"L": [{"BS": ["eA=="]}]}}}
    assert from_wire(wire) == {"M": {"b": {"B": b"hi"}, "l": {"L": [{"BS": [b"x"]}]}}}


def test_the_measured_webhook_is_about_1_kb_of_json() -> None:
    for n in (0, 1, 99_999_999):
        body = webhook_body(n)
        assert 960 <= len(body) <= 1024
        assert json.loads(body)["type"] == "invoice.paid"


def test_the_meter_reads_each_named_item_before_and_after_its_request(
    dynamodb_server: EmbeddedDynamoDB, tables: dict[str, str]
) -> None:
    table = tables["EventsTable"]
    reader = dynamodb_client(dynamodb_server.endpoint_url)
    head = {"pk": {"S": "T#t"}, "sk": {"N": "0"}, "seq": {"N": "5"}}  # 2+3 + 2+1 + 3+2 = 13
    checked = {"pk": {"S": "CONN#c"}, "sk": {"N": "0"}, "v": {"S": "x" * 2000}}  # 2+6 + 2+1 + 1+2000
    gone = {"pk": {"S": "G"}, "sk": {"N": "0"}, "v": {"S": "y" * 1500}}  # 2+1 + 2+1 + 1+1500
    for item in (head, checked, gone):
        reader.put_item(TableName=table, Item=item)
    client = dynamodb_client(dynamodb_server.endpoint_url)
    meter = WriteUnitMeter(client, reader).start()
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "T#t"}, "sk": {"N": "0"}},
                        "UpdateExpression": "SET big = :b",  # + "big" 3 + 1,100 bytes
                        "ExpressionAttributeValues": {":b": {"B": b"z" * 1100}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "CONN#c"}, "sk": {"N": "0"}},
                        "ConditionExpression": "attribute_exists(v)",
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": "N"}, "sk": {"N": "1"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "G"}, "sk": {"N": "0"}}}},
            ]
        )
        client.get_item(TableName=table, Key={"pk": {"S": "N"}, "sk": {"N": "1"}})
    finally:
        meter.stop()

    assert meter.requests == ["TransactWriteItems", "GetItem"]
    update, check, put, delete = meter.writes
    assert (update.action, update.size_before, update.size_after) == ("Update", 13, 13 + 3 + 1100)
    assert update.units == 4
    assert (check.action, check.size_before, check.units) == ("ConditionCheck", 2012, 4)
    assert (put.action, put.size_before, put.size_after, put.units) == ("Put", 0, 2 + 1 + 2 + 2, 2)
    assert (delete.action, delete.size_before, delete.units) == ("Delete", 1507, 4)
    assert meter.units == 4 + 4 + 2 + 4

    meter.reset()
    meter.start()
    try:  # a plain put that replaces a larger item: billed on the larger, at 1 unit per KB
        client.put_item(TableName=table, Item={"pk": {"S": "CONN#c"}, "sk": {"N": "0"}})
    finally:
        meter.stop()
    (replace,) = meter.writes
    assert (replace.request, replace.size_before, replace.units) == ("PutItem", 2012, 2)
