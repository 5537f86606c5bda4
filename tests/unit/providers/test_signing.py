"""The HMAC pieces every provider's scheme is built from (`providers.signing`), and the payload times of
`providers.base`: each behaviour with its negative."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math

import pytest

from pullbridge.errors import SignatureInvalid, ValidationFailed
from pullbridge.providers.base import epoch_seconds
from pullbridge.providers.signing import (
    MILLISECONDS_DIGITS,
    check_secret,
    decode_digest,
    hmac_keys,
    hmac_matches,
    hmac_signature,
    parse_unix_time,
    read_digest,
    require_fresh,
)

GITHUB_DOCS_SECRET = b"It's a Secret to Everybody"
GITHUB_DOCS_DIGEST = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
"""The example of GitHub's "Validating webhook deliveries": HMAC-SHA256 of "Hello, World!"."""

KEY = b"k"
MESSAGE = b"message"
DIGEST = hmac.new(KEY, MESSAGE, hashlib.sha256).digest()


# --- signing ------------------------------------------------------------------------------------


def test_hmac_signature_in_hex_matches_a_published_example() -> None:
    assert hmac_signature(GITHUB_DOCS_SECRET, b"Hello, World!") == GITHUB_DOCS_DIGEST


def test_hmac_signature_in_base64_encodes_the_same_digest() -> None:
    signature = hmac_signature(GITHUB_DOCS_SECRET, b"Hello, World!", encoding="base64")
    assert base64.b64decode(signature).hex() == GITHUB_DOCS_DIGEST


def test_hmac_signature_uses_the_algorithm_asked_for() -> None:
    assert hmac_signature(KEY, MESSAGE, algorithm="sha512") == hmac.new(KEY, MESSAGE, "sha512").hexdigest()


# --- keys ---------------------------------------------------------------------------------------


def test_hmac_keys_yields_each_secret_as_utf8() -> None:
    assert list(hmac_keys(["a", "é"])) == [b"a", "é".encode()]


def test_hmac_keys_never_yields_an_empty_or_unencodable_secret() -> None:
    assert list(hmac_keys(["", "\ud800", "b"])) == [b"b"]


# --- comparison ---------------------------------------------------------------------------------


def test_hmac_matches_when_any_key_signs_any_message_as_any_candidate() -> None:
    assert hmac_matches([b"wrong", KEY], [b"other", MESSAGE], [b"\0" * 32, DIGEST])


def test_hmac_matches_nothing_when_no_key_signed_the_message() -> None:
    assert not hmac_matches([b"wrong"], [MESSAGE], [DIGEST])


def test_hmac_matches_nothing_without_keys_or_candidates() -> None:
    assert not hmac_matches([], [MESSAGE], [DIGEST])
    assert not hmac_matches([KEY], [MESSAGE], [])


def test_hmac_matches_under_the_algorithm_asked_for() -> None:
    sha1 = hmac.new(KEY, MESSAGE, "sha1").digest()
    assert hmac_matches([KEY], [MESSAGE], [sha1], algorithm="sha1")
    assert not hmac_matches([KEY], [MESSAGE], [sha1])


# --- digests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [(DIGEST.hex(), "hex"), (DIGEST.hex().upper(), "hex"), (base64.b64encode(DIGEST).decode(), "base64")],
)
def test_decode_digest_reads_a_digest_of_the_algorithms_size(encoded: str, encoding: str) -> None:
    assert decode_digest(encoded, encoding) == DIGEST  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        ("", "hex"),
        (DIGEST.hex()[:-2], "hex"),
        (DIGEST.hex() + "00", "hex"),
        (DIGEST.hex()[:-1], "hex"),
        (DIGEST.hex()[:-2] + "zz", "hex"),
        (DIGEST.hex()[:-2] + " 0", "hex"),
        (DIGEST.hex()[:-2] + "\u0660\u0660", "hex"),
        ("", "base64"),
        (base64.b64encode(DIGEST[:-1]).decode(), "base64"),
        (base64.b64encode(DIGEST).decode() + "!", "base64"),
        (base64.b64encode(DIGEST).decode().rstrip("="), "base64"),
    ],
    ids=[
        "hex-empty",
        "hex-short",
        "hex-long",
        "hex-odd",
        "hex-not-hex",
        "hex-space",
        "hex-non-ascii",
        "b64-empty",
        "b64-short",
        "b64-garbage",
        "b64-unpadded",
    ],
)
def test_decode_digest_refuses_anything_else(encoded: str, encoding: str) -> None:
    assert decode_digest(encoded, encoding) is None  # type: ignore[arg-type]


