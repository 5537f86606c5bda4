"""`python -m bench.soak --duration 600 --seed 1 --faults dynamodb:0.1,provider:0.2 [--out DIR]`: one soak,
its summary on stdout (and in DIR/summary.md), the history and the fault log in DIR; exit status 1 when
the checker found a violation (or the harness itself failed)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bench.soak.builds import BROKEN, CONDITIONS
from bench.soak.run import SoakConfig, run_soak
from bench.soak.summary import summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds the actors run (600)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--faults", default="dynamodb:0.1,provider:0.2", help="PULLBRIDGE_FAULTS; '' for none"
    )
    parser.add_argument("--out", type=Path, default=Path(".artifacts/soak"))
    parser.add_argument(
        "--broken", action="append", default=[], choices=sorted(BROKEN), help="a broken build"
    )
    parser.add_argument("--condition", action="append", default=[], choices=sorted(CONDITIONS))
    options = parser.parse_args(argv)
    config = SoakConfig(
        out=options.out,
        duration=options.duration,
        seed=options.seed,
        faults=options.faults,
        broken=tuple(options.broken),
        conditions=tuple(options.condition),
    )
    # The functions' workers inherit descriptors 1 and 2 and print their EMF metrics, logs and tracebacks
    # to them, as Lambda wants: they go to DIR/functions.log; the summary goes to stdout, progress to stderr.
    options.out.mkdir(parents=True, exist_ok=True)
    output = os.fdopen(os.dup(1), "w", buffering=1)
    progress = os.fdopen(os.dup(2), "w", buffering=1)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=progress)
    functions_log = os.open(options.out / "functions.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(functions_log, 1)
    os.dup2(functions_log, 2)
    os.close(functions_log)
    result = run_soak(config)
    text = summary(result)
    (options.out / "summary.md").write_text(text + "\n", encoding="utf-8")
    print(text, file=output)
    return 1 if result.report.violations or result.crashes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
