"""Each fake provider's error bodies, in the shapes the real APIs answer with, for the errors the fakes'
endpoints raise and for the faults a test injects (`FakeProviderServer.fail_with`)."""

from __future__ import annotations

from typing import Any

STRIPE_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", None),
    402: ("card_error", None),
    403: ("invalid_request_error", None),
    404: ("invalid_request_error", "resource_missing"),
    409: ("idempotency_error", None),
    422: ("invalid_request_error", None),
    429: ("invalid_request_error", "rate_limit"),
}
"""Stripe's error `type` (and `code`) by status; a 5xx is an `api_error`."""

DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Invalid credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too many requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
STRIPE_MESSAGES = {
    401: "Invalid API Key provided: sk_test_****0000",
    409: (
        "There is currently another in-progress request using this Idempotent Key (that probably means "
        "you submitted twice, and the other request is still going through): please retry."
    ),
    429: (
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
    ),
    500: "An unknown error occurred",
}
GITHUB_DOCUMENTATION = "https://docs.github.com/rest"
HUBSPOT_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITS",
}
HUBSPOT_MESSAGES = {
    401: "Authentication credentials not found.",
    404: "resource not found",
    429: "You have reached your secondly limit.",
    500: "internal error",
}
SHOPIFY_MESSAGES = {
    401: "[API] Invalid API key or access token (unrecognized login or wrong password)",
    429: "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
}


def error_body(provider: str, status: int, message: str | None = None, *, correlation_id: str = "") -> Any:
    """The body `provider` answers a `status` with; `message` replaces its usual one."""
    if provider == "stripe":
        return stripe_error(status, message)
    if provider == "github":
        return github_error(message or DEFAULT_MESSAGES.get(status, "Error"))
    if provider == "shopify":
        if status == 422 and message is None:
            return {"errors": {"base": ["is invalid"]}}
        return {"errors": message or SHOPIFY_MESSAGES.get(status, DEFAULT_MESSAGES.get(status, "Error"))}
    if provider == "hubspot":
        return hubspot_error(
            message or HUBSPOT_MESSAGES.get(status, DEFAULT_MESSAGES.get(status, "error")),
            HUBSPOT_CATEGORIES.get(status, "INTERNAL_ERROR"),
            correlation_id,
        )
    return {"error": {"message": message or DEFAULT_MESSAGES.get(status, "Error"), "code": status}}


def stripe_error(
    status: int, message: str | None = None, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    error_type, default_code = STRIPE_TYPES.get(status, ("api_error", None))
    error: dict[str, Any] = {
        "message": message or STRIPE_MESSAGES.get(status, DEFAULT_MESSAGES.get(status, "Error")),
        "type": error_type,
    }
    if code or default_code:
        error["code"] = code or default_code
        error["doc_url"] = (
            f"https://stripe.com/docs/error-codes/{str(code or default_code).replace('_', '-')}"
        )
    if param is not None:
        error["param"] = param
    return {"error": error}


def stripe_missing(object_type: str, record_id: str) -> dict[str, Any]:
    return stripe_error(404, f"No such {object_type}: '{record_id}'", code="resource_missing", param="id")


def github_error(message: str, errors: list[Any] | None = None, documentation: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    body["documentation_url"] = documentation or GITHUB_DOCUMENTATION
    return body


def hubspot_error(message: str, category: str, correlation_id: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": correlation_id or "00000000-0000-4000-8000-000000000000",
        **extra,
        "category": category,
    }
