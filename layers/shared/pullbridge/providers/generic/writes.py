"""A generic connection's writes, as its `settings.mutations` configure them per collection: each kind is
`{method, path}` on the connection's `api_base_url`, `{record_id}` in the path replaced by the record id
(percent-encoded), the data sent as JSON (wrapped in `body_key` when set). The object is read from the
answer at `answer_path` (default: the whole answer), its id at `id_path` (default: the pulls' `id_path`,
or `id`, as the pulls find ids), so a written record has the id and the shape the list gives it. An
update answered without the object (a 204) is read back when `read` is configured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pullbridge.errors import PullFailed, ValidationFailed
from pullbridge.providers.base import ProviderHttp, PullSource, ResponseT, WriteRequest, WrittenRecord
from pullbridge.providers.generic.paths import id_string, resolve
from pullbridge.providers.generic.pulls import auth_headers
from pullbridge.providers.generic.settings import (
    DEFAULT_ID_PATH,
    RECORD_ID_PLACEHOLDER,
    CollectionMutations,
    GenericSettings,
    parse_settings,
)
from pullbridge.providers.writes import (
    check_write,
    first_string,
    path_segment,
    record_or_none,
    unreadable_answer,
)


def writable_collections(settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
    """Each configured collection with its kinds; none when the settings are not valid."""
    try:
        config = parse_settings(settings)
    except ValidationFailed:
        return {}
    return {collection: calls.kinds() for collection, calls in (config.mutations or {}).items()}


def write(http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest) -> WrittenRecord:
    config = _settings(source.settings)
    check_write("this generic connection", writable_collections(source.settings), request)
    calls = (config.mutations or {})[request.collection]
    call = {"create": calls.create, "update": calls.update, "delete": calls.delete}[request.kind]
    assert call is not None  # noqa: S101 - check_write found the kind configured
    base, headers = _basics(source)
    path = call.path
    if request.record_id is not None and RECORD_ID_PLACEHOLDER in path:
        path = path.replace(RECORD_ID_PLACEHOLDER, path_segment(request.record_id))
    body: Any = None
    if request.kind != "delete":
        data = dict(request.data or {})
        body = {calls.body_key: data} if calls.body_key else data
    answer, _ = http.send(call.method, base + path, json_body=body, headers=headers)
    found = resolve(answer, calls.answer_path) if calls.answer_path else answer
    written = found if isinstance(found, dict) else None
    if request.kind == "delete":
        return WrittenRecord(record_id=str(request.record_id), data=written, deleted=True)
    id_path = calls.id_path or config.id_path or DEFAULT_ID_PATH
    answered_id = id_string(resolve(written, id_path)) if written is not None else None
    if request.kind == "update":
        record_id = str(request.record_id)
    elif answered_id is not None:
        record_id = answered_id
    else:
        raise unreadable_answer(f"the create's answer holds no id at {calls.answer_path or '$'}.{id_path}")
    if written is None and calls.read is not None:
        written = _read(http, base, headers, calls, record_id)
    return WrittenRecord(record_id=record_id, data=written)


def read_record(http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
    """`GET {read.path}`, the object at `answer_path`; None on a 404."""
    config = _settings(source.settings)
    calls = (config.mutations or {}).get(source.collection)
    if calls is None or calls.read is None:
        raise PullFailed(
            "bad_request",
            f"set settings.mutations.{source.collection}.read to read one record of this connection",
            key="invalid_settings",
            data={"field": f"settings.mutations.{source.collection}.read"},
        )
    base, headers = _basics(source)
    return _read(http, base, headers, calls, record_id)


def error_message(body: Any) -> str | None:
    """`{"message"}`, `{"error": {"message"}}`, `{"error": "..."}`, or a problem's `detail`/`title`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    nested = error.get("message") if isinstance(error, dict) else error
    return first_string(body.get("message"), nested, body.get("detail"), body.get("title"))


def _read(
    http: ProviderHttp[ResponseT],
    base: str,
    headers: Mapping[str, str],
    calls: CollectionMutations,
    record_id: str,
) -> dict[str, Any] | None:
    assert calls.read is not None  # noqa: S101 - the callers checked it
    url = base + calls.read.path.replace(RECORD_ID_PLACEHOLDER, path_segment(record_id))
    answer = record_or_none(lambda: http.get_json(url, headers=headers)[0])
    found = resolve(answer, calls.answer_path) if calls.answer_path else answer
    return found if isinstance(found, dict) else None


def _settings(settings: Mapping[str, Any]) -> GenericSettings:
    try:
        return parse_settings(settings)
    except ValidationFailed as exc:
        raise PullFailed("bad_request", exc.message, key="invalid_settings", data=exc.data) from exc


def _basics(source: PullSource) -> tuple[str, dict[str, str]]:
    if not source.base_url:
        raise PullFailed(
            "bad_request",
            "a generic connection needs api_base_url to write",
            key="missing_base_url",
            data={"field": "api_base_url"},
        )
    return source.base_url.rstrip("/"), auth_headers(source.credentials)
