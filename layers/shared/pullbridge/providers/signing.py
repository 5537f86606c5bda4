"""The HMAC pieces every signature scheme is built from: secrets as keys, digests read from headers, unix
timestamps and their tolerance, and the constant-time comparison.

Every failure is `SignatureInvalid` (or `ValidationFailed`, for a secret refused when a connection is
written): no `ValueError` or `binascii.Error` escapes. Imported by provider modules only, so the webhook
path loads it with the provider it serves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from pullbridge.errors import SignatureInvalid, ValidationFailed
from pullbridge.providers.base import TIMESTAMP_TOLERANCE_SECONDS

DigestEncoding = Literal["hex", "base64"]

SECONDS_DIGITS = 12
"""A unix time in seconds has at most 12 digits (year 33658): longer is refused before `int()`."""
MILLISECONDS_DIGITS = 15


def hmac_keys(secrets: Sequence[str]) -> Iterator[bytes]:
    """The secrets as HMAC keys. An empty key would let anyone sign, so it never counts as a secret."""
    for secret in secrets:
        if secret:
            try:
                yield secret.encode()
            except UnicodeEncodeError:
                continue


def hmac_signature(
    key: bytes, message: bytes, *, encoding: DigestEncoding = "hex", algorithm: str = "sha256"
) -> str:
    """The encoded HMAC of `message`: what a sender puts in its signature header."""
    digest = hmac.new(key, message, algorithm).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def hmac_matches(
    keys: Iterable[bytes],
    messages: Sequence[bytes],
    candidates: Sequence[bytes],
    *,
    algorithm: str = "sha256",
) -> bool:
    """True when the HMAC of some message under some key is one of `candidates`. Each expected digest is
    compared with every candidate by `hmac.compare_digest`, so timing does not reveal which one matched."""
    for key in keys:
        for message in messages:
            expected = hmac.new(key, message, algorithm).digest()
            # A list, not a generator: `any` would stop at the first match.
            if any([hmac.compare_digest(expected, candidate) for candidate in candidates]):
                return True
    return False


def decode_digest(encoded: str, encoding: DigestEncoding, *, algorithm: str = "sha256") -> bytes | None:
    """The digest `encoded` holds, or None unless it is exactly one `algorithm` digest in `encoding`."""
    if not encoded.isascii():
        return None
    try:
        if encoding == "hex":
            # `fromhex` would skip spaces; a signature has none.
            digest = bytes.fromhex(encoded) if encoded.isalnum() else None
        else:
            digest = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if digest is not None and len(digest) == hashlib.new(algorithm).digest_size else None


def read_digest(
    value: str, header: str, *, encoding: DigestEncoding, prefix: str = "", algorithm: str = "sha256"
) -> bytes:
    """The digest in a signature header's `value` (`prefix` + the encoded digest, spaces around ignored),
    or the one verification error naming `header`."""
    stripped = value.strip()
    if not stripped.startswith(prefix):
        raise SignatureInvalid(f"{header} does not start with {prefix!r}", key="malformed_signature")
    digest = decode_digest(stripped[len(prefix) :], encoding, algorithm=algorithm)
    if digest is None:
        raise SignatureInvalid(f"{header} is not a {encoding} {algorithm} digest", key="malformed_signature")
    return digest


def parse_unix_time(value: str, label: str, *, max_digits: int = SECONDS_DIGITS) -> int:
    """A unix time written as decimal digits only (no sign, no spaces), or `SignatureInvalid` naming
    `label`. Milliseconds take `max_digits=MILLISECONDS_DIGITS`."""
    if not value.isascii() or not value.isdigit() or len(value) > max_digits:
        raise SignatureInvalid(f"{label} is not a unix time", key="malformed_signature")
    return int(value)


def require_fresh(
    timestamp: float, now: float, label: str, *, tolerance: float = TIMESTAMP_TOLERANCE_SECONDS
) -> None:
    """`SignatureInvalid` when `timestamp` (seconds) is more than `tolerance` away from `now`, in either
    direction: a time in the future could otherwise be replayed for as long as it lies ahead."""
    if abs(now - timestamp) > tolerance:
        raise SignatureInvalid(f"{label} is outside the {tolerance:g} s tolerance", key="stale_timestamp")


def check_secret(secret: str, description: str, *, ascii_only: bool) -> None:
    """`ValidationFailed` unless the webhook secret is usable as an HMAC key as the sender shows it: not
    empty, no surrounding whitespace (a copy-paste slip), and ASCII or UTF-8 text. `description` names the
    secret for the message, e.g. "a Stripe webhook signing secret (whsec_...)"."""
    encodable = secret.isascii() if ascii_only else _encodable(secret)
    if not secret or secret != secret.strip() or not encodable:
        kind = "ASCII string" if ascii_only else "string"
        raise ValidationFailed(
            f"{description} is a non-empty {kind} without surrounding spaces",
            key="invalid_webhook_secret",
            data={"fields": ["webhook_secrets"]},
        )


def _encodable(text: str) -> bool:
    # A lone surrogate (from JSON `"\ud800"`) is a str that no HMAC key can be made of.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
