"""Mutations: writes back to the provider, recorded in the log and the records as they land.

- `models`: the API's edges (`POST /mutations`, the Mutation object).
- `planning`: the pure decisions: is the request one the provider can make, what a failure means for the
  mutation's status, what a retry of an unknown outcome does first.
- `service`: one mutation's run: the stored mutation, the provider call, the commit of its event, record and
  snapshot.
- `idempotency`: `Idempotency-Key`, with Powertools' Idempotency utility over its own table.
"""
