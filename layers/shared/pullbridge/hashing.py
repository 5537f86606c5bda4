"""Content hashes for the full-scan snapshot. Webhooks (Stripe, Shopify) and scans hash a record the
same way, so a change already delivered by webhook is not emitted again by the next scan."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(record: Any) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    # surrogatepass: a lone surrogate (a truncated emoji) is valid JSON, and must hash, not raise.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]
