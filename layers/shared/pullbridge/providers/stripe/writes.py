"""Stripe's writes (https://docs.stripe.com/api/customers, https://docs.stripe.com/api/products):
`POST /v1/{collection}` creates, `POST /v1/{collection}/{id}` updates, `DELETE /v1/{collection}/{id}`
deletes. Parameters are form-encoded, nested as Stripe reads them (`metadata[plan]=pro`,
`preferred_locales[0]=en`).

A create or an update carries the connection's `Idempotency-Key` when the mutation has one: Stripe keeps
the first answer to a key for 24 hours and replays it to a retry with the same parameters (a retry with
other parameters is a 400 `idempotency_error`). A delete carries none: Stripe documents keys on a DELETE
as having no effect, and a delete is idempotent by itself (the record is gone, or shown deleted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pullbridge.providers.base import MUTATION_KINDS, ProviderHttp, ResponseT, WriteRequest, WrittenRecord
from pullbridge.providers.writes import (
    answered_object,
    first_string,
    path_segment,
    record_or_none,
    unreadable_answer,
)

WRITABLE: Mapping[str, frozenset[str]] = {
    "customers": frozenset(MUTATION_KINDS),
    "products": frozenset(MUTATION_KINDS),
}
IDEMPOTENCY_HEADER = "Idempotency-Key"


def form_pairs(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`data` as Stripe's form parameters, in order: an object's keys as `name[key]`, a list's items as
    `name[0]`, booleans as `true`/`false`, and null, `{}` or `[]` as the empty string, which is how Stripe
    is told to unset a field (`description=`, `metadata=`)."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        _add_pairs(pairs, str(key), value)
    return pairs


def _add_pairs(pairs: list[tuple[str, str]], name: str, value: Any) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _add_pairs(pairs, f"{name}[{key}]", item)
    elif isinstance(value, list | tuple) and value:
        for index, item in enumerate(value):
            _add_pairs(pairs, f"{name}[{index}]", item)
    else:
        pairs.append((name, _scalar(value)))


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list | tuple):  # only empty ones get here
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return str(value)


def write(
    http: ProviderHttp[ResponseT], base: str, headers: Mapping[str, str], request: WriteRequest
) -> WrittenRecord:
    """One checked write (see `check_write`); the object Stripe answered, which is the list API's
    representation of it (Stripe answers every write with the object, unexpanded, as it lists it)."""
    url = f"{base}/v1/{request.collection}"
    if request.kind == "delete":
        record_id = str(request.record_id)
        body, _ = http.send("DELETE", f"{url}/{path_segment(record_id)}", headers=headers)
        answered = answered_object("Stripe", body)
        return WrittenRecord(record_id=record_id, data=answered, deleted=True)
    if request.idempotency_key:
        headers = {**headers, IDEMPOTENCY_HEADER: request.idempotency_key}
    if request.kind == "update":
        url = f"{url}/{path_segment(str(request.record_id))}"
    body, _ = http.send("POST", url, form=form_pairs(request.data or {}), headers=headers)
    answered = answered_object("Stripe", body)
    written_id = answered.get("id")
    if not isinstance(written_id, str) or not written_id:
        raise unreadable_answer(f"Stripe answered a {request.kind} of {request.collection} without an id")
    return WrittenRecord(record_id=written_id, data=answered, version=written_version(answered))


def written_version(answered: Mapping[str, Any]) -> float | None:
    """The version a written object carries (see `NormalizedEvent.version`). Stripe's version of an object
    is the `created` of the event that carried it, and a write's answer is no event. A product's `updated`
    is the time of the change, on Stripe's clock, and the event the change emits is created then or
    after: so it versions the written product, a webhook of this change or a later one still applies
    (the condition is `ver <= version`), and one of an older change, delivered late, is stale. A customer
    carries no update time: None, unversioned, as a scanned customer is."""
    updated = answered.get("updated") if answered.get("object") == "product" else None
    if isinstance(updated, int) and not isinstance(updated, bool):
        return float(updated)
    return None


def read_record(
    http: ProviderHttp[ResponseT], base: str, headers: Mapping[str, str], collection: str, record_id: str
) -> Any | None:
    """`GET /v1/{collection}/{id}`: the object as the list shows it; None on a 404, and for a deleted
    customer, which Stripe still answers with `{"id", "object", "deleted": true}`."""
    url = f"{base}/v1/{collection}/{path_segment(record_id)}"
    found = record_or_none(lambda: http.get_json(url, headers=headers)[0])
    if not isinstance(found, dict) or found.get("deleted") is True:
        return None
    return found


def error_message(body: Any) -> str | None:
    """`{"error": {"message": ..., "code": ..., "param": ...}}`: the message (it names the parameter)."""
    error = body.get("error") if isinstance(body, dict) else None
    return first_string(error.get("message")) if isinstance(error, dict) else None
