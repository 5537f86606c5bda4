"""The mutation routes' JSON, as the API answers it, for the mutation tests."""

from __future__ import annotations

from typing import Any


def mutation_json(number: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"mut_{number:04d}",
        "connection_id": "conn_1",
        "collection": "customers",
        "kind": "update",
        "record_id": "cus_1",
        "status": "succeeded",
        "record": {"id": "cus_1", "object": "customer", "name": "Ada"},
        "event_id": f"evt_{number:04d}",
        "error": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01Z",
        **changes,
    }


def error_json(
    error_type: str, message: str, key: str = "k", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, "key": key, "data": data or {}}}
