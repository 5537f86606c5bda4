"""A provider upstream for the write tests: an `httpx.MockTransport` that answers from a script and keeps
each request, and the `PullHttp` over it that the mutation service would make for a provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from pullbridge.providers import get_provider
from pullbridge.providers.base import Provider
from pullbridge.pulls.http import PullHttp
from pullbridge.pulls.stats import PullStats


@dataclass
class Upstream:
    """A scripted provider: each request gets the next answer, (status, JSON body or None), and is kept."""

    answers: list[tuple[int, Any]]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.answers.pop(0)
        headers = {"Request-Id": "req_1", "X-GitHub-Request-Id": "GH:1", "X-Request-Id": "shop-1"}
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    @property
    def only(self) -> httpx.Request:
        [request] = self.requests
        return request


def http_for(provider: str, upstream: Upstream) -> PullHttp:
    named: Provider = get_provider(provider)
    client = httpx.Client(transport=httpx.MockTransport(upstream))
    return PullHttp(
        client,
        PullStats(),
        request_id_header=named.request_id_header,
        error_message=named.error_message,
        resolver=lambda host: {"93.184.216.34"},
        sleep=lambda seconds: None,
    )
