"""`python -m pullbridge_client` and the `pullbridge` script: the CLI, or what to install to get it."""

from __future__ import annotations

import sys


def main() -> None:
    # A console script cannot depend on an extra, so a plain `pip install pullbridge-client` has the
    # script but not click: say how to get it instead of a traceback.
    try:
        from pullbridge_client.cli import main as cli_main
    except ModuleNotFoundError as exc:
        if exc.name != "click":
            raise
        sys.stderr.write(
            "pullbridge: the command needs the [cli] extra: pip install 'pullbridge-client[cli]'\n"
        )
        raise SystemExit(1) from exc
    cli_main()


if __name__ == "__main__":
    main()
