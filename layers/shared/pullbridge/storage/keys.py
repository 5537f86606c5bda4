"""Every key of both tables: the one place key strings are built (docs/architecture.md has the tables).

EventsTable (pk S, sk N)
    T#<tenant>, 0                 the tenant log's head
    T#<tenant>, <seq>             the tenant log: one row per position (an event or a tombstone)
    T#<tenant>#C#<conn>, <cseq>   the connection log: the same events, positioned per connection
    W#<conn>#<delivery>, 0        the dedupe claim of one provider delivery
    T#<tenant>#K#<consumer>, 0    a consumer's head: its position, version, pending count, limits
    T#<tenant>#K#<consumer>, <seq>    one event the consumer holds in flight, by its tenant position
    T#<tenant>#K#<consumer>, -<seq>   a lease group: the events one take leased together, by the first
    T#<tenant>#K#<consumer>#D, 0      the consumer's dead-letter count
    T#<tenant>#K#<consumer>#D, <seq>  one dead letter, with a copy of its event
    T#<tenant>#K#<consumer>#A, <seq>  the receipt of an ack: which lease it settled (kept a day)

ControlTable (pk S, sk S; GSI by_tenant on gsi1pk/gsi1sk, sparse GSI by_due on gsi2pk/gsi2sk)
    KEY#<sha256 of api key>, KEY           an API key's tenant       (by_tenant: T#<tenant>#KEY)
    TENANT#<id>, TENANT                    a tenant
    CONN#<id>, CONN                        a connection              (by_tenant: T#<tenant>#CONN[#archived])
    SUB#<id>, SUB                          a subscription            (by_tenant: T#<tenant>#SUB; by_due)
    SUBKEY#<conn>#<collection>, SUBKEY     one subscription per connection and collection
    PULL#<id>, PULL | <blob>#<n>           a pull record, and its blobs  (by_tenant: T#<tenant>#PULL)
    SNAP#<conn>#<collection>, <record id>  the full-scan snapshot of one record
    REC#<conn>#<collection>, <record id>   the latest state of one record (a tombstone once deleted)
    CONNHEALTH#<conn>, HEALTH              a connection's pulls as its health reports them
    CONSUMER#<id>, CONSUMER                a consumer                (by_tenant: T#<tenant>#CONSUMER)
    CONSUMERNAME#<tenant>#<name>, CONSUMERNAME  a consumer's name, unique in its tenant
    MUT#<id>, MUT                          a mutation                (by_tenant: T#<tenant>#MUT)
    MUTKEY#<tenant>#<sha256 of key>, MUTKEY  the mutation an Idempotency-Key started (kept 24 h)

IdempotencyTable (id S): Powertools' Idempotency records of `POST /mutations` (TTL `expiration`).
"""

from __future__ import annotations

import hashlib

HEAD_POSITION = 0
DUE_PARTITION = "DUE"
MAX_KEY_PART_BYTES = 512
"""A delivery or record id longer than this (in UTF-8) is keyed by its hash: DynamoDB caps a partition
key at 2,048 bytes and a sort key at 1,024, and a provider's ids are not ours to bound."""
HASHED_KEY_PREFIX = "#sha256:"

API_KEY_SK = "KEY"
TENANT_SK = "TENANT"
CONNECTION_SK = "CONN"
SUBSCRIPTION_SK = "SUB"
SUBSCRIPTION_UNIQUENESS_SK = "SUBKEY"
PULL_SK = "PULL"
CONSUMER_SK = "CONSUMER"
CONSUMER_NAME_SK = "CONSUMERNAME"
MUTATION_SK = "MUT"
MUTATION_KEY_SK = "MUTKEY"
HEALTH_KEY = ("HEALTH", "HEALTH")
"""A control key that never exists: readiness reads it."""


