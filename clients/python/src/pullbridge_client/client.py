"""`Client`: the pullbridge HTTP API over httpx, with bounded retries (see the package's README).

Requests are retried on 429 (honouring `Retry-After`), on 5xx and on transport errors, with the backoff
of `pullbridge_client.retry`; failures raise `PullbridgeAPIError` subclasses carrying the API's error
object, or httpx's own `TransportError` once the retries are spent. A POST is retried after a 5xx or a
lost answer only when it carries an `Idempotency-Key` (mutations), which makes the server answer a
repeat with the first answer instead of doing it again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from pullbridge_client._params import event_filters, given, pull_filters
from pullbridge_client._params import path as _path
from pullbridge_client._version import __version__
from pullbridge_client.consumers import ConsumerMethods
from pullbridge_client.errors import (
    ErrorObject,
    PullbridgeAPIError,
    error_from_response,
    response_retry_after,
)
from pullbridge_client.models import Event, Page
from pullbridge_client.mutations import MutationMethods
from pullbridge_client.retry import backoff_seconds
from pullbridge_client.stream import EventStream

__all__ = ["Client", "EventSourceFilter"]

EventSourceFilter = Literal["webhook", "pull", "mutation"]

# Methods that may be sent twice without a second effect. Others (POST) are retried only when the request
# certainly never reached the server (a 429, or a connection that could not be opened), or when they carry
# an Idempotency-Key: the server then answers a repeat with the first answer.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


KEY_IN_PROGRESS = "idempotency_key_in_progress"
"""The error key of a 409 to a keyed request whose first request with that key is still running."""
KEY_REUSED = "idempotency_key_reused"
"""The error key of a 409 to a keyed request whose key was used with another body: never retried."""
OUTCOME_UNKNOWN = "outcome_unknown"
"""The error key of a 409 to a keyed create the server will not send twice (the provider keeps no
idempotency keys and the first attempt may have landed): never retried; the caller decides."""


def _retryable(response: httpx.Response, *, idempotent: bool, keyed: bool, may_have_run: bool) -> bool:
    """Whether an answer is worth another attempt: a 429; a 5xx to a request that may be repeated; and a
    409 to a keyed request when the key's first request is still running. The server says so by the
    error's key; without it, a 409 after one of our own attempts may have reached the server (a 5xx, a
    lost answer) is taken as that attempt, still running. A repeat gets the first one's answer."""
    status = response.status_code
    if status == 409:
        if not keyed:
            return False
        key = _error_key(response)
        return key == KEY_IN_PROGRESS or (may_have_run and key not in (KEY_REUSED, OUTCOME_UNKNOWN))
    return status == 429 or (status >= 500 and idempotent)


