"""The storage package: the only code that speaks to DynamoDB. Nothing else imports botocore or boto3.

One module per thing stored, each a part of `Store` (which is nothing but their sum):

- `keys`: every key of both tables, the one place key strings are built;
- `log_writer` and `log_reader`: the event log (append; read, fence, probe), with their pure
  decisions in `planning`;
- `control`: control records (API keys, tenants, connections, subscriptions, pulls);
- `snapshots`: the full-scan snapshot; `blobs`: bytes larger than an item;
- `consumers`: a consumer's record and name; `consumer_heads`: its head and the stretches of the log
  handed to receives; `consumer_reads`: reads of its state; `consumer_leases`: its leases and their
  receipts; `dead_letters`: its dead letters (`consumer_items`: how their items look);
- `records`: the latest state of each upstream record;
- `client`: the DynamoDB client, and the one place botocore's failures become `StorageUnavailable`;
- `attributes`: attribute values and the documents items carry; `model`: what callers pass and get.

The tables, the log's protocol and why cursors cannot skip: docs/architecture.md.
"""

from __future__ import annotations

from pullbridge.storage.attributes import encode_document as _encode_document
from pullbridge.storage.client import dynamodb_client
from pullbridge.storage.control import ControlWrite
from pullbridge.storage.keys import HASHED_KEY_PREFIX, key_part
from pullbridge.storage.model import (
    AppendResult,
    ConnectionChanged,
    ConnectionGuard,
    ConsumerHead,
    ConsumerState,
    DeadLetterRow,
    EventDraft,
    InFlight,
    LoggedEvent,
    LogRead,
    LogRow,
    RecordChange,
    SnapshotChange,
    StoredRecord,
)
from pullbridge.storage.store import Store

__all__ = [
    "HASHED_KEY_PREFIX",
    "AppendResult",
    "ConnectionChanged",
    "ConnectionGuard",
    "ConsumerHead",
    "ConsumerState",
    "ControlWrite",
    "DeadLetterRow",
    "EventDraft",
    "InFlight",
    "LogRead",
    "LogRow",
    "LoggedEvent",
    "RecordChange",
    "SnapshotChange",
    "Store",
    "StoredRecord",
    "_encode_document",
    "dynamodb_client",
    "key_part",
]
