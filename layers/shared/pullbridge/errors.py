"""One error type per failure kind.

Every error carries the contract's error object (`type`, `message`, `key`, `data`) and its HTTP status.
They are mapped to HTTP responses in one place (`pullbridge.http`) and are carried into pull records with
the same shape. Code never matches on message text: it matches on the class or on `key`.
"""

from __future__ import annotations

from typing import Any, ClassVar


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