def _error_key(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    error = ErrorObject.from_json(body.get("error") if isinstance(body, dict) else None)
    return error.key if error is not None else ""


class Client(ConsumerMethods, MutationMethods):
    """A pullbridge API client. Thread-safe as far as the httpx.Client it uses is.

    The consumer methods (`create_consumer`, `receive`, `ack`, ..., and the worker loop `consume`) come
    from `pullbridge_client.consumers.ConsumerMethods`; `mutate`, `list_mutations`, `iter_mutations` and
    `get_mutation` from `pullbridge_client.mutations.MutationMethods`.

    `http`: an httpx.Client to send with (e.g. one on an `httpx.MockTransport` in tests); it is then the
    caller's to close. Without one the client makes its own and closes it in `close()` / `with`.
    `max_retries`: retries after the first attempt; `sleep`: how to wait between them. `backoff` and
    `max_backoff` are the base and the cap of the backoff; a `Retry-After` over `max_retry_after` seconds
    is not waited for: `RateLimited` is raised at once.
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
        return backoff_seconds(attempt, base=self.backoff, cap=self.max_backoff, random=random.random)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One API call, retried as the class says; the decoded JSON body (None for an empty one).

        `idempotency_key` is sent as `Idempotency-Key`, the same on every attempt, and makes any method
        safe to retry: after a 5xx, a lost answer, and a 409 saying the key's first request is still
        running on the server (see `_retryable`).
        """
        method = method.upper()
        idempotent = method in _IDEMPOTENT or idempotency_key is not None
        headers = self._headers
        if idempotency_key is not None:
            headers = {**headers, "idempotency-key": idempotency_key}
        url = self.base_url + path
        attempt = 0
        may_have_run = False  # whether an earlier attempt may have reached the server
        while True:
            try:
                response = self._http.request(
                    method,
                    url,
                    params=given(**(params or {})),
                    json=json_body,
                    headers=headers,
                    timeout=timeout or self.timeout,
                )
            except httpx.TransportError as exc:
                if attempt >= self.max_retries or not (idempotent or isinstance(exc, _NOT_SENT)):
                    raise
                may_have_run = may_have_run or not isinstance(exc, _NOT_SENT)
                self.sleep(self._delay(attempt))
                attempt += 1
                continue
            keyed = idempotency_key is not None
            wait = self._retry_wait(
                response, attempt, idempotent=idempotent, keyed=keyed, may_have_run=may_have_run
            )
            if wait is None:
                return _decoded(response)
            response.close()
            may_have_run = may_have_run or response.status_code >= 500
            self.sleep(wait)
            attempt += 1

    def _retry_wait(
        self, response: httpx.Response, attempt: int, *, idempotent: bool, keyed: bool, may_have_run: bool
    ) -> float | None:
        """How long to wait before sending the request again, or None to keep this answer."""
        if attempt >= self.max_retries or not _retryable(
            response, idempotent=idempotent, keyed=keyed, may_have_run=may_have_run
        ):
            return None
        retry_after = response_retry_after(response)
        if retry_after is None:
            return self._delay(attempt)
        return retry_after if retry_after <= self.max_retry_after else None

    def _object(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = self.request(method, path, json_body=body)
        return answer

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
        record_id: str | None = None,
    ) -> Page[Event]:
        """One page of `GET /events` (a server cursor only: use iter_events to resume a client one).
        `record_id` (best with `connection_id`) gives one record's history."""
        filters = event_filters(connection_id, provider, collection, type, source, record_id)
        params = {"cursor": cursor, "limit": limit, "wait": wait or None, **filters}
        # A long poll holds the request up to `wait` seconds: the read timeout must outlast it.
        body = self.request(
            "GET", "/events", params=params, timeout=max(self.timeout, wait + 10) if wait else None
        )
        return Page(_events(body["data"]), body["next_cursor"], bool(body["has_more"]))

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
        record_id: str | None = None,
    ) -> EventStream:
        """Every matching event after `cursor` (from the start without one), exactly once, in log order.

        The returned stream's `.cursor` is where to resume after the last event it yielded: see
        EventStream. `wait` (0-20 s) is the long poll of each request in `follow` mode.
        """
        filters = event_filters(connection_id, provider, collection, type, source, record_id)
        return EventStream(self, cursor, follow=follow, limit=limit, wait=wait, filters=filters)

    def get_event(self, event_id: str) -> Event:
        (event,) = _events([self.request("GET", _path("events", event_id))])
        return event

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
        body = given(
            provider=provider,
            name=name,
            webhook_secrets=webhook_secrets,
            credentials=credentials,
            api_base_url=api_base_url,
            settings=settings,
            metadata=metadata,
        )
        return self._object("POST", "/connections", body)

    def list_connections(self, cursor: str | None = None, *, limit: int = 100) -> Page[dict[str, Any]]:
        return self._page("/connections", {"cursor": cursor, "limit": limit})

    def iter_connections(self, *, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every active connection, newest first."""
        return self._iterate("/connections", {"limit": limit})

    def get_connection(self, connection_id: str) -> dict[str, Any]:
        return self._object("GET", _path("connections", connection_id))

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
        body = given(
            name=name,
            webhook_secrets=webhook_secrets,
            credentials=credentials,
            api_base_url=api_base_url,
            settings=settings,
            metadata=metadata,
        )
        return self._object("PATCH", _path("connections", connection_id), body)

    def archive_connection(self, connection_id: str) -> dict[str, Any]:
        return self._object("DELETE", _path("connections", connection_id))

    # -- subscriptions --

    def create_subscription(
        self,
        connection_id: str,
        collection: str,
        *,
        full_sync_interval_seconds: int | None = None,
        backfill: bool | None = None,
        max_age_days: int | None = None,
        pull_updates_interval_seconds: int | None = None,
    ) -> dict[str, Any]:
        body = given(
            connection_id=connection_id,
            collection=collection,
            full_sync_interval_seconds=full_sync_interval_seconds,
            backfill=backfill,
            max_age_days=max_age_days,
            pull_updates_interval_seconds=pull_updates_interval_seconds,
        )
        return self._object("POST", "/external-event-subscriptions", body)

    def list_subscriptions(self, cursor: str | None = None, *, limit: int = 100) -> Page[dict[str, Any]]:
        return self._page("/external-event-subscriptions", {"cursor": cursor, "limit": limit})

    def iter_subscriptions(self, *, limit: int = 100) -> Iterator[dict[str, Any]]:
        return self._iterate("/external-event-subscriptions", {"limit": limit})

    def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._object("GET", _path("external-event-subscriptions", subscription_id))

    def update_subscription(
        self,
        subscription_id: str,
        *,
        full_sync_interval_seconds: int | None = None,
        max_age_days: int | None = None,
        status: Literal["subscribed", "paused"] | None = None,
        pull_updates_interval_seconds: int | Literal["off"] | None = None,
    ) -> dict[str, Any]:
        """None leaves a field as it is; `pull_updates_interval_seconds="off"` stops incremental pulls."""
        body = given(
            full_sync_interval_seconds=full_sync_interval_seconds,
            max_age_days=max_age_days,
            status=status,
            pull_updates_interval_seconds=pull_updates_interval_seconds,
        )
        if body.get("pull_updates_interval_seconds") == "off":
            body["pull_updates_interval_seconds"] = None
        return self._object("PATCH", _path("external-event-subscriptions", subscription_id), body)

    def delete_subscription(self, subscription_id: str) -> None:
        self.request("DELETE", _path("external-event-subscriptions", subscription_id))

    # -- pulls --

    def trigger_pull(self, subscription_id: str) -> dict[str, Any]:
        """Starts a full scan now: the queued pull. Raises Conflict (`.pull_id`) if one is running."""
        return self._object("POST", _path("external-event-subscriptions", subscription_id, "pull"))

    def get_pull(self, pull_id: str) -> dict[str, Any]:
        return self._object("GET", _path("external-event-pulls", pull_id))

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
        filters = pull_filters(status, subscription_id, connection_id, provider, from_, to)
        return self._page("/external-event-pulls", {"cursor": cursor, "limit": limit, **filters})

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
        filters = pull_filters(status, subscription_id, connection_id, provider, from_, to)
        return self._iterate("/external-event-pulls", {"limit": limit, **filters})


def _decoded(response: httpx.Response) -> Any:
    """The answer's JSON body (None for an empty one), or its error raised."""
    status = response.status_code
    if status >= 400:
        raise error_from_response(response)
    if status == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise PullbridgeAPIError(status, "bad_response", "the response is not JSON", "bad_response") from None


def _events(items: Any) -> list[Event]:
    try:
        return [Event.from_dict(item) for item in items]
    except (TypeError, ValueError) as exc:
        raise PullbridgeAPIError(200, "bad_response", f"unexpected event shape: {exc}") from None
