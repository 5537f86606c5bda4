from __future__ import annotations

import pytest

from pullbridge.errors import ValidationFailed
from pullbridge.ids import event_position, new_event_id, new_id
from pullbridge.urls import validate_base_url


@pytest.mark.parametrize("position", [1, 35, 36, 10**6, 10**15])
def test_an_event_id_carries_its_position(position: int) -> None:
    assert event_position(new_event_id(position)) == position


def test_event_ids_are_unguessable() -> None:
    assert len({new_event_id(7) for _ in range(100)}) == 100


@pytest.mark.parametrize("text", ["", "evt_", "conn_abc", "evt_z", "evt_5ab", "evt_1?xxxxxxxxxxxxxxxxxxxx"])
def test_text_that_is_not_an_event_id_has_no_position(text: str) -> None:
    assert event_position(text) is None


def test_new_ids_have_their_prefix_and_are_unique() -> None:
    ids = {new_id("conn") for _ in range(100)}
    assert len(ids) == 100
    assert all(value.startswith("conn_") for value in ids)


def public_resolver(host: str) -> set[str]:
    """Every name resolves to one public address: these tests never use the network."""
    return {"93.184.216.34"}


@pytest.mark.parametrize("url", ["https://api.stripe.com", "https://example.com/base/"])
def test_public_https_urls_are_allowed(url: str) -> None:
    assert validate_base_url(url, allow_private=False, resolver=public_resolver) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://api.stripe.com",
        "https://127.0.0.1",
        "https://10.1.2.3",
        "https://192.168.0.1:8443",
        "https://169.254.169.254/latest",
        "https://[::1]/",
        "https://localhost",
        "https://db.internal",
        "ftp://example.com",
        "https://user:pw@example.com",
        "not a url",
        "https://2130706433",
        "https://0x7f000001",
        "https://127.1",
        "https://0177.0.0.1",
        "https://[::ffff:127.0.0.1]",
    ],
)
def test_plain_http_private_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed):
        validate_base_url(url, allow_private=False, resolver=public_resolver)


def test_private_urls_are_allowed_when_the_deployment_says_so() -> None:
    assert validate_base_url("http://127.0.0.1:8080", allow_private=True) == "http://127.0.0.1:8080"


def test_random_tokens_are_the_length_asked_and_use_every_character_alike() -> None:
    from collections import Counter

    from pullbridge.ids import random_token

    tokens = [random_token(24) for _ in range(3_000)]
    assert {len(token) for token in tokens} == {24}
    counts = Counter("".join(tokens))
    assert set(counts) == set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert max(counts.values()) < 1.25 * min(counts.values())  # 2,000 each expected: no biased byte
    assert len(set(tokens)) == len(tokens)
