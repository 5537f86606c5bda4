"""10,000 connections in one tenant, end to end: the exercise of tests/e2e/test_many_connections.py at
full size, over real HTTP on its own local stack (the functions in their worker processes, the embedded
DynamoDB in its own process). It prints what it did and how long it took, then fails unless every
connection was created, every webhook accepted and every event read back exactly once, in one order.

About 6 minutes on 2 cores, once `pullbridge_local/moto_transactions.py` backs up only what a transaction
names (docs/performance.md, "10,000 connections in one tenant"); before that the stack's DynamoDB
process keeps a copy of the tables' index per transaction and runs out of memory."""

from __future__ import annotations

import time

from bench.bench_common import Rig, figure, log
from pullbridge_local.server import LocalStack
from tests.e2e.test_many_connections import exercise_many_connections, tenant_key

CONNECTIONS = 10_000
THREADS = 4


def run(rig: Rig) -> None:
    del rig  # a stack of its own: its DynamoDB must hold nothing but this tenant's log
    started = time.perf_counter()
    with LocalStack(port=0, run_schedules=False) as stack:
        key = tenant_key(stack, "t_bench_scale")
        result = exercise_many_connections(
            stack.url, key, CONNECTIONS, threads=THREADS, progress=lambda message: log(f"scale: {message}")
        )
    wall = time.perf_counter() - started
    figure("scale_connections", result.connections)
    figure("scale_events", result.accepted)
    figure("scale_webhooks_refused", len(result.refused))
    figure(
        "scale_exactly_once",
        f"read={len(result.log)} of {result.accepted} problems={len(result.problems)} "
        f"duplicates_answered={result.duplicates_answered}",
    )
    for step, seconds in result.seconds.items():
        figure(f"scale_{step}_seconds", seconds)
    figure("scale_seconds", wall)
    if result.refused:
        log(f"scale: first refusals: {result.refused[:3]}")
    if result.problems:
        log(f"scale: first problems: {result.problems[:5]}")
    assert not result.refused, f"{len(result.refused)} webhooks refused, the first: {result.refused[0]}"
    assert not result.problems, f"{len(result.problems)} problems, the first: {result.problems[0]}"
