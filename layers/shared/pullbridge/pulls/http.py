"""HTTP to the providers: one `PullHttp` per pull or mutation, over the httpx client the caller made once
per cold start.

It owns every provider-facing rule of the contract, so the providers only build URLs and read bodies:
- Retries: 429 waits for `Retry-After` (delta-seconds or an HTTP-date), 5xx and timeouts and transport
  errors back off exponentially with jitter; `max_attempts` attempts in all, each capped at
  `max_backoff_seconds` of waiting.
- The connection's `settings.rate_limit`: never more than `allowed_requests` attempts in any sliding window
  of `interval_seconds`.
- Allowed URLs: `pullbridge.urls.check_url`, the rule connection writes apply too (https and global
  addresses only, unless the deployment allows private ones). A name is resolved once per `PullHttp`, so
  one that later re-resolves to a private address (DNS rebinding) is caught at its first use in a pull.
  (httpx resolves again to connect; the cache narrows that window to one pull, it does not pin the
  address.)
- Failures are `PullFailed` with the status code, the provider's request id (from the header the provider
  names, `Provider.request_id_header`) and the URL with its secret query values redacted. Request
  headers, which hold the credentials, never reach an error or a log.

It is the `ProviderHttp` that providers page through (`get_json`, `post_json` for a search that reads with a
POST, `next_link`, `require_same_origin`) and write through (`send`). A write is sent once: the rate limit,
the URL rule and the redaction apply, but no retry, since a write that failed after it was sent may have
been applied. Its failures are the `ProviderCallFailed` errors, with the provider's own message
(`error_message`, the provider's reading of its error body).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from pullbridge.errors import (
    ProviderCallFailed,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    PullFailed,
    ValidationFailed,
)
from pullbridge.providers.base import RATE_LIMIT_KEYS, QueryParams, check_rate_limit
from pullbridge.pulls.stats import PullStats
from pullbridge.retry import backoff_seconds, wait_for
from pullbridge.urls import Resolver, UrlRefused, check_url, resolve_host

BASE_BACKOFF_SECONDS = 0.5

_SECRET_PARAM = re.compile(r"key|token|secret|sig|password|auth|credential|code", re.IGNORECASE)
"""Query parameters whose values never go into an error (e.g. HubSpot's legacy `hapikey`)."""


def rate_limit_from_settings(settings: Mapping[str, Any]) -> tuple[int, float] | None:
    """`settings.rate_limit` `{allowed_requests, interval_seconds}` as `PullHttp` takes it, None when unset.
    Connection writes refuse a rate limit outside the rule; one stored before the rule (e.g. an interval of
    0.5 s) is ignored here, as before, rather than failing the pull."""
    rate_limit = settings.get("rate_limit")
    if not isinstance(rate_limit, Mapping):
        return None
    try:
        checked = check_rate_limit(
            "settings.rate_limit", {key: rate_limit[key] for key in RATE_LIMIT_KEYS if key in rate_limit}
        )
    except ValidationFailed:
        return None
    return int(checked["allowed_requests"]), float(checked["interval_seconds"])


def redact_url(url: str | httpx.URL) -> str:
    """The URL without userinfo or fragment, and with the values of secret-looking parameters replaced."""
    parts = urlsplit(str(url))
    query = urlencode(
        [
            (name, "REDACTED" if _SECRET_PARAM.search(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    parsed = httpx.URL(str(url))
    return parsed.scheme, parsed.host.lower(), parsed.port or (443 if parsed.scheme == "https" else 80)


class PullHttp:
    def __init__(
        self,
        client: httpx.Client,
        stats: PullStats,
        *,
        rate_limit: tuple[int, float] | None = None,
        request_id_header: str | None = None,
        error_message: Callable[[Any], str | None] | None = None,
        max_attempts: int = 5,
        max_backoff_seconds: float = 30.0,
        allow_private: bool = False,
        resolver: Resolver = resolve_host,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if rate_limit is not None and (rate_limit[0] < 1 or rate_limit[1] < 1):
            raise ValueError("rate_limit is (allowed_requests >= 1, interval_seconds >= 1)")
        self._client = client
        self._stats = stats
        self._rate_limit = rate_limit
        self._request_id_header = request_id_header
        self._error_message = error_message
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff_seconds
        self._allow_private = allow_private
        self._resolver = resolver
        self._sleep = sleep
        self._clock = clock
        self._attempt_times: deque[float] = deque()
        self._resolved: dict[str, set[str]] = {}

    def get(
        self, url: str, *, params: QueryParams | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """The 2xx response to `GET url`, after the retries the failure allows; else `PullFailed`."""
        return self._send("GET", url, params=params, headers=headers, body=None)

    def get_json(
        self, url: str, *, params: QueryParams | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, httpx.Response]:
        """The response's JSON body and the response itself (for its `Link` header)."""
        return self._json(self.get(url, params=params, headers=headers))

    def post_json(
        self, url: str, *, body: Any, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, httpx.Response]:
        """The JSON answer to `POST url` with a JSON `body`: for the list APIs that read with a POST (a
        search). It is retried, rate-limited and checked exactly as a GET, so it must not change anything
        upstream."""
        return self._json(self._send("POST", url, params=None, headers=headers, body=body))

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: Sequence[tuple[str, str]] | None = None,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Response]:
        """A write, sent once (see the module's docstring); its JSON answer (None when empty) and the
        response, or a `ProviderCallFailed`."""
        try:
            _, query, safe_url = self._target(url, params)
        except PullFailed as refused:
            if refused.error_type == "bad_request":
                raise  # the connection's URL breaks the rule: the caller's to fix (400)
            raise ProviderUnavailable(
                refused.message, may_have_applied=False, key=refused.key, data=refused.data
            ) from refused
        request = f"{method} {safe_url}"
        self._wait_for_rate_limit()
        self._stats.requests += 1
        content: str | None = None
        if form is not None:
            content = urlencode(list(form))
            headers = {**(headers or {}), "Content-Type": "application/x-www-form-urlencoded"}
        try:
            response = self._client.request(
                method,
                url,
                params=query,
                headers=headers,
                json=json_body if form is None else None,
                content=content,
                follow_redirects=False,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Never sent: the provider cannot have applied it.
            raise _transport_failure(request, safe_url, exc, may_have_applied=False) from exc
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{request} timed out", data=_error_data(None, None, safe_url)) from exc
        except httpx.TransportError as exc:
            raise _transport_failure(request, safe_url, exc, may_have_applied=True) from exc
        if not response.is_success:
            raise self._write_failure(response, request, safe_url)
        if not response.content.strip():
            return None, response
        return self._json(response)

    def _write_failure(self, response: httpx.Response, request: str, safe_url: str) -> ProviderCallFailed:
        status = response.status_code
        message = self._provider_message(response)
        data = _error_data(status, self._request_id(response), safe_url)
        data["message"] = message
        described = f"{request} answered {status}" + (f": {message}" if message else "")
        if status == 429:
            retry_after = wait_for(
                response.headers.get("Retry-After"), response.headers.get("Date"), now=time.time()
            )
            return ProviderRateLimited(described, retry_after=retry_after, data=data)
        if status >= 500:
            return ProviderUnavailable(described, may_have_applied=True, data=data)
        if 300 <= status < 400:
            return ProviderUnavailable(
                described, may_have_applied=False, key="unexpected_redirect", data=data
            )
        return ProviderRefused(described, data=data)

    def _provider_message(self, response: httpx.Response) -> str | None:
        """The provider's message from its error body, at most 500 characters; None without one."""
        if self._error_message is None:
            return None
        try:
            message = self._error_message(json.loads(response.content))
        except (ValueError, RecursionError):
            return None
        return message[:500] if isinstance(message, str) and message else None

    def _target(self, url: str, params: QueryParams | None) -> tuple[httpx.URL, Any, str]:
        """The checked URL, its query as pairs, and the URL as errors may show it."""
        try:
            target = httpx.URL(url)
            urlsplit(url).port  # noqa: B018 - reading the port checks its range
        except (httpx.InvalidURL, ValueError) as exc:
            raise PullFailed("bad_request", "the provider URL is not a valid URL", key="invalid_url") from exc
        # As pairs, so a name may repeat (`types[]=a&types[]=b`).
        query = tuple(params.items() if isinstance(params, Mapping) else params) if params else None
        safe_url = redact_url(target.copy_merge_params(query) if query else target)
        self._check_url(target, safe_url)
        return target, query, safe_url

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None,
        headers: Mapping[str, str] | None,
        body: Any,
    ) -> httpx.Response:
        _, query, safe_url = self._target(url, params)
        request = f"{method} {safe_url}"
        failure: PullFailed | None = None
        for attempt in range(1, self._max_attempts + 1):
            if failure is not None:
                self._stats.retries += 1
            self._wait_for_rate_limit()
            self._stats.requests += 1
            try:
                # Never follow a redirect: its target would skip the address check.
                response = self._client.request(
                    method, url, params=query, headers=headers, json=body, follow_redirects=False
                )
            except httpx.TimeoutException as exc:
                failure = _failure("timeout", "timeout", f"{request} timed out", safe_url, attempt)
                failure.__cause__ = exc
                delay = self._backoff(attempt)
            except httpx.TransportError as exc:
                failure = _failure(
                    "bad_gateway",
                    "connection_failed",
                    f"{request} failed: {type(exc).__name__}",
                    safe_url,
                    attempt,
                )
                failure.__cause__ = exc
                delay = self._backoff(attempt)
            else:
                if response.is_success:
                    return response
                failure, wait = self._classify(response, request, safe_url, attempt)
                if wait is None:
                    raise failure
                delay = wait
            if attempt < self._max_attempts:
                self._sleep(min(delay, self._max_backoff))
        assert failure is not None  # noqa: S101 - the loop ran at least once and did not return
        raise failure

    def _json(self, response: httpx.Response) -> tuple[Any, httpx.Response]:
        try:
            return json.loads(response.content), response
        except (ValueError, RecursionError) as exc:
            safe_url = redact_url(response.request.url)
            raise PullFailed(
                "bad_response",
                f"{response.request.method} {safe_url} answered with a body that is not JSON",
                key="malformed_json",
                data=_error_data(response.status_code, self._request_id(response), safe_url),
            ) from exc

    def next_link(self, response: httpx.Response, *, same_origin_as: str) -> str | None:
        """The `Link: <...>; rel="next"` URL, None when there is none; `PullFailed` when it leaves the
        origin of `same_origin_as` (a next page on another host would get the credentials)."""
        url = response.links.get("next", {}).get("url")
        if not url:
            return None
        self.require_same_origin(url, same_origin_as)
        return url

    def require_same_origin(self, url: str, reference: str) -> None:
        try:
            same = origin(url) == origin(reference)
        except (httpx.InvalidURL, ValueError):
            same = False
        if not same:
            raise PullFailed(
                "bad_response",
                "a next-page URL points away from the connection's API host",
                key="foreign_next_url",
                data={"url": redact_url(url) if _looks_like_url(url) else None},
            )

    def _request_id(self, response: httpx.Response) -> str | None:
        """The provider's id for this response, from the header it names; None when it sent none."""
        if self._request_id_header is None:
            return None
        return response.headers.get(self._request_id_header) or None

    def _classify(
        self, response: httpx.Response, request: str, safe_url: str, attempt: int
    ) -> tuple[PullFailed, float | None]:
        """The failure this response means, and how long to wait before retrying it: None when it is not
        retried, negative for the default backoff."""
        status = response.status_code
        data = _error_data(status, self._request_id(response), safe_url, attempt)
        if status in (401, 403):
            return PullFailed(
                "unauthorized",
                f"{request} answered {status}: check the connection's credentials",
                data=data,
            ), None
        if status == 429:
            retry_after = wait_for(
                response.headers.get("Retry-After"), response.headers.get("Date"), now=time.time()
            )
            failure = PullFailed("rate_limited", f"{request} answered 429 on every attempt", data=data)
            return failure, self._backoff(attempt) if retry_after is None else retry_after
        if status >= 500:
            failure = PullFailed("bad_gateway", f"{request} answered {status}", data=data)
            return failure, self._backoff(attempt)
        key = "not_found" if status == 404 else "unexpected_status"
        return PullFailed("bad_response", f"{request} answered {status}", key=key, data=data), None

    def _backoff(self, attempt: int) -> float:
        """The wait after attempt number `attempt` (1 for the first) failed: the client's rules."""
        return backoff_seconds(
            attempt - 1, base=BASE_BACKOFF_SECONDS, cap=self._max_backoff, random=random.random
        )

    def _wait_for_rate_limit(self) -> None:
        if self._rate_limit is None:
            return
        allowed, interval = self._rate_limit
        times = self._attempt_times
        while True:
            now = self._clock()
            while times and times[0] + interval <= now:
                times.popleft()
            if len(times) < allowed:
                times.append(now)
                return
            self._sleep(times[0] + interval - now)

    def _check_url(self, target: httpx.URL, safe_url: str) -> None:
        try:
            # httpx's own serialization of the URL: the rule sees the host httpx will connect to.
            check_url(str(target), allow_private=self._allow_private, resolver=self._resolve_once)
        except UrlRefused as refused:
            error_type = "bad_gateway" if refused.key == "dns_failure" else "bad_request"
            raise PullFailed(
                error_type, f"{safe_url}: {refused.reason}", key=refused.key, data={"url": safe_url}
            ) from refused

    def _resolve_once(self, host: str) -> set[str]:
        """The host's addresses, resolved at its first use in this pull (failures are not kept)."""
        addresses = self._resolved.get(host)
        if addresses is None:
            addresses = self._resolved[host] = self._resolver(host)
        return addresses


def _error_data(
    status_code: int | None, request_id: str | None, url: str, attempts: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"status_code": status_code, "request_id": request_id, "url": url}
    if attempts is not None:
        data["attempts"] = attempts
    return data


def _failure(error_type: str, key: str, message: str, url: str, attempt: int) -> PullFailed:
    return PullFailed(error_type, message, key=key, data=_error_data(None, None, url, attempt))


def _transport_failure(
    request: str, safe_url: str, exc: Exception, *, may_have_applied: bool
) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"{request} failed: {type(exc).__name__}",
        may_have_applied=may_have_applied,
        key="connection_failed",
        data=_error_data(None, None, safe_url),
    )


def _looks_like_url(value: str) -> bool:
    return "://" in value
