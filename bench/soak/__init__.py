"""The soak (issue 18): `make soak DURATION=600 SEED=1 FAULTS=dynamodb:0.1,provider:0.2`.

One stack under the fault switch (`PULLBRIDGE_FAULTS`, docs/operations.md "Fault injection") and one set
of fake providers, with, for the whole run, concurrent actors that record every operation with its outcome
in a history (`history`): webhook writers with redeliveries, pulls against providers whose records change
underneath, mutations, pollers following cursors, and consumer workers that ack, nack, extend, term and
die (`actors`, `workers`). The end runs on a fault-free stack over the same tables (`run`); then the
checker (`checker`, `consumer_check`) reads the history and the fault log and proves each guarantee, or
reports the operations that break it.

`builds` runs the same soak against deliberately broken builds, which the checker must catch (the tests
in tests/e2e/test_soak.py and tests/unit/test_soak_checker.py). The checker imports nothing of the run.
"""
