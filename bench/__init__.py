"""Benchmarks (issue #7): `make bench` / `python -m bench`. Not tests: `pytest tests` never collects them.

Every figure is measured next to its baseline in the same run; stdout gets one `name: value` line per
figure, stderr the progress. The results and what bounds each figure are in docs/performance.md.

The benchmarks reuse the tests' helpers (`tests.support`, `tests.paths`, `tests.fakes`, the e2e and
integration exercises) rather than copies of them; the tests import nothing from here but the unit tests
of the benchmarks' own accounting (`tests/unit/test_bench_cost.py`) and the soak's tests.

`bench.soak` is the fault-injection soak (`make soak`, issue 18), not a benchmark: `python -m bench` does
not run it. Its tests are tests/unit/test_soak_checker.py and tests/e2e/test_soak.py (a 60-second run, and
the deliberately broken builds its checker must catch).
"""
