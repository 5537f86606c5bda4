"""A connection's health: its last webhook, its last pull, its last full scan and what that scan found
that no webhook had delivered (`missed_by_webhooks`). No peer shows this; it tells a user how reliable
the provider's webhooks are for them, from what the scans find.

Keeping it costs the webhook path nothing: the last webhook's time is set on the connection log's head,
which every commit moves anyway. A pull's end writes one small item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pullbridge.clock import to_iso
from pullbridge.models import ConnectionHealth
from pullbridge.providers import get_provider
from pullbridge.pulls.records import StoredPull
from pullbridge.storage import Store


def record_pull(store: Store, pull: StoredPull) -> None:
    """Called when a pull ends. A full scan's outcome is kept per collection; what a complete scan
    found counts as missed by webhooks only where the webhooks carry the list API's representation
    (Stripe, Shopify: a delivered change leaves the next scan nothing to find) and the scan is not the
    first (which finds everything)."""
    ended_at = pull.ended_at or pull.started_at
    full_scan: dict[str, Any] | None = None
    if pull.is_full_scan and pull.status in ("success", "error"):
        comparable = get_provider(pull.provider).webhook_matches_list_representation and not pull.first_scan
        full_scan = {
            "at": to_iso(ended_at),
            "status": pull.status,
            "missed": pull.collected_events_count if comparable and pull.status == "success" else None,
        }
    store.save_pull_health(
        pull.connection_id, pulled_at=to_iso(ended_at), collection=pull.collection, full_scan=full_scan
    )


def healths(store: Store, tenant_id: str, connection_ids: Sequence[str]) -> dict[str, ConnectionHealth]:
    """Each connection's health, in two batch reads however many connections a page holds."""
    webhooks = store.last_webhooks(tenant_id, connection_ids)
    pulls = store.pull_healths(connection_ids)
    return {
        connection_id: _health(webhooks.get(connection_id), pulls.get(connection_id))
        for connection_id in connection_ids
    }


def _health(webhook_at_ms: int | None, pulls: dict[str, Any] | None) -> ConnectionHealth:
    scans = list((pulls or {}).get("scans", {}).values())
    latest = max(scans, key=lambda scan: scan["at"], default=None)
    missed = [scan["missed"] for scan in scans if scan.get("missed") is not None]
    return ConnectionHealth(
        last_webhook_at=to_iso(webhook_at_ms / 1000) if webhook_at_ms else None,
        last_pull_at=(pulls or {}).get("last_pull_at"),
        last_full_scan_at=latest["at"] if latest else None,
        last_full_scan_status=latest["status"] if latest else None,
        missed_by_webhooks=sum(missed) if missed else None,
    )
