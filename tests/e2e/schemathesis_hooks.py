"""Schemathesis hooks for `test_schemathesis.py` (loaded through `SCHEMATHESIS_HOOKS`).

Long polls (`GET /events?wait=`, a consumer's receive) are capped at half a second: a generated
`wait=19.7` on an idle filter would otherwise hold a request for 20 s, and the run has a budget. Every
other value is left as generated.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MAX_WAIT_SECONDS = 0.5


@schemathesis.hook
def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    wait = query.get("wait") if query else None
    if query and isinstance(wait, int | float) and not isinstance(wait, bool) and wait > MAX_WAIT_SECONDS:
        query["wait"] = MAX_WAIT_SECONDS
    return query


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """A consumer's `receive` long-polls by its body's `wait`: capped the same way."""
    wait = body.get("wait") if isinstance(body, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > MAX_WAIT_SECONDS:
        body["wait"] = MAX_WAIT_SECONDS
    return body
