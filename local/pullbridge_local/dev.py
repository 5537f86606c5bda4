"""`make dev`: serve the whole stack until Ctrl-C or SIGTERM, configured by the environment.

`PORT` (default 3000), `PULLBRIDGE_API_KEY`, `DYNAMODB_ENDPOINT` (an external DynamoDB-compatible server
instead of the embedded one) and `CURSOR_SECRET`. `python -m pullbridge_local` and the client package's
`pullbridge dev` both run `run_dev`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from pullbridge_local.quickstart import banner, create_standard_connection
from pullbridge_local.server import LocalStack


def _environment(name: str) -> str | None:
    return os.environ.get(name) or None


def run_dev() -> None:
    """Serves the whole stack until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The stack logs every request itself; httpx would log the demo connection's request a second time.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # `make` and process managers stop with SIGTERM; treat it as Ctrl-C so the stack shuts down cleanly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack = LocalStack(
        port=int(os.environ.get("PORT") or 3000),
        api_key=_environment("PULLBRIDGE_API_KEY"),
        dynamodb_endpoint=_environment("DYNAMODB_ENDPOINT"),
        cursor_secret=_environment("CURSOR_SECRET"),
    )
    try:
        with stack:
            dynamodb = (
                f"{stack.dynamodb_endpoint} (DYNAMODB_ENDPOINT)"
                if _environment("DYNAMODB_ENDPOINT")
                else f"embedded (moto) at {stack.dynamodb_endpoint}"
            )
            connection = create_standard_connection(stack.url, stack.api_key)
            print(banner(stack.url, stack.api_key, dynamodb, connection), flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        print("pullbridge stopped")
