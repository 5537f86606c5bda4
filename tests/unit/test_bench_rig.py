"""The benchmarks' rig builds settings that every function accepts: `make bench` broke unseen once, when
the settings gained a table (the mutations' idempotency table) that the rig did not name."""

from __future__ import annotations

from bench.bench_common import Rig


def test_fresh_tables_name_every_table_of_the_template() -> None:
    with Rig() as rig:
        settings = rig.fresh_tables(allow_private_urls=True)
        rig.store(settings).check_reachable()

    assert (settings.events_table, settings.control_table, settings.idempotency_table) == (
        "EventsTable",
        "ControlTable",
        "IdempotencyTable",
    )
