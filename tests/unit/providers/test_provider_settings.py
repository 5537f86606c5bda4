"""Every provider's `settings` are checked when a connection is written: each documented key by its rule,
`rate_limit` by the one shared rule, and unknown keys refused, always with a 400 naming the field."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pullbridge.errors import ValidationFailed
from pullbridge.providers import PROVIDER_NAMES, get_provider
from pullbridge.providers.base import check_rate_limit

GENERIC_SCHEME: dict[str, Any] = {"signature_header": "X-Signature", "delivery_id_header": "X-Id"}
REQUIRED: dict[str, dict[str, Any]] = {"generic": GENERIC_SCHEME}
"""What a provider needs besides the setting under test (only generic has required settings)."""

RATE_LIMIT = {"allowed_requests": 10, "interval_seconds": 1}


def validate(provider: str, settings: dict[str, Any]) -> dict[str, Any]:
    return get_provider(provider).validate_settings(REQUIRED.get(provider, {}) | settings)


def refusal(provider: str, settings: dict[str, Any]) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate(provider, settings)
    return caught.value


# --- rate_limit, the same for every provider ----------------------------------------------------------

BAD_RATE_LIMITS: list[tuple[Any, str]] = [
    ("fast", "settings.rate_limit"),
    ([10, 1], "settings.rate_limit"),
    (10, "settings.rate_limit"),
    ({"allowed_requests": 0, "interval_seconds": 0}, "settings.rate_limit.allowed_requests"),
    ({"allowed_requests": -1, "interval_seconds": 1}, "settings.rate_limit.allowed_requests"),
    ({"allowed_requests": 1.5, "interval_seconds": 1}, "settings.rate_limit.allowed_requests"),
    ({"allowed_requests": 10.0, "interval_seconds": 1}, "settings.rate_limit.allowed_requests"),
    ({"allowed_requests": True, "interval_seconds": 1}, "settings.rate_limit.allowed_requests"),
    ({"allowed_requests": "10", "interval_seconds": 1}, "settings.rate_limit.allowed_requests"),
    ({"allowed_requests": 100_001, "interval_seconds": 1}, "settings.rate_limit.allowed_requests"),
    ({"interval_seconds": 1}, "settings.rate_limit.allowed_requests"),
    ({"allowed_requests": 10}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": 0}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": 0.5}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": -1}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": "1"}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": False}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": math.nan}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": math.inf}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": 3601}, "settings.rate_limit.interval_seconds"),
    ({"allowed_requests": 5, "interval_seconds": 1, "burst": 2}, "settings.rate_limit.burst"),
]


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@pytest.mark.parametrize(("rate_limit", "field"), BAD_RATE_LIMITS)
def test_a_bad_rate_limit_is_refused_naming_the_field(provider: str, rate_limit: Any, field: str) -> None:
    error = refusal(provider, {"rate_limit": rate_limit})

    assert (error.status_code, error.key, error.data["field"]) == (400, "invalid_settings", field)
    assert field in error.message


GOOD_RATE_LIMITS: list[dict[str, Any]] = [
    RATE_LIMIT,
    {"allowed_requests": 1, "interval_seconds": 1},
    {"allowed_requests": 2, "interval_seconds": 1.5},
    {"allowed_requests": 100_000, "interval_seconds": 3600},
]


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@pytest.mark.parametrize("rate_limit", GOOD_RATE_LIMITS)
def test_a_good_rate_limit_is_stored_as_given(provider: str, rate_limit: dict[str, Any]) -> None:
    assert validate(provider, {"rate_limit": rate_limit})["rate_limit"] == rate_limit


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_a_null_rate_limit_means_none(provider: str) -> None:
    assert "rate_limit" not in validate(provider, {"rate_limit": None})


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_a_mistyped_key_is_refused_naming_it(provider: str) -> None:
    error = refusal(provider, {"rate_limt": RATE_LIMIT})

    assert (error.key, error.data["field"]) == ("invalid_settings", "settings.rate_limt")
    assert "settings.rate_limt" in error.message


def test_a_long_unknown_key_is_named_briefly() -> None:
    error = refusal("stripe", {"x" * 10_000: 1})

    assert error.data["field"] == "settings." + "x" * 64 + "…"
    assert len(error.message) < 300


def test_the_rule_returns_exactly_the_two_numbers() -> None:
    assert check_rate_limit("settings.rate_limit", RATE_LIMIT) == RATE_LIMIT


# --- each provider's own keys ---------------------------------------------------------------------------

GOOD_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("stripe", {}),
    ("stripe", {"api_version": "2024-06-20"}),
    ("stripe", {"api_version": "2024-09-30.acacia", "rate_limit": RATE_LIMIT}),
    ("github", {"repository": "octo-org/octo-repo"}),
    ("github", {"repository": "octokit-fixture-org/paginate-issues", "rate_limit": RATE_LIMIT}),
    ("github", {"repository": "a_b/c.d-e"}),
    ("shopify", {"api_version": "2024-07"}),
    ("shopify", {"api_version": "unstable", "rate_limit": RATE_LIMIT}),
    ("hubspot", {"accept_legacy_signatures": True}),
    ("hubspot", {"accept_legacy_signatures": False}),
    ("hubspot", {"properties": ["email", "lifecyclestage"], "rate_limit": RATE_LIMIT}),
    ("hubspot", {"properties": []}),
    ("standard", {}),
    ("standard", {"rate_limit": RATE_LIMIT}),
]


@pytest.mark.parametrize(("provider", "settings"), GOOD_SETTINGS)
def test_documented_settings_are_stored_as_given(provider: str, settings: dict[str, Any]) -> None:
    assert validate(provider, settings) == settings


@pytest.mark.parametrize(
    ("provider", "settings"),
    [
        ("stripe", {"api_version": None}),
        ("github", {"repository": None}),
        ("shopify", {"api_version": None}),
        ("hubspot", {"accept_legacy_signatures": None, "properties": None}),
    ],
)
def test_a_null_setting_is_left_out(provider: str, settings: dict[str, Any]) -> None:
    assert validate(provider, settings) == {}


BAD_SETTINGS: list[tuple[str, dict[str, Any], str]] = [
    ("stripe", {"api_version": "latest"}, "settings.api_version"),
    ("stripe", {"api_version": 20240620}, "settings.api_version"),
    ("stripe", {"api_version": "2024-06-20\n"}, "settings.api_version"),
    ("stripe", {"api_version": "2024-06-20\r\nX-Injected: 1"}, "settings.api_version"),
    ("stripe", {"repository": "octo-org/octo-repo"}, "settings.repository"),
    ("github", {"repository": "octo-repo"}, "settings.repository"),
    ("github", {"repository": "octo-org/octo-repo/issues"}, "settings.repository"),
    ("github", {"repository": "../octo-repo"}, "settings.repository"),
    ("github", {"repository": "octo-org/.."}, "settings.repository"),
    ("github", {"repository": "octo-org/octo-repo\n"}, "settings.repository"),
    ("github", {"repository": ["octo-org", "octo-repo"]}, "settings.repository"),
    ("github", {"api_version": "2022-11-28"}, "settings.api_version"),
    ("shopify", {"api_version": "2024-7"}, "settings.api_version"),
    ("shopify", {"api_version": "2024-07-01"}, "settings.api_version"),
    ("shopify", {"api_version": "2024-07\n"}, "settings.api_version"),
    (
        "shopify",
        {"api_version": "\u0662\u0660\u0662\u0664-\u0660\u0667"},
        "settings.api_version",
    ),  # Arabic-Indic digits
    ("shopify", {"api_version": 2024}, "settings.api_version"),
    ("hubspot", {"accept_legacy_signatures": "yes"}, "settings.accept_legacy_signatures"),
    ("hubspot", {"accept_legacy_signatures": 1}, "settings.accept_legacy_signatures"),
    ("hubspot", {"properties": "email"}, "settings.properties"),
    ("hubspot", {"properties": ["email,phone"]}, "settings.properties"),
    ("hubspot", {"properties": [""]}, "settings.properties"),
    ("hubspot", {"properties": [1]}, "settings.properties"),
    ("standard", {"tolerance_seconds": 300}, "settings.tolerance_seconds"),
    ("generic", {"tolerance": 300}, "settings.tolerance"),
]


@pytest.mark.parametrize(("provider", "settings", "field"), BAD_SETTINGS)
def test_a_wrong_setting_is_refused_naming_the_field(
    provider: str, settings: dict[str, Any], field: str
) -> None:
    error = refusal(provider, settings)

    assert (error.status_code, error.key, error.data["field"]) == (400, "invalid_settings", field)
    assert field in error.message
