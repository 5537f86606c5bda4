"""What the client raises: one class per kind of API error, each carrying the contract's error object.

These are not the server's `pullbridge.errors` classes, though some names are the same.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pullbridge_client.retry import wait_for

__all__ = [
    "BadRequest",
    "Conflict",
    "ErrorObject",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "PullbridgeAPIError",
    "PullbridgeClientError",
    "RateLimited",
    "ResumeError",
    "ServerError",
    "Unauthorized",
    "Unprocessable",
    "error_from_response",
]


@dataclass(frozen=True)
class ErrorObject:
    """The contract's error object, `{"error": {...}}` in every error answer and in a failed pull."""

    type: str
    message: str = ""
    key: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any) -> ErrorObject | None:
        """The error object in `value` (the inner object), or None when it is not one: no string `type`."""
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            return None
        data = value.get("data")
        return cls(
            type=value["type"],
            message=str(value.get("message") or ""),
            key=str(value.get("key") or ""),
            data=dict(data) if isinstance(data, dict) else {},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "key": self.key, "data": dict(self.data)}


class PullbridgeClientError(Exception):
    """Everything this package raises itself (transport failures stay httpx.TransportError)."""


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
        return ErrorObject(self.error_type, self.message, self.key, self.data).to_dict()

    @property
    def mutation_id(self) -> str | None:
        """The mutation a failed `mutate` stored (`error.data.mutation_id`), when it got that far: see it
        with `get_mutation`. After a 502 or a 504 its status is `unknown`: it may have been applied."""
        value = self.data.get("mutation_id")
        return value if isinstance(value, str) else None


class BadRequest(PullbridgeAPIError):
    """400: a validation error (the message names the field), or a malformed or foreign cursor."""

    error_types = ("bad_request",)


class Unprocessable(BadRequest):
    """422: the provider refused a mutation (its 4xx other than 429) and applied nothing. `error.data`
    holds the provider's `status_code`, `message` and `request_id`, and the `mutation_id` (status
    `failed`). A `BadRequest`: the request, as the provider sees it, is invalid."""

    error_types = ("unprocessable",)

    @property
    def provider_status_code(self) -> int | None:
        value = self.data.get("status_code")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def provider_message(self) -> str | None:
        value = self.data.get("message")
        return value if isinstance(value, str) else None

    @property
    def request_id(self) -> str | None:
        """The provider's id of the refused request, for its support or its logs."""
        value = self.data.get("request_id")
        return value if isinstance(value, str) else None


class Unauthorized(PullbridgeAPIError):
    """401: a missing or wrong API key."""

    error_types = ("unauthorized", "forbidden")


class NotFound(PullbridgeAPIError):
    """404: no such resource for this tenant."""

    error_types = ("not_found",)


class Conflict(PullbridgeAPIError):
    """409: e.g. a pull is already running (`pull_id` names it), or a mutation's `Idempotency-Key` was
    used with another body, or its first request is still running."""

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
    """5xx after the retries were spent: `internal`, or for a mutation `bad_gateway` (502: the provider
    answered 5xx or could not be reached) or `timeout` (504: the provider did not answer in time). A
    mutation's `mutation_id` is then one whose outcome may be `unknown`: `mutate` again with the same
    idempotency key."""

    error_types = ("internal", "bad_gateway", "timeout")


_BY_TYPE: dict[str, type[PullbridgeAPIError]] = {
    error_type: cls
    for cls in (
        BadRequest,
        Unprocessable,
        Unauthorized,
        NotFound,
        Conflict,
        Gone,
        PayloadTooLarge,
        RateLimited,
        ServerError,
    )
    for error_type in cls.error_types
}
_BY_STATUS: dict[int, type[PullbridgeAPIError]] = {
    400: BadRequest,
    422: Unprocessable,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    429: RateLimited,
}
_TYPE_OF_STATUS = {status: cls.error_types[0] for status, cls in _BY_STATUS.items()}


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def response_retry_after(response: httpx.Response) -> float | None:
    """The response's `Retry-After` in seconds (see pullbridge_client.retry), None without one."""
    return wait_for(response.headers.get("retry-after"), response.headers.get("date"), now=time.time())


def error_from_response(response: httpx.Response) -> PullbridgeAPIError:
    """The typed exception for an error response: its error object, or one made from the status."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = ErrorObject.from_json(body.get("error") if isinstance(body, dict) else None)
    if error is None:  # not the API's own answer (e.g. a gateway or proxy in front of it)
        detail = body.get("message") if isinstance(body, dict) else None
        error = ErrorObject(
            type=_TYPE_OF_STATUS.get(status, "internal" if status >= 500 else "http_error"),
            message=_one_line(str(detail or response.reason_phrase or f"HTTP {status}")),
        )
    message = error.message or response.reason_phrase or error.type
    cls = _BY_TYPE.get(error.type) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else PullbridgeAPIError
    return cls(status, error.type, message, error.key, error.data, retry_after=response_retry_after(response))
