"""HubSpot's CRM writes (https://developers.hubspot.com/docs/api/crm/contacts and the same for companies
and deals): `POST /crm/v3/objects/{type}` with `{"properties": {...}}` creates, `PATCH
/crm/v3/objects/{type}/{id}` updates, `DELETE /crm/v3/objects/{type}/{id}` archives (204).

A write's answer holds other properties than the list's (all the ones it set, and system ones), so the
object is read back with `GET /crm/v3/objects/{type}/{id}` asking for the properties the list asks for:
the written record is then exactly what the next scan lists, and the scan finds no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pullbridge.errors import PullFailed
from pullbridge.providers.base import (
    MUTATION_KINDS,
    ProviderHttp,
    ResponseT,
    WriteRequest,
    WrittenRecord,
    parse_iso_time,
)
from pullbridge.providers.writes import (
    answered_object,
    first_string,
    numeric_id,
    record_or_none,
    unreadable_answer,
)

WRITABLE: Mapping[str, frozenset[str]] = {
    collection: frozenset(MUTATION_KINDS) for collection in ("contacts", "companies", "deals")
}


def write(
    http: ProviderHttp[ResponseT],
    base: str,
    headers: Mapping[str, str],
    properties: list[str] | None,
    request: WriteRequest,
) -> WrittenRecord:
    """One checked write. The data is the object's properties (`{"email": ...}`), sent as
    `{"properties": data}`; `properties` is what the list asks for (None: HubSpot's default ones)."""
    url = f"{base}/crm/v3/objects/{request.collection}"
    if request.kind == "delete":
        record_id = numeric_id("HubSpot", str(request.record_id), "CRM ids are numbers")
        http.send("DELETE", f"{url}/{record_id}", headers=headers)
        return WrittenRecord(record_id=record_id, data=None, deleted=True)
    body = {"properties": dict(request.data or {})}
    if request.kind == "create":
        answer, _ = http.send("POST", url, json_body=body, headers=headers)
        written_id = record_id_of(answered_object("HubSpot", answer).get("id"))
        if written_id is None:
            raise unreadable_answer(f"HubSpot answered a {request.collection} create without its id")
    else:
        written_id = numeric_id("HubSpot", str(request.record_id), "CRM ids are numbers")
        answer, _ = http.send("PATCH", f"{url}/{written_id}", json_body=body, headers=headers)
    answered = answered_object("HubSpot", answer)
    try:
        listed = read_record(http, base, headers, properties, request.collection, written_id)
    except PullFailed:
        # The write is made: its answer stands in for the read that failed. It may hold other properties
        # than the list, so the next scan may see a change; an error here would hide a write that landed.
        listed = None
    data = listed if listed is not None else answered
    return WrittenRecord(record_id=written_id, data=data, version=parse_iso_time(data.get("updatedAt")))


def read_record(
    http: ProviderHttp[ResponseT],
    base: str,
    headers: Mapping[str, str],
    properties: list[str] | None,
    collection: str,
    record_id: str,
) -> dict[str, Any] | None:
    """`GET /crm/v3/objects/{type}/{id}` with the list's `properties`; None on a 404 (archived too)."""
    url = f"{base}/crm/v3/objects/{collection}/{numeric_id('HubSpot', record_id, 'CRM ids are numbers')}"
    params = {"properties": ",".join(properties)} if properties else None
    found = record_or_none(lambda: http.get_json(url, params=params, headers=headers)[0])
    return found if isinstance(found, dict) else None


def record_id_of(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def error_message(body: Any) -> str | None:
    """`{"status": "error", "message": ..., "category": "VALIDATION_ERROR", "correlationId": ...}`: the
    message, with its category."""
    if not isinstance(body, dict):
        return None
    message = first_string(body.get("message"))
    category = first_string(body.get("category"), body.get("errorType"))
    if message and category:
        return f"{message} ({category})"
    return message or category
