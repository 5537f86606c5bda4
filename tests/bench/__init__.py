"""Benchmarks (issue #7): `make bench` / `python -m tests.bench`. Not tests: pytest collects nothing here.

Every figure is measured next to its baseline in the same run; stdout gets one `name: value` line per
figure, stderr the progress. The results and what bounds each figure are in docs/performance.md.
"""
