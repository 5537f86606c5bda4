"""A scripted `ProviderHttp` for the provider tests: each request gets the next answer of a script, and is
recorded (method, URL, query pairs, JSON body, headers) for the test to read."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pullbridge.errors import PullFailed
from pullbridge.providers import get_provider
from pullbridge.providers.base import ListPage, PullSource

BASE = "https://api.example.test"
SINCE = 1_700_000_000.0
SINCE_ISO = "2023-11-14T22:13:20Z"


@dataclass
class Call:
    method: str
    url: str
    params: list[tuple[str, str]] | None
    body: Any
    headers: Mapping[str, str]


@dataclass
class Scripted:
    """A `ProviderHttp` that answers from a script: (body, next link URL or None) per request."""

    answers: list[tuple[Any, str | None]]
    calls: list[Call] = field(default_factory=list)

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, str | None]:
        pairs = None if params is None else list(params.items() if isinstance(params, Mapping) else params)
        self.calls.append(Call("GET", url, pairs, None, dict(headers or {})))
        return self.answers.pop(0)

    def post_json(
        self, url: str, *, body: Any, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, str | None]:
        self.calls.append(Call("POST", url, None, json.loads(json.dumps(body)), dict(headers or {})))
        return self.answers.pop(0)

    def next_link(self, response: str | None, *, same_origin_as: str) -> str | None:
        return response

    def require_same_origin(self, url: str, reference: str) -> None:
        if not url.startswith(reference):
            raise PullFailed("bad_response", "off the host", key="foreign_next_url")


def source(provider: str, collection: str, **settings: Any) -> PullSource:
    credentials = {
        "stripe": {"api_key": "sk_test_1"},
        "github": {"token": "ghp_1"},
        "shopify": {"access_token": "shpat_1"},
        "hubspot": {"access_token": "pat-1"},
        "generic": {"bearer_token": "token-1"},
    }[provider]
    if provider == "github":
        settings.setdefault("repository", "octo/repo")
    return PullSource(collection, BASE, credentials, settings)


def pages(
    http: Scripted, provider: str, collection: str, checkpoint: str | None = None, **settings: Any
) -> list[ListPage]:
    found: Iterator[ListPage] = get_provider(provider).updated_pages(
        http, source(provider, collection, **settings), SINCE, checkpoint
    )
    return list(found)


def ids(found: list[ListPage]) -> list[str]:
    return [record.record_id for page in found for record in page.records]
