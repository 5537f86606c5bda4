"""Consumers: many workers sharing one stream of the tenant's log, with leases, acks, redelivery and
dead letters (PRODUCT.md, "Consumers"; docs/architecture.md, "Consumers").

- `models`: the API's edges; `records`: the consumer's record, found by id or name;
- `planning`: the pure decisions (what a receive delivers, redelivers, holds back or buries);
- `positions`: where a consumer starts or seeks to, and its exact pending count and lag;
- `delivery`: receive (with long polling), ack, nack, extend and term;
- `service`: create, list, describe, change, delete and seek; the dead letters;
- `ack_ids`: signed ack ids, bound to one consumer, one event and one lease.
"""
