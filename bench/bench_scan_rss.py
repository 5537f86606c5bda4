"""The 100,000-record scan's memory, measured in a fresh interpreter (`python -m bench.bench_scan_rss
<json>`) so nothing else lives in its heap: not moto (the parent serves DynamoDB), not the upstream data.

The upstream is an in-memory list API that generates Stripe customers page by page (the fake provider's
own record factory, 100 a page, Stripe's page size), monkeypatched into the engine as
`tests/integration/test_pull_engine.py` does with `ListApi`: the HTTP fake re-sorts its whole dataset on
every request, O(N) a page, which for 100,000 records takes minutes. The engine, the store and the
snapshot load are the real ones, over HTTP to the parent's DynamoDB.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pullbridge.providers.base import ListedRecord, ListPage, PullSource
from tests.fakes.provider_server import _stripe_factory, fixture_json

MIB = 1024 * 1024


def customer_factory() -> Callable[[int], dict[str, Any]]:
    return _stripe_factory(fixture_json("stripe/objects/customer.json"))


@dataclass
class GeneratedCustomers:
    """Stripe customers 0..count-1, generated as they are listed, so the upstream holds one page."""

    name: ClassVar[str] = "stripe"
    collections: ClassVar[frozenset[str]] = frozenset({"customers"})
    webhook_matches_list_representation: ClassVar[bool] = True
    max_page_size: ClassVar[int] = 100
    default_base_url: ClassVar[str | None] = "https://api.stripe.com"
    request_id_header: ClassVar[str | None] = "Request-Id"

    count: int
    pages_served: int = 0

    def records(self, start: int, stop: int) -> list[dict[str, Any]]:
        make = customer_factory()
        return [make(seq) for seq in range(start, stop)]

    def list_pages(self, http: Any, source: PullSource, checkpoint: str | None) -> Iterator[ListPage]:
        for offset in range(int(checkpoint or 0), self.count, self.max_page_size):
            stop = min(offset + self.max_page_size, self.count)
            self.pages_served += 1
            yield ListPage(
                [ListedRecord(r["id"], r, created_at=r["created"]) for r in self.records(offset, stop)],
                next_checkpoint=str(stop) if stop < self.count else None,
            )


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(arguments: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from pullbridge.pulls import engine as engine_module
    from pullbridge.pulls.engine import PullEngine
    from pullbridge.pulls.records import load_pull
    from pullbridge.pulls.service import trigger_pull
    from pullbridge.settings import PullerSettings
    from pullbridge.storage import Store, dynamodb_client

    settings = PullerSettings(**arguments["settings"])
    upstream = GeneratedCustomers(arguments["count"])
    setattr(engine_module, "get_provider", lambda name: upstream)  # noqa: B010 - the upstream stands in
    store = Store(dynamodb_client(settings.dynamodb_endpoint), settings)
    engine = PullEngine(store, settings, httpx.Client())
    # Warm everything a scan touches once (botocore's parsers, the factory's fixture), then measure
    store.load_snapshot("warm-up", "customers")
    upstream.records(0, 1)
    gc.collect()
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak()
    peak_before = _status_kib("VmHWM")
    started = time.perf_counter()
    trigger_pull(store, arguments["tenant"], arguments["subscription_id"])
    pull_id = engine.advance(arguments["subscription_id"], deadline=time.time() + 600)
    seconds = time.perf_counter() - started
    peak_after = _status_kib("VmHWM")
    pull = load_pull(store, pull_id or "")
    return {
        # Without a reset the old peak may hide the scan's: then this is an upper bound
        "growth_mb": (peak_after - rss_before) * 1024 / MIB,
        "peak_before_mb": peak_before * 1024 / MIB,
        "rss_before_mb": rss_before * 1024 / MIB,
        "peak_mb": peak_after * 1024 / MIB,
        "peak_reset": reset,
        "seconds": seconds,
        "status": pull.status if pull else None,
        "stats": pull.stats if pull else None,
        "pages_served": upstream.pages_served,
    }


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
