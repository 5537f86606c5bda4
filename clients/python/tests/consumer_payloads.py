"""The consumer routes' JSON, as the API answers it, for the consumer tests."""

from __future__ import annotations

from typing import Any

BASE_URL = "https://pullbridge.test"
API_KEY = "pb_test_key"


def consumer_json(name: str = "billing", **changes: Any) -> dict[str, Any]:
    return {
        "id": f"cns_{name}",
        "name": name,
        "filters": {
            "connection_id": "conn_1",
            "provider": None,
            "collection": None,
            "type": "invoice.paid",
            "source": None,
        },
        "ack_wait_seconds": 30,
        "max_deliveries": 10,
        "max_ack_pending": 1000,
        "ordering": "record",
        "num_pending": 3,
        "num_ack_pending": 1,
        "num_waiting": 0,
        "num_dead": 2,
        "lag_seconds": 1.5,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        **changes,
    }


def event_json(number: int) -> dict[str, Any]:
    return {
        "id": f"evt_{number:04d}",
        "connection_id": "conn_1",
        "provider": "standard",
        "collection": None,
        "type": "invoice.paid",
        "action": None,
        "record_id": f"inv_{number}",
        "source": "webhook",
        "pull_id": None,
        "occurred_at": None,
        "received_at": "2026-01-01T00:00:00Z",
        "stale": False,
        "data": {"n": number},
    }
