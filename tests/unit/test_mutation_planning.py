"""The pure decisions of a mutation: what may be asked, and what a key's earlier mutation means."""

from __future__ import annotations

import pytest

from pullbridge.errors import (
    BadRequest,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    ValidationFailed,
)
from pullbridge.mutations.models import MAX_DATA_BYTES
from pullbridge.mutations.planning import (
    Step,
    check_connection,
    check_fields,
    check_request,
    next_step,
    status_after,
)

GITHUB = {"issues": frozenset({"create", "update"})}


def test_a_collection_the_provider_cannot_write_is_named_with_those_it_can() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_request("github", GITHUB, "pulls", "create", {"title": "x"})
    assert refused.value.key == "unknown_collection"
    assert refused.value.data == {"field": "collection"}
    assert "issues" in refused.value.message


def test_a_kind_the_provider_cannot_do_says_so() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_request("github", GITHUB, "issues", "delete", None)
    assert refused.value.key == "unsupported_kind"
    assert refused.value.message == "kind: github cannot delete issues; it can create, update"


def test_data_larger_than_any_provider_takes_is_refused() -> None:
    check_request("github", GITHUB, "issues", "create", {"body": "x" * (MAX_DATA_BYTES - 20)})
    with pytest.raises(ValidationFailed) as refused:
        check_request("github", GITHUB, "issues", "create", {"body": "x" * MAX_DATA_BYTES})
    assert refused.value.key == "data_too_large"


def test_a_connection_must_be_live_and_hold_credentials() -> None:
    check_connection(None, {"api_key": "sk"})
    with pytest.raises(BadRequest) as archived:
        check_connection("2026-01-01T00:00:00.000Z", {"api_key": "sk"})
    with pytest.raises(BadRequest) as bare:
        check_connection(None, {})
    assert (archived.value.key, bare.value.key) == ("connection_archived", "missing_credentials")


@pytest.mark.parametrize(
    ("status", "error", "step"),
    [
        (None, None, Step.NEW),
        ("succeeded", None, Step.ANSWER),
        ("failed", {"type": "unprocessable"}, Step.ANSWER),
        ("failed", {"type": "rate_limited"}, Step.RETRY),
        ("failed", {"type": "bad_gateway"}, Step.RETRY),
        ("failed", {"type": "bad_request"}, Step.RETRY),
        ("unknown", {"type": "timeout"}, Step.RECOVER),
        ("pending", None, Step.RECOVER),
    ],
)
def test_what_a_request_does_with_the_mutation_its_key_started(
    status: str | None, error: dict[str, str] | None, step: Step
) -> None:
    assert next_step(status, error) is step


def test_only_a_failure_that_may_have_been_applied_leaves_the_outcome_unknown() -> None:
    assert status_after(ProviderTimeout("t")) == "unknown"
    assert status_after(ProviderUnavailable("5xx", may_have_applied=True)) == "unknown"
    assert status_after(ProviderUnavailable("refused connection", may_have_applied=False)) == "failed"
    assert status_after(ProviderRefused("400")) == "failed"
    assert status_after(ProviderRateLimited("429", retry_after=3)) == "failed"


def test_a_rate_limit_passes_the_providers_wait_on_in_whole_seconds() -> None:
    assert ProviderRateLimited("429", retry_after=2.2).response_headers() == {"Retry-After": "3"}
    assert ProviderRateLimited("429", retry_after=0).response_headers() == {"Retry-After": "1"}
    assert ProviderRateLimited("429").response_headers() == {"Retry-After": "5"}


@pytest.mark.parametrize(
    ("kind", "record_id", "data", "field"),
    [
        ("create", None, {"a": 1}, None),
        ("update", "r1", {"a": 1}, None),
        ("delete", "r1", None, None),
        ("create", "r1", {"a": 1}, "record_id"),
        ("update", None, {"a": 1}, "record_id"),
        ("delete", None, None, "record_id"),
        ("create", None, None, "data"),
        ("update", "r1", None, "data"),
        ("delete", "r1", {"a": 1}, "data"),
    ],
)
def test_each_kind_names_the_fields_it_needs(
    kind: str, record_id: str | None, data: dict[str, int] | None, field: str | None
) -> None:
    if field is None:
        check_fields(kind, record_id, data)
        return
    with pytest.raises(ValidationFailed) as refused:
        check_fields(kind, record_id, data)
    assert refused.value.data == {"field": field}
