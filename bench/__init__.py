"""Benchmarks (issue #7): `make bench` / `python -m bench`. Not tests: `pytest tests` never collects them.

Every figure is measured next to its baseline in the same run; stdout gets one `name: value` line per
figure, stderr the progress. The results and what bounds each figure are in docs/performance.md.

The benchmarks reuse the tests' helpers (`tests.support`, `tests.paths`, `tests.fakes`, the e2e and
integration exercises) rather than copies of them; the tests import nothing from here but the unit tests
of the benchmarks' own accounting (`tests/unit/test_bench_cost.py`).
"""
