"""DynamoDB attribute values: typed values, and the JSON documents items carry."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pullbridge.errors import PayloadTooLarge

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
else:
    AttributeValueTypeDef = Any

Item = dict[str, Any]

MAX_ITEM_BYTES = 390_000  # DynamoDB caps an item at 400 KB
COMPRESS_ABOVE_BYTES = 400
"""DynamoDB bills a write by the item's size, rounded up to the KB, once per log row: a document past
this is stored compressed when that makes it smaller (JSON usually halves)."""


def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: float) -> AttributeValueTypeDef:
    return {"N": str(value)}


def num(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value else default


def text(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value else None


def plain(value: Any) -> AttributeValueTypeDef:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return n(value)
    return s(str(value))


def readable_text(value: str, max_bytes: int) -> str:
    """`value` as a DynamoDB string for people to read: lone surrogates escaped as JSON escapes them,
    and cut to `max_bytes`. Only for copies; the event's own document keeps everything."""
    try:
        value.encode()
    except UnicodeEncodeError:
        value = json.dumps(value)[1:-1]
    if len(value) * 4 <= max_bytes:  # the common case: no need to measure
        return value
    return value.encode()[:max_bytes].decode(errors="ignore")


def json_text(document: Mapping[str, Any]) -> tuple[str, bytes]:
    """The document as compact JSON text and its UTF-8 bytes.

    JSON may carry lone surrogates (`"\\\\ud83d"`, a truncated emoji) that UTF-8 cannot: such a document
    is written with every non-ASCII character escaped, the same JSON to any reader."""
    encoded_text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    try:
        return encoded_text, encoded_text.encode()
    except UnicodeEncodeError:
        encoded_text = json.dumps(document, separators=(",", ":"))
        return encoded_text, encoded_text.encode()


def encode_document(document: Mapping[str, Any]) -> tuple[str, AttributeValueTypeDef]:
    """An event's document as the attribute that holds it: `doc` (JSON), or `docz` (zlib) when that is
    smaller and the document is not tiny."""
    encoded_text, encoded = json_text(document)
    if len(encoded) <= COMPRESS_ABOVE_BYTES:
        return "doc", s(encoded_text)
    packed = zlib.compress(encoded, 6)
    if len(packed) >= len(encoded) and len(encoded) <= MAX_ITEM_BYTES - 10_000:
        return "doc", s(encoded_text)  # incompressible: as it is
    if len(packed) > MAX_ITEM_BYTES - 10_000:
        raise PayloadTooLarge("the event does not fit in the log even compressed", key="event_too_large")
    return "docz", {"B": packed}


def decode_document(item: Item) -> dict[str, Any]:
    if "docz" in item:
        return json.loads(zlib.decompress(item["docz"]["B"]))  # type: ignore[no-any-return]
    return json.loads(item["doc"]["S"])  # type: ignore[no-any-return]


def control_document(item: Item) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(item["doc"]["S"])
    return document
