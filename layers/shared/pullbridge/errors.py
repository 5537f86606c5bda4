"""One error type per failure kind.

Every error carries the contract's error object (`type`, `message`, `key`, `data`) and its HTTP status.
They are mapped to HTTP responses in one place (`pullbridge.http`) and are carried into pull records with
the same shape. Code never matches on message text: it matches on the class or on `key`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

DEFAULT_RETRY_AFTER_SECONDS = 5
"""A provider's 429 without a `Retry-After` is passed on with this wait."""


class PullbridgeError(Exception):
    """Base of every error the product reports to a caller."""

    error_type: ClassVar[str] = "internal"
    status_code: ClassVar[int] = 500
    default_key: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, key: str | None = None, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key or self.default_key
        self.data = data or {}

    def to_error_object(self) -> dict[str, Any]:
        return {"type": self.error_type, "message": self.message, "key": self.key, "data": self.data}

    def to_body(self) -> dict[str, Any]:
        return {"error": self.to_error_object()}

    def response_headers(self) -> dict[str, str] | None:
        """Headers the HTTP answer carries besides the body (a 429's `Retry-After`)."""
        return None


class BadRequest(PullbridgeError):
    error_type = "bad_request"
    status_code = 400
    default_key = "bad_request"


class ValidationFailed(BadRequest):
    """A request field is wrong: `data.field` names the first, `data.fields` each one where there are several."""

    default_key = "validation_error"


class InvalidCursor(BadRequest):
    default_key = "invalid_cursor"


class MalformedPayload(BadRequest):
    default_key = "malformed_payload"


class Unauthorized(PullbridgeError):
    error_type = "unauthorized"
    status_code = 401
    default_key = "invalid_api_key"


class SignatureInvalid(Unauthorized):
    """The one verification error: every bad, missing, stale or malformed signature ends here."""

    default_key = "invalid_signature"


class NotFound(PullbridgeError):
    error_type = "not_found"
    status_code = 404
    default_key = "not_found"


class Conflict(PullbridgeError):
    error_type = "conflict"
    status_code = 409
    default_key = "conflict"


class Gone(PullbridgeError):
    error_type = "gone"
    status_code = 410
    default_key = "cursor_expired"


class PayloadTooLarge(PullbridgeError):
    error_type = "payload_too_large"
    status_code = 413
    default_key = "payload_too_large"


class RateLimited(PullbridgeError):
    error_type = "rate_limited"
    status_code = 429
    default_key = "rate_limited"


class StorageUnavailable(PullbridgeError):
    """DynamoDB throttled, timed out or failed: answer 5xx so the sender retries."""

    error_type = "internal"
    status_code = 503
    default_key = "storage_unavailable"


class PullFailed(PullbridgeError):
    """A pull failed. Its `error_type` names the kind (`unauthorized`, `rate_limited`, `bad_gateway`,
    `timeout`, `bad_response`, `bad_request`, ...); `data` carries the status code and the provider's
    request id where there is one. A pull record carries it as its `error` object."""

    status_code = 502
    default_key = "pull_failed"

    def __init__(
        self, error_type: str, message: str, *, key: str | None = None, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, key=key or error_type, data=data)
        self.error_type = error_type  # type: ignore[misc]  # per instance: the pull error's kind


class ProviderCallFailed(PullbridgeError):
    """A write to the provider (a mutation) failed. `data` carries the provider's `status_code`, its
    `message` and its `request_id` where it sent them. `may_have_applied` is True when the request reached
    the provider and its outcome is unknown (a 5xx, a timeout after sending)."""

    status_code = 502
    default_key = "provider_call_failed"
    may_have_applied: bool = False


class ProviderRefused(ProviderCallFailed):
    """The provider answered 4xx (other than 429): it did not apply the write."""

    error_type = "unprocessable"
    status_code = 422
    default_key = "provider_refused"


class ProviderRateLimited(ProviderCallFailed):
    """The provider answered 429; `retry_after` is its `Retry-After` in seconds, when it sent one."""

    error_type = "rate_limited"
    status_code = 429
    default_key = "provider_rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, key=key, data=data)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        # Whole seconds, at least 1; the provider's own wait when it gave one.
        wait = DEFAULT_RETRY_AFTER_SECONDS if self.retry_after is None else self.retry_after
        return {"Retry-After": str(max(1, math.ceil(wait)))}


class ProviderUnavailable(ProviderCallFailed):
    """The provider answered 5xx (it may have applied the write), or could not be reached (it did not)."""

    error_type = "bad_gateway"
    status_code = 502
    default_key = "provider_unavailable"

    def __init__(
        self,
        message: str,
        *,
        may_have_applied: bool,
        key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, key=key, data=data)
        self.may_have_applied = may_have_applied


class ProviderTimeout(ProviderCallFailed):
    """The provider did not answer in time after the request was sent: it may have applied the write."""

    error_type = "timeout"
    status_code = 504
    default_key = "provider_timeout"
    may_have_applied = True
