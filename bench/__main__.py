"""`python -m bench [name ...]`: every benchmark, or the named ones (ingest, list, cold_start, scan,
rss, freshness, idle_poll, exactly_once, cost, scale, consumers, incremental, records). Figures on
stdout as `name: value`, progress on stderr."""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import cast

from bench import bench_common
from bench.bench_common import Rig, log

BENCHMARKS = {
    "ingest": "bench_ingest:run",
    "list": "bench_list:run",
    "cold_start": "bench_cold_start:run",
    "scan": "bench_scan:run",
    "rss": "bench_scan:run_rss",
    "freshness": "bench_freshness:run",
    "idle_poll": "bench_idle_poll:run",
    "exactly_once": "bench_exactly_once:run",
    "cost": "bench_cost:run",
    "scale": "bench_scale:run",
    "consumers": "bench_consumers:run",
    "incremental": "bench_incremental:run",
    "records": "bench_records:run",
}
"""Each benchmark's function, imported only when it runs: a run of some of them needs only their code."""


def benchmark(name: str) -> Callable[[Rig], None]:
    module_name, function_name = BENCHMARKS[name].split(":")
    module = importlib.import_module(f"bench.{module_name}")
    return cast("Callable[[Rig], None]", getattr(module, function_name))


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmarks {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    # Only figures on stdout: the functions print their EMF metrics to it (as Lambda wants), and the
    # local stack's worker processes inherit it, so descriptor 1 itself goes to /dev/null.
    sys.stdout.flush()
    bench_common.OUTPUT = os.fdopen(os.dup(1), "w", buffering=1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    with Rig() as rig:
        for name in argv or list(BENCHMARKS):
            began = time.perf_counter()
            log(f"{name}: start")
            benchmark(name)(rig)
            log(f"{name}: {time.perf_counter() - began:.1f} s")
    log(f"all done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
