"""GitHub: `X-Hub-Signature-256` verification and normalization of octokit's published payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse

import pytest

from pullbridge.errors import MalformedPayload, SignatureInvalid, ValidationFailed
from pullbridge.providers.base import WebhookRequest
from pullbridge.providers.github import PROVIDER

from .support import fixture_bytes, fixture_json, make_request

SECRET = "It's a Secret to Everybody"
NOW = 1_700_000_000
BODY = b'{"zen":"Keep it logically awesome.","hook_id":1}'
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(event: str, body: bytes, **headers: str) -> WebhookRequest:
    return make_request({"X-GitHub-Event": event, "X-GitHub-Delivery": DELIVERY, **headers}, body)


# --- verify -------------------------------------------------------------------------------------


def test_verify_accepts_a_valid_signature() -> None:
    PROVIDER.verify(make_request({"X-Hub-Signature-256": sign(BODY)}, BODY), [SECRET], {}, NOW)


def test_verify_rejects_a_signature_of_another_body() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({"X-Hub-Signature-256": sign(BODY)}, BODY + b"\n"), [SECRET], {}, NOW)


def test_verify_accepts_an_upper_case_hex_digest() -> None:
    header = "sha256=" + sign(BODY).removeprefix("sha256=").upper()
    PROVIDER.verify(make_request({"X-Hub-Signature-256": header}, BODY), [SECRET], {}, NOW)


def test_verify_accepts_a_signature_made_with_any_active_secret() -> None:
    request = make_request({"X-Hub-Signature-256": sign(BODY, "new")}, BODY)
    PROVIDER.verify(request, ["old", "new"], {}, NOW)


def test_verify_rejects_a_signature_made_with_no_active_secret() -> None:
    request = make_request({"X-Hub-Signature-256": sign(BODY, "retired")}, BODY)
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(request, ["old", "new"], {}, NOW)


def test_verify_never_treats_an_empty_secret_as_a_key() -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({"X-Hub-Signature-256": sign(BODY, "")}, BODY), [""], {}, NOW)


def test_verify_rejects_the_legacy_sha1_header_alone() -> None:
    legacy = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({"X-Hub-Signature": legacy}, BODY), [SECRET], {}, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=",
        "sha256",
        "sha1=" + "0" * 40,
        "SHA256=" + "0" * 64,
        "sha256=" + "0" * 63,
        "sha256=" + "0" * 65,
        "sha256=" + "z" * 64,
        "sha256=" + "é" * 64,
        "sha256=" + "0" * 62 + " 0",
    ],
)
def test_verify_rejects_a_malformed_header_with_signature_invalid(header: str) -> None:
    with pytest.raises(SignatureInvalid):
        PROVIDER.verify(make_request({"X-Hub-Signature-256": header}, BODY), [SECRET], {}, NOW)


# --- normalize: octokit's published payloads ----------------------------------------------------

PUBLISHED = [
    ("issues/opened.payload.json", "issues", ("issues.opened", "issues", "created", "1")),
    ("issues/opened.with-organization.payload.json", "issues", ("issues.opened", "issues", "created", "1")),
    ("issues/edited.payload.json", "issues", ("issues.edited", "issues", "updated", "1")),
    ("issues/reopened.payload.json", "issues", ("issues.reopened", "issues", "updated", "1")),
    ("issues/deleted.payload.json", "issues", ("issues.deleted", "issues", "deleted", "1")),
    ("pull_request/opened.payload.json", "pull_request", ("pull_request.opened", "pulls", "created", "2")),
    ("pull_request/closed.payload.json", "pull_request", ("pull_request.closed", "pulls", "updated", "2")),
    ("issue_comment/created.payload.json", "issue_comment", ("issue_comment.created", None, None, None)),
    (
        "issue_comment/created.with-installation.payload.json",
        "issue_comment",
        ("issue_comment.created", None, None, None),
    ),
    ("issue_comment/deleted.payload.json", "issue_comment", ("issue_comment.deleted", None, None, None)),
    ("ping/payload.json", "ping", ("ping", None, None, None)),
    ("push/payload.json", "push", ("push", None, None, None)),
    ("release/published.payload.json", "release", ("release.published", None, None, None)),
    ("repository/created.payload.json", "repository", ("repository.created", None, None, None)),
    ("ghes-35/repository/deleted.json", "repository", ("repository.deleted", None, None, None)),
    ("star/created.payload.json", "star", ("star.created", None, None, None)),
    ("star/deleted.payload.json", "star", ("star.deleted", None, None, None)),
]


@pytest.mark.parametrize(("path", "event", "expected"), PUBLISHED, ids=[row[0] for row in PUBLISHED])
def test_normalize_reads_a_published_payload(path: str, event: str, expected: tuple[str | None, ...]) -> None:
    [normalized] = PROVIDER.normalize(delivery(event, fixture_bytes(f"github/{path}")), {})
    assert (normalized.type, normalized.collection, normalized.action, normalized.record_id) == expected


def test_normalize_takes_the_delivery_id_from_the_delivery_header() -> None:
    [normalized] = PROVIDER.normalize(delivery("ping", fixture_bytes("github/ping/payload.json")), {})
    assert normalized.delivery_id == DELIVERY


def test_normalize_rejects_a_delivery_without_the_delivery_header() -> None:
    request = make_request({"X-GitHub-Event": "ping"}, fixture_bytes("github/ping/payload.json"))
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(request, {})


def test_normalize_rejects_a_delivery_without_the_event_header() -> None:
    request = make_request({"X-GitHub-Delivery": DELIVERY}, fixture_bytes("github/ping/payload.json"))
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(request, {})


def test_normalize_keeps_the_issue_as_the_data_of_an_issues_event() -> None:
    [normalized] = PROVIDER.normalize(
        delivery("issues", fixture_bytes("github/issues/opened.payload.json")), {}
    )
    assert normalized.data == fixture_json("github/issues/opened.payload.json")["issue"]


def test_normalize_keeps_the_whole_payload_as_the_data_of_another_event() -> None:
    [normalized] = PROVIDER.normalize(delivery("star", fixture_bytes("github/star/created.payload.json")), {})
    assert normalized.data == fixture_json("github/star/created.payload.json")


def test_normalize_takes_occurred_at_from_the_record_updated_at() -> None:
    [normalized] = PROVIDER.normalize(
        delivery("issues", fixture_bytes("github/issues/opened.payload.json")), {}
    )
    assert normalized.occurred_at == 1557933618.0  # 2019-05-15T15:20:18Z


def test_normalize_leaves_occurred_at_unknown_for_an_event_without_a_record() -> None:
    [normalized] = PROVIDER.normalize(delivery("ping", fixture_bytes("github/ping/payload.json")), {})
    assert normalized.occurred_at is None


def test_normalize_identifies_an_issue_by_the_number_the_list_api_returns() -> None:
    listed = fixture_json("github/rest/paginate-issues.normalized-fixture.json")[0]["response"][0]
    body = json.dumps({"action": "edited", "issue": listed}).encode()
    [normalized] = PROVIDER.normalize(delivery("issues", body), {})
    assert normalized.record_id == str(listed["number"])


def test_normalize_identifies_a_pull_request_by_its_number_not_its_id() -> None:
    payload = fixture_json("github/pull_request/opened.payload.json")
    [normalized] = PROVIDER.normalize(delivery("pull_request", json.dumps(payload).encode()), {})
    assert normalized.record_id != str(payload["pull_request"]["id"])


def test_normalize_maps_a_transferred_issue_to_a_deletion() -> None:
    payload = fixture_json("github/issues/opened.payload.json") | {"action": "transferred"}
    [normalized] = PROVIDER.normalize(delivery("issues", json.dumps(payload).encode()), {})
    assert normalized.action == "deleted"


def test_normalize_reads_a_form_encoded_delivery() -> None:
    body = urllib.parse.urlencode(
        {"payload": fixture_bytes("github/issues/opened.payload.json").decode()}
    ).encode()
    request = delivery("issues", body, **{"Content-Type": "application/x-www-form-urlencoded"})
    [normalized] = PROVIDER.normalize(request, {})
    assert (normalized.type, normalized.record_id) == ("issues.opened", "1")


@pytest.mark.parametrize(
    "body", [b"payload=%7B", b"other=1", b"payload=1&payload=2", b"\xff=1", b"payload=%5B%5D"]
)
def test_normalize_rejects_a_malformed_form_encoded_delivery(body: bytes) -> None:
    request = delivery("issues", body, **{"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(request, {})


@pytest.mark.parametrize(
    ("event", "body"),
    [
        ("ping", b""),
        ("ping", b"not json"),
        ("ping", b"[]"),
        ("ping", b'{"action": 3}'),
        ("ping", b'{"action": ""}'),
        ("issues", b'{"action": "opened"}'),
        ("issues", b'{"action": "opened", "issue": []}'),
        ("issues", b'{"action": "opened", "issue": {"number": "1"}}'),
        ("issues", b'{"action": "opened", "issue": {"number": true}}'),
        ("pull_request", b'{"action": "opened", "pull_request": {"id": 1}}'),
        ("ping", b"[" * 100_000),
    ],
)
def test_normalize_rejects_a_malformed_payload(event: str, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        PROVIDER.normalize(delivery(event, body), {})


# --- connection-time checks --------------------------------------------------------------------


def test_validate_secret_accepts_a_webhook_secret() -> None:
    PROVIDER.validate_secret("It's a Secret to Everybody")


@pytest.mark.parametrize("secret", ["", " padded", "newline\n", "\ud800"])
def test_validate_secret_rejects_an_unusable_secret(secret: str) -> None:
    with pytest.raises(ValidationFailed):
        PROVIDER.validate_secret(secret)
