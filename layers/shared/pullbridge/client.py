"""The Python client of the pullbridge HTTP API (httpx; importable without boto3 or any server module).

    with Client("https://api.example.com", api_key) as client:
        stream = client.iter_events(cursor=load_saved_cursor(), follow=True)
        for event in stream:
            handle(event)
            save_cursor(stream.cursor)  # resume from here: nothing lost, nothing repeated

Requests are retried with bounded exponential backoff on 429 (honouring `Retry-After`), on 5xx and on
transport errors; failures raise `PullbridgeAPIError` subclasses carrying the API's error object, or
httpx's own `TransportError` once the retries are spent. See docs/client.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from pullbridge import __version__

__all__ = [
    "BadRequest",
    "Client",
    "Conflict",
    "Event",
    "EventStream",
    "Gone",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "PullbridgeAPIError",
    "PullbridgeClientError",
    "RateLimited",
    "ResumeError",
    "ServerError",
    "Unauthorized",
]

T = TypeVar("T")

EventSourceFilter = Literal["webhook", "pull"]

# Methods that may be sent twice without a second effect. Others (POST) are retried only when the request
# certainly never reached the server: a 429, or a connection that could not be opened.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# A resume cursor made by this client (mid-page, see EventStream) rather than by the server.
_RESUME_PREFIX = "pbr1:"


# --- errors ----------------------------------------------------------------------------------------


class PullbridgeClientError(Exception):
    """Everything this module raises itself (transport failures stay httpx.TransportError)."""


class ResumeError(PullbridgeClientError, ValueError):
    """A saved resume cursor that is malformed or does not belong to this stream (other filters)."""


class PullbridgeAPIError(PullbridgeClientError):
    """An error answer of the API, with the contract's error object: `type`, `message`, `key`, `data`."""

    error_types: tuple[str, ...] = ()

    def __init__(
        self,
        status_code: int,
        error_type: str,
        message: str,
        key: str = "",
        data: Mapping[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{error_type}: {message} (HTTP {status_code})")
        self.status_code = status_code
        self.error_type = error_type
        self.message = message
        self.key = key
        self.data: dict[str, Any] = dict(data or {})
        self.retry_after = retry_after

    @property
    def error(self) -> dict[str, Any]:
        """The error object as the API sent it."""
        return {"type": self.error_type, "message": self.message, "key": self.key, "data": self.data}


class BadRequest(PullbridgeAPIError):
    """400: a validation error (the message names the field), or a malformed or foreign cursor."""

    error_types = ("bad_request",)


class Unauthorized(PullbridgeAPIError):
    """401: a missing or wrong API key."""

    error_types = ("unauthorized", "forbidden")


class NotFound(PullbridgeAPIError):
    """404: no such resource for this tenant."""

    error_types = ("not_found",)


class Conflict(PullbridgeAPIError):
    """409: e.g. a pull is already running; `pull_id` names it."""

    error_types = ("conflict",)

    @property
    def pull_id(self) -> str | None:
        value = self.data.get("pull_id")
        return value if isinstance(value, str) else None


class Gone(PullbridgeAPIError):
    """410: the cursor is older than the retention period."""

    error_types = ("gone",)


class PayloadTooLarge(PullbridgeAPIError):
    error_types = ("payload_too_large",)


class RateLimited(PullbridgeAPIError):
    """429 after the retries were spent (or a `Retry-After` longer than the client waits)."""

    error_types = ("rate_limited",)


class ServerError(PullbridgeAPIError):
    """5xx after the retries were spent."""

    error_types = ("internal",)


_BY_TYPE: dict[str, type[PullbridgeAPIError]] = {
    error_type: cls
    for cls in (BadRequest, Unauthorized, NotFound, Conflict, Gone, PayloadTooLarge, RateLimited, ServerError)
    for error_type in cls.error_types
}
_BY_STATUS: dict[int, type[PullbridgeAPIError]] = {
    400: BadRequest,
    422: BadRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    429: RateLimited,
}
_TYPE_OF_STATUS = {
    400: "bad_request",
    422: "bad_request",
    401: "unauthorized",
    403: "unauthorized",
    404: "not_found",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    429: "rate_limited",
}


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def error_from_response(response: httpx.Response) -> PullbridgeAPIError:
    """The typed exception for an error response: its error object, or one made from the status."""
    status = response.status_code
    retry_after = _retry_after(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        error_type: str = error["type"]
        message = str(error.get("message") or response.reason_phrase or error_type)
        key = str(error.get("key") or "")
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
    else:  # not the API's own answer (e.g. a gateway or proxy in front of it)
        error_type = _TYPE_OF_STATUS.get(status, "internal" if status >= 500 else "http_error")
        detail = body.get("message") if isinstance(body, dict) else None
        message = _one_line(str(detail or response.reason_phrase or f"HTTP {status}"))
        key, data = "", {}
    cls = _BY_TYPE.get(error_type) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else PullbridgeAPIError
    return cls(status, error_type, message, key, data, retry_after=retry_after)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- models ----------------------------------------------------------------------------------------


class Event(BaseModel):
    """One event, as `GET /events` returns it. Unknown fields a newer server adds are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    connection_id: str
    provider: str
    collection: str | None = None
    type: str
    action: str | None = None
    record_id: str | None = None
    source: str
    pull_id: str | None = None
    occurred_at: str | None = None
    received_at: str
    data: Any = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: `data`, the `next_cursor` to send for the next page, and `has_more`."""

    data: list[T]
    next_cursor: str
    has_more: bool


# --- resume cursors --------------------------------------------------------------------------------


def _encode_resume(page_cursor: str | None, consumed: int, last_id: str) -> str:
    payload = json.dumps({"c": page_cursor, "n": consumed, "a": last_id}, separators=(",", ":"))
    return _RESUME_PREFIX + base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def _decode_resume(cursor: str | None) -> tuple[str | None, int, str | None]:
    """(server cursor, events of its page already consumed, id of the last one consumed)."""
    if cursor is None or not cursor.startswith(_RESUME_PREFIX):
        return cursor, 0, None
    text = cursor[len(_RESUME_PREFIX) :]
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        page_cursor, consumed, last_id = payload["c"], payload["n"], payload["a"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise ResumeError("malformed resume cursor") from exc
    valid = (
        (page_cursor is None or isinstance(page_cursor, str))
        and isinstance(consumed, int)
        and 0 < consumed <= 500
        and isinstance(last_id, str)
    )
    if not valid:
        raise ResumeError("malformed resume cursor")
    return page_cursor, consumed, last_id


class EventStream(Iterator[Event]):
    """The events after a cursor, following `next_cursor` page after page.

    `cursor` is where to resume: after each event is yielded it is the cursor *after that event* (and it
    also advances over pages that held nothing matching). Save it once the event is processed; passing it
    back as `iter_events(cursor=...)` (or `pullbridge events tail --cursor`) continues with the next event,
    with no loss and no duplicate. At a page's end it is the server's own `next_cursor`; in the middle of
    a page it is a client-made token (`pbr1:...`) that only this client and the CLI understand.

    Without `follow`, the stream ends when the log has nothing more (`has_more` false). With `follow` it
    long-polls (`wait` seconds per request) until closed: `close()`, `with`, or just stop iterating.
    """

    def __init__(
        self,
        client: Client,
        cursor: str | None,
        *,
        follow: bool,
        limit: int,
        wait: float,
        filters: Mapping[str, str | None],
    ) -> None:
        if not 1 <= limit <= 500:
            raise ValueError("limit must be 1-500")
        self.cursor: str | None = cursor
        self._client = client
        self._follow = follow
        self._limit = limit
        self._wait = wait
        self._filters = dict(filters)
        self._events = self._run()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        """Stops the stream; `cursor` stays where the last yielded event left it."""
        self._events.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> Generator[Event, None, None]:
        page_cursor, skip, last_id = _decode_resume(self.cursor)
        while True:
            page = self._client.list_events(
                page_cursor,
                limit=max(self._limit, skip),
                wait=self._wait if self._follow else 0,
                **self._filters,
            )
            events = page.data
            start = 0
            if last_id is not None:
                start = _skip_through(events, skip, last_id)
                last_id = None
            for index in range(start, len(events)):
                event = events[index]
                last_of_page = index == len(events) - 1
                self.cursor = (
                    page.next_cursor if last_of_page else _encode_resume(page_cursor, index + 1, event.id)
                )
                yield event
            self.cursor = page_cursor = page.next_cursor
            skip = 0
            if not page.has_more:
                if not self._follow:
                    return
                if self._wait < 1 and not events:
                    self._client.sleep(1.0)  # without long polling, poll at most once a second


def _skip_through(events: list[Event], consumed: int, last_id: str) -> int:
    """Where to continue in a resumed page: after `last_id`, which the saved cursor says it had consumed."""
    if len(events) >= consumed and events[consumed - 1].id == last_id:
        return consumed
    for index, event in enumerate(events):
        if event.id == last_id:
            return index + 1
    raise ResumeError(
        "the resume cursor does not match this stream: use the filters it was made with "
        "(or its events have expired)"
    )


# --- the client ------------------------------------------------------------------------------------


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def _timestamp(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


class Client:
    """A pullbridge API client. Thread-safe as far as the httpx.Client it uses is.

    `http`: an httpx.Client to send with (e.g. one on an `httpx.MockTransport` in tests); it is then the
    caller's to close. Without one the client makes its own and closes it in `close()` / `with`.
    `max_retries`: retries after the first attempt; `sleep`: how to wait between them.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.sleep = sleep
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._headers = {
            "authorization": f"Bearer {api_key}",
            "accept": "application/json",
            "user-agent": f"pullbridge-python/{__version__}",
        }

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- transport --

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not security)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call, retried as the class says; the decoded JSON body (None for an empty one)."""
        method = method.upper()
        idempotent = method in _IDEMPOTENT
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    url,
                    params=_clean(params or {}),
                    json=json_body,
                    headers=self._headers,
                    timeout=timeout or self.timeout,
                )
            except httpx.TransportError as exc:
                if attempt >= self.max_retries or not (idempotent or isinstance(exc, _NOT_SENT)):
                    raise
                self.sleep(self._delay(attempt))
                attempt += 1
                continue
            status = response.status_code
            if attempt < self.max_retries and (status == 429 or (status >= 500 and idempotent)):
                retry_after = _retry_after(response)
                if retry_after is None or retry_after <= self.max_retry_after:
                    response.close()
                    self.sleep(self._delay(attempt) if retry_after is None else retry_after)
                    attempt += 1
                    continue
            if status >= 400:
                raise error_from_response(response)
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise PullbridgeAPIError(
                    status, "bad_response", "the response is not JSON", "bad_response"
                ) from None

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def _page(self, path: str, params: Mapping[str, Any]) -> Page[dict[str, Any]]:
        body = self.request("GET", path, params=params)
        return Page(list(body["data"]), body["next_cursor"], bool(body["has_more"]))

    def _iterate(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self._page(path, {**params, "cursor": cursor})
            yield from page.data
            if not page.has_more:
                return
            cursor = page.next_cursor

    # -- events --

    def list_events(
        self,
        cursor: str | None = None,
        *,
        limit: int = 100,
        wait: float = 0,
        connection_id: str | None = None,
        provider: str | None = None,
        collection: str | None = None,
        type: str | None = None,
        source: EventSourceFilter | str | None = None,
    ) -> Page[Event]:
        """One page of `GET /events` (a server cursor only: use iter_events to resume a client one)."""
        params = {
            "cursor": cursor,
            "limit": limit,
            "wait": wait or None,
            "connection_id": connection_id,
            "provider": provider,
            "collection": collection,
            "type": type,
            "source": source,
        }
        # A long poll holds the request up to `wait` seconds: the read timeout must outlast it.
        body = self.request(
            "GET", "/events", params=params, timeout=max(self.timeout, wait + 10) if wait else None
        )
        try:
            events = [Event.model_validate(item) for item in body["data"]]
        except ValidationError as exc:
            raise PullbridgeAPIError(200, "bad_response", f"unexpected event shape: {exc}") from None
        return Page(events, body["next_cursor"], bool(body["has_more"]))

    def iter_events(
        self,
        cursor: str | None = None,
        follow: bool = False,
        *,
        limit: int = 100,
        wait: float = 20,
        connection_id: str | None = None,
        provider: str | None = None,
        collection: str | None = None,
        type: str | None = None,
        source: EventSourceFilter | str | None = None,
    ) -> EventStream:
        """Every matching event after `cursor` (from the start without one), exactly once, in log order.

        The returned stream's `.cursor` is where to resume after the last event it yielded: see
        EventStream. `wait` (0-20 s) is the long poll of each request in `follow` mode.
        """
        filters = {
            "connection_id": connection_id,
            "provider": provider,
            "collection": collection,
            "type": type,
            "source": source,
        }
        return EventStream(self, cursor, follow=follow, limit=limit, wait=wait, filters=filters)

    def get_event(self, event_id: str) -> Event:
        return Event.model_validate(self._get(f"/events/{quote(event_id, safe='')}"))

    # -- connections --

    def create_connection(
        self,
        provider: str,
        name: str,
        *,
        webhook_secrets: list[str] | None = None,
        credentials: Mapping[str, str] | None = None,
        api_base_url: str | None = None,
        settings: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Creates a connection; the answer (with its `webhook_url`) never holds its secrets."""
        body = _clean(
            {
                "provider": provider,
                "name": name,
                "webhook_secrets": webhook_secrets,
                "credentials": dict(credentials) if credentials is not None else None,
                "api_base_url": api_base_url,
                "settings": dict(settings) if settings is not None else None,
                "metadata": dict(metadata) if metadata is not None else None,
            }
        )
        created: dict[str, Any] = self.request("POST", "/connections", json_body=body)
        return created

    def list_connections(self, cursor: str | None = None, *, limit: int = 100) -> Page[dict[str, Any]]:
        return self._page("/connections", {"cursor": cursor, "limit": limit})

    def iter_connections(self, *, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every active connection, newest first."""
        return self._iterate("/connections", {"limit": limit})

    def get_connection(self, connection_id: str) -> dict[str, Any]:
        connection: dict[str, Any] = self._get(f"/connections/{quote(connection_id, safe='')}")
        return connection

    def update_connection(
        self,
        connection_id: str,
        *,
        name: str | None = None,
        webhook_secrets: list[str] | None = None,
        credentials: Mapping[str, str] | None = None,
        api_base_url: str | None = None,
        settings: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Renames, rotates secrets (the full new list), changes credentials or settings; None keeps."""
        body = _clean(
            {
                "name": name,
                "webhook_secrets": webhook_secrets,
                "credentials": dict(credentials) if credentials is not None else None,
                "api_base_url": api_base_url,
                "settings": dict(settings) if settings is not None else None,
                "metadata": dict(metadata) if metadata is not None else None,
            }
        )
        updated: dict[str, Any] = self.request(
            "PATCH", f"/connections/{quote(connection_id, safe='')}", json_body=body
        )
        return updated

    def archive_connection(self, connection_id: str) -> dict[str, Any]:
        archived: dict[str, Any] = self.request("DELETE", f"/connections/{quote(connection_id, safe='')}")
        return archived

    # -- subscriptions --

    def create_subscription(
        self,
        connection_id: str,
        collection: str,
        *,
        full_sync_interval_seconds: int | None = None,
        backfill: bool | None = None,
        max_age_days: int | None = None,
    ) -> dict[str, Any]:
        body = _clean(
            {
                "connection_id": connection_id,
                "collection": collection,
                "full_sync_interval_seconds": full_sync_interval_seconds,
                "backfill": backfill,
                "max_age_days": max_age_days,
            }
        )
        created: dict[str, Any] = self.request("POST", "/external-event-subscriptions", json_body=body)
        return created

    def list_subscriptions(self, cursor: str | None = None, *, limit: int = 100) -> Page[dict[str, Any]]:
        return self._page("/external-event-subscriptions", {"cursor": cursor, "limit": limit})

    def iter_subscriptions(self, *, limit: int = 100) -> Iterator[dict[str, Any]]:
        return self._iterate("/external-event-subscriptions", {"limit": limit})

    def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        subscription: dict[str, Any] = self._get(
            f"/external-event-subscriptions/{quote(subscription_id, safe='')}"
        )
        return subscription

    def update_subscription(
        self,
        subscription_id: str,
        *,
        full_sync_interval_seconds: int | None = None,
        max_age_days: int | None = None,
        status: Literal["subscribed", "paused"] | None = None,
    ) -> dict[str, Any]:
        body = _clean(
            {
                "full_sync_interval_seconds": full_sync_interval_seconds,
                "max_age_days": max_age_days,
                "status": status,
            }
        )
        updated: dict[str, Any] = self.request(
            "PATCH", f"/external-event-subscriptions/{quote(subscription_id, safe='')}", json_body=body
        )
        return updated

    def delete_subscription(self, subscription_id: str) -> None:
        self.request("DELETE", f"/external-event-subscriptions/{quote(subscription_id, safe='')}")

    # -- pulls --

    def trigger_pull(self, subscription_id: str) -> dict[str, Any]:
        """Starts a full scan now: the queued pull. Raises Conflict (`.pull_id`) if one is running."""
        pull: dict[str, Any] = self.request(
            "POST", f"/external-event-subscriptions/{quote(subscription_id, safe='')}/pull"
        )
        return pull

    def get_pull(self, pull_id: str) -> dict[str, Any]:
        pull: dict[str, Any] = self._get(f"/external-event-pulls/{quote(pull_id, safe='')}")
        return pull

    def list_pulls(
        self,
        cursor: str | None = None,
        *,
        limit: int = 100,
        status: str | None = None,
        subscription_id: str | None = None,
        connection_id: str | None = None,
        provider: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
    ) -> Page[dict[str, Any]]:
        """One page of pull records, newest first; `from_`/`to` bound `start_datetime`."""
        return self._page(
            "/external-event-pulls",
            {
                "cursor": cursor,
                "limit": limit,
                "status": status,
                "external_event_subscription_id": subscription_id,
                "connection_id": connection_id,
                "provider": provider,
                "from": _timestamp(from_),
                "to": _timestamp(to),
            },
        )

    def iter_pulls(
        self,
        status: str | None = None,
        subscription_id: str | None = None,
        *,
        connection_id: str | None = None,
        provider: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        limit: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Every matching pull record, newest first (`limit` is the page size, 1-1000)."""
        return self._iterate(
            "/external-event-pulls",
            {
                "limit": limit,
                "status": status,
                "external_event_subscription_id": subscription_id,
                "connection_id": connection_id,
                "provider": provider,
                "from": _timestamp(from_),
                "to": _timestamp(to),
            },
        )
