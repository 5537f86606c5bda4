"""`Store`: every DynamoDB operation of pullbridge, over an injected client, assembled from one part
per thing stored. New kinds of records get a module (and a part) of their own, not methods here."""

from __future__ import annotations

from pullbridge.storage.blobs import Blobs
from pullbridge.storage.consumer_heads import ConsumerHeads
from pullbridge.storage.consumer_leases import ConsumerLeases
from pullbridge.storage.consumer_reads import ConsumerReads
from pullbridge.storage.consumers import ConsumerRecords
from pullbridge.storage.control import ControlRecords
from pullbridge.storage.dead_letters import DeadLetters
from pullbridge.storage.health import Health
from pullbridge.storage.log_reader import LogReader
from pullbridge.storage.log_writer import LogWriter
from pullbridge.storage.records import Records
from pullbridge.storage.snapshots import Snapshots


class Store(
    LogWriter,
    LogReader,
    ControlRecords,
    Snapshots,
    Blobs,
    ConsumerRecords,
    ConsumerHeads,
    ConsumerReads,
    ConsumerLeases,
    DeadLetters,
    Records,
    Health,
):
    """The event log, control records, snapshots, records, blobs and consumers' state, sharing one
    client, its tables and a clock."""