def test_decode_digest_checks_the_size_of_the_algorithm_asked_for() -> None:
    sha512 = hmac.new(KEY, MESSAGE, "sha512").digest()
    assert decode_digest(sha512.hex(), "hex", algorithm="sha512") == sha512
    assert decode_digest(sha512.hex(), "hex") is None


def test_read_digest_strips_spaces_and_the_prefix() -> None:
    assert read_digest(f" sha256={DIGEST.hex()} ", "X-Sig", encoding="hex", prefix="sha256=") == DIGEST


@pytest.mark.parametrize("value", [DIGEST.hex(), f"sha1={DIGEST.hex()}", "sha256=", "sha256=%%%"])
def test_read_digest_refuses_a_malformed_header_with_the_one_verification_error(value: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        read_digest(value, "X-Sig", encoding="hex", prefix="sha256=")
    assert caught.value.key == "malformed_signature"
    assert "X-Sig" in caught.value.message


# --- timestamps ---------------------------------------------------------------------------------


def test_parse_unix_time_reads_decimal_seconds() -> None:
    assert parse_unix_time("1700000000", "t") == 1_700_000_000


def test_parse_unix_time_reads_milliseconds_up_to_their_digits() -> None:
    assert parse_unix_time("1700000000000", "t", max_digits=MILLISECONDS_DIGITS) == 1_700_000_000_000


@pytest.mark.parametrize(
    "value", ["", "-1", "+1", " 1", "1.5", "1e9", "0x10", "1_000", "\u0661\u0667", "1" * 13]
)
def test_parse_unix_time_refuses_anything_but_a_few_ascii_digits(value: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        parse_unix_time(value, "webhook-timestamp")
    assert caught.value.key == "malformed_signature"
    assert "webhook-timestamp" in caught.value.message


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_require_fresh_accepts_a_time_within_the_tolerance(skew: int) -> None:
    require_fresh(1_700_000_000 + skew, 1_700_000_000, "t")


@pytest.mark.parametrize("skew", [-300.001, 300.001])
def test_require_fresh_refuses_a_time_past_the_tolerance_either_way(skew: float) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        require_fresh(1_700_000_000 + skew, 1_700_000_000, "t")
    assert caught.value.key == "stale_timestamp"


def test_require_fresh_takes_a_narrower_tolerance() -> None:
    require_fresh(1_700_000_060, 1_700_000_000, "t", tolerance=60)
    with pytest.raises(SignatureInvalid):
        require_fresh(1_700_000_061, 1_700_000_000, "t", tolerance=60)


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ascii_only", [True, False])
def test_check_secret_accepts_a_plain_secret(ascii_only: bool) -> None:
    check_secret("whsec_abc123", "a secret", ascii_only=ascii_only)


def test_check_secret_accepts_unicode_text_unless_ascii_only() -> None:
    check_secret("clé secrète", "a secret", ascii_only=False)
    with pytest.raises(ValidationFailed):
        check_secret("clé secrète", "a secret", ascii_only=True)


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("secret", ["", " padded", "padded\n", "\ud800"])
def test_check_secret_refuses_an_unusable_secret(secret: str, ascii_only: bool) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_secret(secret, "a Stripe webhook signing secret", ascii_only=ascii_only)
    assert caught.value.key == "invalid_webhook_secret"
    assert caught.value.message.startswith("a Stripe webhook signing secret ")


# --- payload times ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(1_700_000_000, 1_700_000_000.0), (1.5, 1.5), (0, 0.0)])
def test_epoch_seconds_reads_a_number(value: object, expected: float) -> None:
    assert epoch_seconds(value) == expected


@pytest.mark.parametrize("value", [True, None, "1700000000", math.inf, math.nan, 10**400, [1]])
def test_epoch_seconds_is_none_for_anything_else(value: object) -> None:
    assert epoch_seconds(value) is None
