"""Every published known-answer vector verifies through our providers with an injected clock, and each one
is rejected once its body is tampered with, its secret is wrong, its timestamp is stale or its header is
malformed. The vectors are in `shared/fixtures/signatures.json` and `standard-webhooks/vectors.json`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pullbridge.errors import SignatureInvalid
from pullbridge.providers import get_provider
from pullbridge.providers.base import Provider, WebhookRequest

from .support import fixture_json, make_request, signature_vectors, vector_body, vector_id

LEGACY_HUBSPOT = [
    vector for vector in signature_vectors("hubspot") if vector["signature_version"] in {"v1", "v2"}
]
"""HubSpot v1/v2: plain SHA-256 of secret + content, no HMAC and no timestamp. The contract names v3, so
they verify only where a connection opts in with `settings.accept_legacy_signatures`."""


@dataclass(frozen=True)
class Case:
    """One vector as a delivery to one provider."""

    provider: str
    secret: str
    body: bytes
    signature_header: str
    signature: str
    digest: str
    """The encoded digest inside `signature`, which the malformed-header tests mangle."""
    now: float
    timestamp_seconds: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    method: str = "POST"
    url: str = "https://api.example.com/webhooks/conn_123"

    def request(self, *, body: bytes | None = None, signature: str | None = None) -> WebhookRequest:
        headers = self.headers | {self.signature_header: self.signature if signature is None else signature}
        return make_request(headers, self.body if body is None else body, method=self.method, url=self.url)

    def verify(self, request: WebhookRequest, *, secret: str | None = None, now: float | None = None) -> None:
        verifier: Provider = get_provider(self.provider)
        verifier.verify(
            request,
            [self.secret if secret is None else secret],
            self.settings,
            self.now if now is None else now,
        )


def _generic(vector: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"signature_header": vector["header"], "delivery_id_header": "X-Delivery-Id", **settings}


def _digest_of(signature: str) -> str:
    """`t=..,v1=<hex>,v0=..` -> the v1 hex; `sha256=<hex>`, `v0=<hex>`, `v1,<b64>` -> what follows the scheme."""
    for entry in signature.split(","):
        if entry.startswith("v1="):
            return entry.removeprefix("v1=")
    for prefix in ("sha256=", "v0=", "v1,"):
        if signature.startswith(prefix):
            return signature.removeprefix(prefix)
    return signature


def _cases_for(vector: dict[str, Any]) -> list[tuple[str, Case]]:
    """The providers a vector is delivered to, each named for the pytest id."""
    body, signature, header = vector_body(vector), vector["expected_header_value"], vector["header"]
    digest = _digest_of(signature)
    common: dict[str, Any] = {
        "secret": vector["secret"],
        "body": body,
        "signature_header": header,
        "signature": signature,
        "digest": digest,
    }
    provider = vector["provider"]
    if provider == "stripe":
        timestamp = vector["timestamp"]
        return [("stripe", Case("stripe", now=timestamp + 100, timestamp_seconds=timestamp, **common))]
    if provider == "github":
        settings = _generic(vector, prefix="sha256=")
        return [
            ("github", Case("github", now=0, **common)),
            ("generic", Case("generic", now=0, settings=settings, **common)),
        ]
    if provider == "shopify":
        settings = _generic(vector, encoding="base64")
        return [
            ("shopify", Case("shopify", now=0, **common)),
            ("generic", Case("generic", now=0, settings=settings, **common)),
        ]
    if provider == "slack":
        settings = _generic(
            vector,
            prefix="v0=",
            timestamp_header=vector["timestamp_header"],
            signed_content="v0:{timestamp}:{body}",
        )
        timestamp = int(vector["timestamp"])
        headers = {vector["timestamp_header"]: vector["timestamp"]}
        case = Case(
            "generic",
            now=timestamp,
            timestamp_seconds=timestamp,
            headers=headers,
            settings=settings,
            **common,
        )
        return [("generic", case)]
    if provider == "hubspot" and vector["signature_version"] == "v3":
        timestamp = int(vector["timestamp"]) / 1000
        headers = {vector["timestamp_header"]: vector["timestamp"]}
        request = {"method": vector["http_method"], "url": vector["uri"], "headers": headers}
        settings = _generic(
            vector,
            encoding="base64",
            timestamp_header=vector["timestamp_header"],
            timestamp_unit="milliseconds",
            signed_content="{method}{url}{body}{timestamp}",
        )
        return [
            ("hubspot", Case("hubspot", now=timestamp, timestamp_seconds=timestamp, **request, **common)),
            (
                "generic",
                Case(
                    "generic",
                    now=timestamp,
                    timestamp_seconds=timestamp,
                    settings=settings,
                    **request,
                    **common,
                ),
            ),
        ]
    return []


def _standard_cases() -> list[tuple[str, Case]]:
    cases = []
    for vector in fixture_json("standard-webhooks/vectors.json")["vectors"]:
        headers = dict(vector["headers"])
        signature = headers.pop("webhook-signature")
        case = Case(
            "standard",
            secret=vector["secret"],
            body=vector["payload"].encode(),
            signature_header="webhook-signature",
            signature=signature,
            digest=_digest_of(signature),
            now=vector["timestamp"],
            timestamp_seconds=vector["timestamp"],
            headers=headers,
        )
        cases.append(("standard", case))
    return cases


def _all_cases() -> list[Any]:
    params = []
    for index, vector in enumerate(signature_vectors()):
        cases = _cases_for(vector)
        name = f"{index}-{vector_id(vector)}"
        assert cases or vector in LEGACY_HUBSPOT, f"no provider takes the {vector['provider']} vector"
        params += [pytest.param(case, id=f"{name}-via-{provider}") for provider, case in cases]
    params += [
        pytest.param(case, id=f"standard-webhooks-{index}")
        for index, (_, case) in enumerate(_standard_cases())
    ]
    return params


CASES = _all_cases()
TIMESTAMPED = [param for param in CASES if param.values[0].timestamp_seconds is not None]


def test_every_published_vector_is_exercised() -> None:
    published = len(signature_vectors()) + len(fixture_json("standard-webhooks/vectors.json")["vectors"])
    covered = {param.id.split("-via-")[0] for param in CASES}
    assert len(covered) + len(LEGACY_HUBSPOT) == published


def _legacy_request(
    vector: dict[str, Any], *, body: bytes | None = None, signature: str | None = None
) -> WebhookRequest:
    headers = {
        vector["header"]: signature if signature is not None else vector["expected_header_value"],
        vector["version_header"]: vector["signature_version"],
    }
    raw = vector_body(vector) if body is None else body
    return make_request(headers, raw, method=vector.get("http_method", "POST"), url=vector.get("uri", ""))


LEGACY_ON = {"accept_legacy_signatures": True}


@pytest.mark.parametrize("vector", LEGACY_HUBSPOT, ids=vector_id)
def test_a_legacy_hubspot_signature_verifies_where_the_connection_accepts_legacy_signatures(
    vector: dict[str, Any],
) -> None:
    get_provider("hubspot").verify(_legacy_request(vector), [vector["secret"]], LEGACY_ON, 1_564_113_600)


@pytest.mark.parametrize("vector", LEGACY_HUBSPOT, ids=vector_id)
def test_a_legacy_hubspot_signature_is_rejected_by_default(vector: dict[str, Any]) -> None:
    with pytest.raises(SignatureInvalid):
        get_provider("hubspot").verify(_legacy_request(vector), [vector["secret"]], {}, 1_564_113_600)


@pytest.mark.parametrize("vector", LEGACY_HUBSPOT, ids=vector_id)
@pytest.mark.parametrize(
    "tamper",
    ["body", "secret", "malformed", "version"],
)
def test_a_tampered_legacy_hubspot_delivery_is_rejected(vector: dict[str, Any], tamper: str) -> None:
    secret = vector["secret"] + ("x" if tamper == "secret" else "")
    request = _legacy_request(
        vector,
        body=vector_body(vector) + b" " if tamper == "body" else None,
        signature="not-hex!" if tamper == "malformed" else None,
    )
    if tamper == "version":
        request = make_request(
            {vector["header"]: vector["expected_header_value"], vector["version_header"]: "v9"},
            vector_body(vector),
            method=vector.get("http_method", "POST"),
            url=vector.get("uri", ""),
        )
    with pytest.raises(SignatureInvalid):
        get_provider("hubspot").verify(request, [secret], LEGACY_ON, 1_564_113_600)


@pytest.mark.parametrize("case", CASES)
def test_the_published_signature_verifies(case: Case) -> None:
    case.verify(case.request())


@pytest.mark.parametrize("case", CASES)
def test_the_published_signature_rejects_a_tampered_body(case: Case) -> None:
    tampered = case.body[:-1] + bytes([case.body[-1] ^ 1]) if case.body else b" "
    with pytest.raises(SignatureInvalid):
        case.verify(case.request(body=tampered))


@pytest.mark.parametrize("case", CASES)
def test_the_published_signature_rejects_a_wrong_secret(case: Case) -> None:
    # A standard secret must stay a valid `whsec_` key; any other secret just gains a character.
    wrong = "whsec_" + "A" * 32 if case.provider == "standard" else case.secret + "x"
    with pytest.raises(SignatureInvalid):
        case.verify(case.request(), secret=wrong)


@pytest.mark.parametrize("case", TIMESTAMPED)
@pytest.mark.parametrize("skew", [-301, 301])
def test_the_published_signature_rejects_a_stale_timestamp(case: Case, skew: int) -> None:
    assert case.timestamp_seconds is not None
    with pytest.raises(SignatureInvalid) as caught:
        case.verify(case.request(), now=case.timestamp_seconds - skew)
    assert caught.value.key == "stale_timestamp"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mangle", ["empty", "garbage", "truncated", "non_ascii", "doubled", "scheme_only"])
def test_the_published_signature_rejects_a_malformed_header(case: Case, mangle: str) -> None:
    digest = case.digest
    mangled = {
        "empty": "",
        "garbage": "%%%",
        "truncated": case.signature.replace(digest, digest[: len(digest) // 2]),
        "non_ascii": case.signature.replace(digest, digest[:-3] + "é€\u0000"),
        "doubled": case.signature.replace(digest, digest + digest),
        "scheme_only": case.signature.replace(digest, ""),
    }[mangle]
    with pytest.raises(SignatureInvalid):
        case.verify(case.request(signature=mangled))


# --- Standard Webhooks: the strings its reference tests use next to the vector ----------------------

STANDARD = _standard_cases()[0][1]
STRINGS = fixture_json("standard-webhooks/vectors.json")["invalid_signature_strings_used_in_tests"]


def test_standard_accepts_the_valid_signature_among_padding_entries() -> None:
    padding = STRINGS[0]
    header = f"{padding['value']} {padding['also_seen_as']} {STANDARD.signature}"
    STANDARD.verify(STANDARD.request(signature=header))


def test_standard_rejects_the_padding_entries_alone() -> None:
    padding = STRINGS[0]
    with pytest.raises(SignatureInvalid):
        STANDARD.verify(STANDARD.request(signature=f"{padding['value']} {padding['also_seen_as']}"))


def test_standard_rejects_a_v2_entry_carrying_the_valid_signature() -> None:
    with pytest.raises(SignatureInvalid):
        STANDARD.verify(STANDARD.request(signature=STANDARD.signature.replace("v1,", "v2,")))


@pytest.mark.parametrize("value", [entry["value"] for entry in STRINGS[1:]])
def test_standard_rejects_a_published_tampered_or_garbage_signature(value: str) -> None:
    with pytest.raises(SignatureInvalid):
        STANDARD.verify(STANDARD.request(signature=value))
