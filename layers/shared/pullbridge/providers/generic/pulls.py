"""A generic connection's pulls: a REST collection paged by a cursor in the body or by `Link` (and, with
`updated_since_param`, asked for what changed since a time), or an events feed read incrementally, as its
`settings` configure them."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard
from urllib.parse import urlencode

from pullbridge.errors import PullFailed, ValidationFailed
from pullbridge.providers.base import (
    ACTIONS,
    ListedRecord,
    ListPage,
    ProviderHttp,
    PullSource,
    ResponseT,
    action_from_type,
    format_iso_time,
)
from pullbridge.providers.generic.paths import id_string, resolve, time_seconds
from pullbridge.providers.generic.settings import (
    DEFAULT_FEED_PATH,
    DEFAULT_FEED_TYPE_PATH,
    DEFAULT_ID_PATH,
    FEED_CURSOR_PARAM,
    GenericSettings,
    parse_settings,
)

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")


def list_pages(
    http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
) -> Iterator[ListPage]:
    """`settings.mode` `rest` (the default): `GET {list_path}`, items at `items_path`, each record's id
    at `id_path`; the next page from `next_cursor_path` sent back as `cursor_param` (the checkpoint is
    that cursor), or else from the `Link` header (the checkpoint is the next URL).

    `feed`: `GET {feed_path}?cursor=<checkpoint>` answering `{data, next_cursor, has_more}`, read as
    incremental pages. Its last page's checkpoint is the feed's `next_cursor` too (or the cursor that
    was sent, when it returns none), so the next pull continues where this one stopped."""
    config = _pull_settings(source.settings)
    if not source.base_url:
        raise PullFailed(
            "bad_request",
            "a generic connection needs api_base_url to pull",
            key="missing_base_url",
            data={"field": "api_base_url"},
        )
    base = source.base_url.rstrip("/")
    headers = auth_headers(source.credentials)
    if config.mode == "feed":
        yield from _feed_pages(http, config, base, headers, checkpoint)
    else:
        yield from _rest_pages(http, config, base, headers, checkpoint)


def supports_updates(settings: Mapping[str, Any]) -> bool:
    """A REST collection with `updated_since_param` can be asked what changed; a feed is incremental by
    itself, and a collection without the parameter can only be scanned."""
    try:
        config = parse_settings(settings)
    except ValidationFailed:
        return False
    return config.mode != "feed" and config.list_path is not None and config.updated_since_param is not None


def updated_pages(
    http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
) -> Iterator[ListPage]:
    """The REST collection with `updated_since_param=<since>` added, as `updated_since_format` writes it
    (ISO 8601 by default, or unix seconds or milliseconds). With `next_cursor_path` it goes with every
    request, beside the cursor; with `Link` paging only with the first, as the next URLs carry it."""
    config = _pull_settings(source.settings)
    if config.mode == "feed" or config.updated_since_param is None:
        raise PullFailed(
            "bad_request",
            "set settings.updated_since_param (mode 'rest') to pull this connection incrementally",
            key="invalid_settings",
            data={"field": "settings.updated_since_param"},
        )
    if not source.base_url:
        raise PullFailed(
            "bad_request",
            "a generic connection needs api_base_url to pull",
            key="missing_base_url",
            data={"field": "api_base_url"},
        )
    since_filter = {config.updated_since_param: _since_value(since, config.updated_since_format)}
    yield from _rest_pages(
        http, config, source.base_url.rstrip("/"), auth_headers(source.credentials), checkpoint, since_filter
    )


def _since_value(since: float, form: str | None) -> str:
    if form == "unix":
        return str(math.floor(since))
    if form == "unix_ms":
        return str(math.floor(since * 1000))
    return format_iso_time(since)


def _pull_settings(settings: Mapping[str, Any]) -> GenericSettings:
    try:
        return parse_settings(settings)
    except ValidationFailed as exc:
        raise PullFailed("bad_request", exc.message, key="invalid_settings", data=exc.data) from exc


def auth_headers(credentials: Mapping[str, Any]) -> dict[str, str]:
    """`{"bearer_token"}` or `{"header_name", "header_value"}`; none at all for a public API."""
    token = credentials.get("bearer_token")
    if token is not None:
        if not _header_safe(token):
            raise _invalid_credentials("credentials.bearer_token")
        return {"Authorization": f"Bearer {token}"}
    name, value = credentials.get("header_name"), credentials.get("header_value")
    if name is None and value is None:
        return {}
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise _invalid_credentials("credentials.header_name")
    if not _header_safe(value):
        raise _invalid_credentials("credentials.header_value")
    return {name: value}


def _header_safe(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value) and value.isascii() and value.isprintable()


def _invalid_credentials(field: str) -> PullFailed:
    return PullFailed(
        "bad_request",
        "generic credentials are {bearer_token} or {header_name, header_value}, printable ASCII",
        key="missing_credentials",
        data={"field": field},
    )


def _page_params(
    config: GenericSettings,
    cursor_param: str | None,
    cursor: str | None,
    filters: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """The filters, the page size and the cursor, as far as they are configured and known; None when
    there is none of them."""
    params: dict[str, str] = dict(filters or {})
    if config.page_size is not None and config.page_size_param is not None:
        params[config.page_size_param] = str(config.page_size)
    if cursor_param is not None and cursor is not None:
        params[cursor_param] = cursor
    return params or None


# --- a REST collection ----------------------------------------------------------------------------


def _rest_pages(
    http: ProviderHttp[ResponseT],
    config: GenericSettings,
    base: str,
    headers: Mapping[str, str],
    checkpoint: str | None,
    filters: Mapping[str, str] | None = None,
) -> Iterator[ListPage]:
    if config.list_path is None:
        raise PullFailed(
            "bad_request",
            "set settings.list_path (or settings.mode 'feed') to pull this connection",
            key="invalid_settings",
            data={"field": "settings.list_path"},
        )
    first_url = base + config.list_path
    if config.next_cursor_path is not None:
        yield from _cursor_pages(http, config, first_url, headers, checkpoint, filters)
        return
    if checkpoint is not None:
        http.require_same_origin(checkpoint, base)
    elif filters:
        # Link paging: the next URLs carry the filters themselves, so only the first gets them.
        first_url += ("&" if "?" in first_url else "?") + urlencode(filters)
    yield from _link_pages(http, config, base, headers, first_url if checkpoint is None else checkpoint)


def _cursor_pages(
    http: ProviderHttp[ResponseT],
    config: GenericSettings,
    url: str,
    headers: Mapping[str, str],
    cursor: str | None,
    filters: Mapping[str, str] | None,
) -> Iterator[ListPage]:
    """Pages of `url`, each asked for with the cursor the page before held at `next_cursor_path`."""
    while True:
        params = _page_params(config, config.cursor_param, cursor, filters)
        body, _ = http.get_json(url, params=params, headers=headers)
        items = _items(body, config)
        records = _records(items, config)
        next_cursor = id_string(resolve(body, config.next_cursor_path))
        # An API that always answers with a cursor ends on an empty page or a repeated cursor.
        cursor = None if not items or next_cursor == cursor else next_cursor
        yield ListPage(records=records, next_checkpoint=cursor)
        if cursor is None:
            return


def _link_pages(
    http: ProviderHttp[ResponseT],
    config: GenericSettings,
    base: str,
    headers: Mapping[str, str],
    url: str,
) -> Iterator[ListPage]:
    """Pages from `url` on, each the `Link: <...>; rel="next"` of the page before."""
    next_url: str | None = url
    while next_url is not None:
        body, response = http.get_json(next_url, params=_page_params(config, None, None), headers=headers)
        records = _records(_items(body, config), config)
        next_url = http.next_link(response, same_origin_as=base)
        yield ListPage(records=records, next_checkpoint=next_url)


def _items(body: Any, config: GenericSettings) -> list[Any]:
    items = body if config.items_path is None else resolve(body, config.items_path)
    if not isinstance(items, list):
        raise PullFailed("bad_response", f"the list response has no array at items_path {config.items_path}")
    return items


def _records(items: list[Any], config: GenericSettings) -> list[ListedRecord]:
    return [
        ListedRecord(
            record_id=_listed_id(item, index, config),
            data=item,
            created_at=time_seconds(resolve(item, config.created_at_path)),
        )
        for index, item in enumerate(items)
    ]


def _listed_id(item: Any, index: int, config: GenericSettings) -> str:
    path = config.id_path or DEFAULT_ID_PATH
    found = id_string(resolve(item, path))
    if found is None:
        raise PullFailed("bad_response", f"item [{index}] has no string or integer id at id_path {path}")
    return found


# --- an events feed -------------------------------------------------------------------------------


def _feed_pages(
    http: ProviderHttp[ResponseT],
    config: GenericSettings,
    base: str,
    headers: Mapping[str, str],
    checkpoint: str | None,
) -> Iterator[ListPage]:
    url = base + (config.feed_path or DEFAULT_FEED_PATH)
    cursor = checkpoint
    while True:
        params = _page_params(config, FEED_CURSOR_PARAM, cursor or None)
        body, _ = http.get_json(url, params=params, headers=headers)
        items, has_more, next_cursor = _feed_answer(body, cursor)
        records = [_feed_record(item, index, config) for index, item in enumerate(items)]
        # With nothing new the feed may return no cursor: the one sent still marks the position.
        cursor = next_cursor or cursor
        yield ListPage(records=records, next_checkpoint=cursor, incremental=True)
        if not has_more:
            return


def _feed_answer(body: Any, cursor: str | None) -> tuple[list[Any], bool, str | None]:
    """The feed's `data`, `has_more` and `next_cursor`, or `PullFailed` for any other answer."""
    answer: Mapping[str, Any] = body if isinstance(body, dict) else {}
    items, has_more, next_cursor = answer.get("data"), answer.get("has_more"), answer.get("next_cursor")
    if not isinstance(items, list) or not isinstance(has_more, bool):
        raise PullFailed("bad_response", "the feed did not answer {data: [...], has_more: bool}")
    if next_cursor is not None and (not isinstance(next_cursor, str) or not next_cursor):
        raise PullFailed("bad_response", "the feed's next_cursor is not a non-empty string")
    if has_more and (next_cursor is None or next_cursor == cursor):
        raise PullFailed(
            "bad_response", "the feed has more but its cursor does not advance", key="stuck_paging"
        )
    return items, has_more, next_cursor


def _feed_record(item: Any, index: int, config: GenericSettings) -> ListedRecord:
    found_type = resolve(item, config.feed_type_path or DEFAULT_FEED_TYPE_PATH)
    event_type = found_type if isinstance(found_type, str) and found_type else None
    found_action = resolve(item, config.feed_action_path)
    if isinstance(found_action, str) and found_action in ACTIONS:
        action: str | None = found_action
    else:
        action = action_from_type(event_type) if event_type and config.feed_action_path is None else None
    return ListedRecord(
        record_id=_listed_id(item, index, config),
        data=item,
        type=event_type,
        action=action,
        occurred_at=time_seconds(resolve(item, config.feed_occurred_at_path)),
    )
