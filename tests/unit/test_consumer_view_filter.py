"""The filter of a receive's view of a busy consumer's state stays within DynamoDB's expression limits."""

from __future__ import annotations

from pullbridge.storage.consumer_reads import MAX_VIEW_KEY_BYTES, MAX_VIEW_KEYS, _view_filter, view_keys_fit


def test_the_filter_names_at_most_100_records_to_an_in_and_fits_in_4_kb() -> None:
    keys = [f"conn_{n:026d}\x1fcustomers\x1fcus_{n:020d}" for n in range(MAX_VIEW_KEYS)]
    assert view_keys_fit(keys)
    expression, values = _view_filter(1_000.0, 1_001.0, 7, keys)
    assert len(expression.encode()) < 4096
    assert expression.count(" IN (") == MAX_VIEW_KEYS // 100
    assert all(clause.count(":k") <= 100 for clause in expression.split(" OR "))
    assert {values[name]["S"] for name in values if name.startswith(":k")} == set(keys)


def test_more_records_than_the_filter_can_name_are_read_whole() -> None:
    assert not view_keys_fit([f"k{n}" for n in range(MAX_VIEW_KEYS + 1)])
    assert not view_keys_fit(["x" * (MAX_VIEW_KEY_BYTES + 1)])