def key_part(value: str) -> str:
    """`value` as it may stand in a key: itself when it is short, valid UTF-8, else its SHA-256.

    Keys that look hashed are hashed again, so a provider's id can never collide with another's hash.
    """
    try:
        encoded = value.encode()
    except UnicodeEncodeError:  # a lone surrogate: DynamoDB strings must be valid UTF-8
        encoded = value.encode("utf-8", "surrogatepass")
    else:
        if len(encoded) <= MAX_KEY_PART_BYTES and not value.startswith(HASHED_KEY_PREFIX):
            return value
    return HASHED_KEY_PREFIX + hashlib.sha256(encoded).hexdigest()


# --- EventsTable ---------------------------------------------------------------------------------------


def tenant_log(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def connection_log(tenant_id: str, connection_id: str) -> str:
    return f"T#{tenant_id}#C#{connection_id}"


def dedupe_key(connection_id: str, delivery_id: str) -> str:
    return f"W#{connection_id}#{key_part(delivery_id)}"


def consumer_partition(tenant_id: str, consumer_id: str) -> str:
    return f"T#{tenant_id}#K#{consumer_id}"


def group_sort_key(group: int) -> int:
    """A lease group's sort key in its consumer's partition: its first position, negated, so that groups
    sort before the head (0) and never share a key with an event's own item."""
    return -group


def dead_letter_partition(tenant_id: str, consumer_id: str) -> str:
    return f"T#{tenant_id}#K#{consumer_id}#D"


def receipt_partition(tenant_id: str, consumer_id: str) -> str:
    return f"T#{tenant_id}#K#{consumer_id}#A"


# --- ControlTable --------------------------------------------------------------------------------------


def api_key_pk(key_hash: str) -> str:
    return f"KEY#{key_hash}"


def api_keys_index(tenant_id: str) -> str:
    return f"T#{tenant_id}#KEY"


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def connection_pk(connection_id: str) -> str:
    return f"CONN#{connection_id}"


def connections_index(tenant_id: str, *, archived: bool) -> str:
    return f"T#{tenant_id}#CONN" + ("#archived" if archived else "")


def subscription_pk(subscription_id: str) -> str:
    return f"SUB#{subscription_id}"


def subscriptions_index(tenant_id: str) -> str:
    return f"T#{tenant_id}#SUB"


def subscription_uniqueness_pk(connection_id: str, collection: str) -> str:
    return f"SUBKEY#{connection_id}#{collection}"


def pull_pk(pull_id: str) -> str:
    return f"PULL#{pull_id}"


def pulls_index(tenant_id: str) -> str:
    return f"T#{tenant_id}#PULL"


def consumer_pk(consumer_id: str) -> str:
    return f"CONSUMER#{consumer_id}"


def consumers_index(tenant_id: str) -> str:
    return f"T#{tenant_id}#CONSUMER"


def consumer_name_pk(tenant_id: str, name: str) -> str:
    return f"CONSUMERNAME#{tenant_id}#{name}"


def mutation_pk(mutation_id: str) -> str:
    return f"MUT#{mutation_id}"


def mutations_index(tenant_id: str) -> str:
    return f"T#{tenant_id}#MUT"


def mutation_key_pk(tenant_id: str, idempotency_key: str) -> str:
    """Where an `Idempotency-Key` points to its mutation: the caller's key hashed, so any text of any
    length makes a valid key, and the tenant's id in it, so tenants' keys never meet."""
    digest = hashlib.sha256(f"{tenant_id}\0{idempotency_key}".encode()).hexdigest()
    return f"MUTKEY#{tenant_id}#{digest}"


def record_partition(connection_id: str, collection: str) -> str:
    return f"REC#{connection_id}#{key_part(collection)}"


def connection_health_pk(connection_id: str) -> str:
    return f"CONNHEALTH#{connection_id}"


CONNECTION_HEALTH_SK = "HEALTH"


def snapshot_partition(connection_id: str, collection: str) -> str:
    return f"SNAP#{connection_id}#{key_part(collection)}"
