"""Shared helpers for the provider tests: the published fixtures and request building."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pullbridge.providers.base import WebhookRequest
from tests.paths import FIXTURES_DIR as FIXTURES

WEBHOOK_URL = "https://api.example.com/webhooks/conn_123"

if not FIXTURES.is_dir():
    raise RuntimeError(f"the provider tests read the published fixtures in {FIXTURES}, which is missing")


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def fixture_json(relative: str) -> Any:
    return json.loads(fixture_bytes(relative))


def signature_vectors(provider: str | None = None) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = fixture_json("signatures.json")["vectors"]
    return [vector for vector in vectors if provider is None or vector["provider"] == provider]


def vector_body(vector: Mapping[str, Any]) -> bytes:
    return base64.b64decode(vector["payload_base64"])


def vector_id(vector: Mapping[str, Any]) -> str:
    """A readable pytest id: provider, signature version and the source file's name."""
    source = vector["source"][0]
    where = Path(source.get("path", source.get("url", ""))).stem
    return "-".join(part for part in (vector["provider"], vector.get("signature_version", ""), where) if part)


def make_request(
    headers: Mapping[str, str], body: bytes, *, method: str = "POST", url: str = WEBHOOK_URL
) -> WebhookRequest:
    """A delivery as the ingest hands it over: header names lower-cased."""
    return WebhookRequest(
        method=method, url=url, headers={name.lower(): value for name, value in headers.items()}, body=body
    )
