"""Bootstrap a tenant and its API key on a deployed stack, with the operator's own AWS credentials.

    python -m pullbridge_local.keys create --tenant acme --stack-name pullbridge
    pullbridge keys create --tenant acme --stack-name pullbridge      (the same, from the CLI)

The key is printed once and stored only as a hash. The tables are found from the stack's outputs, so
nothing needs to be copied by hand; `--events-table`/`--control-table` skip the lookup.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pullbridge.auth import issue_api_key, revoke_api_key
from pullbridge.errors import PullbridgeError
from pullbridge.settings import Settings
from pullbridge.storage import Store, dynamodb_client

DEFAULT_STACK_NAME = "pullbridge"


class KeyBootstrapError(Exception):
    """Why no key was made, in one line (no stack, no tables, no AWS credentials, ...)."""


def _stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def find_tables(
    stack_name: str = DEFAULT_STACK_NAME,
    *,
    events_table: str | None = None,
    control_table: str | None = None,
    cloudformation: Any = None,
) -> tuple[str, str]:
    """(events table, control table): as given, or from the stack's outputs."""
    if events_table and control_table:
        return events_table, control_table
    outputs = _stack_outputs(cloudformation or boto3.client("cloudformation"), stack_name)
    try:
        return outputs["EventsTableName"], outputs["ControlTableName"]
    except KeyError as exc:
        raise KeyBootstrapError(
            f"stack {stack_name} has no output {exc.args[0]}: is it pullbridge?"
        ) from None


def _store(
    stack_name: str, events_table: str | None, control_table: str | None, cloudformation: Any
) -> Store:
    events, control = find_tables(
        stack_name, events_table=events_table, control_table=control_table, cloudformation=cloudformation
    )
    settings = Settings(
        events_table=events,
        control_table=control,
        dynamodb_endpoint=os.environ.get("DYNAMODB_ENDPOINT") or None,
    )
    return Store(dynamodb_client(settings.dynamodb_endpoint), settings)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turns what can go wrong (a refused key, AWS credentials or permissions) into one line to print."""
    try:
        yield
    except PullbridgeError as exc:
        raise KeyBootstrapError(exc.message) from exc
    except (BotoCoreError, ClientError) as exc:
        raise KeyBootstrapError(" ".join(str(exc).split())) from exc


def create_key(
    tenant: str,
    *,
    name: str = "default",
    stack_name: str = DEFAULT_STACK_NAME,
    events_table: str | None = None,
    control_table: str | None = None,
    cloudformation: Any = None,
) -> str:
    """Creates the tenant (if new) and a new API key for it; returns the key, which is stored hashed."""
    with _one_line_errors():
        return issue_api_key(
            _store(stack_name, events_table, control_table, cloudformation), tenant, name=name
        )


def revoke_key(
    key_or_hash: str,
    *,
    stack_name: str = DEFAULT_STACK_NAME,
    events_table: str | None = None,
    control_table: str | None = None,
    cloudformation: Any = None,
) -> str:
    """Revokes a key (given itself or its SHA-256 hash) at once; returns its tenant."""
    with _one_line_errors():
        return revoke_api_key(_store(stack_name, events_table, control_table, cloudformation), key_or_hash)


def announcement(tenant: str, key: str) -> str:
    """What both commands print: the key on its own last line."""
    return f"tenant {tenant}: API key (shown once, stored only as a hash)\n{key}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pullbridge_local.keys", description=(__doc__ or "").split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a tenant (if new) and a new API key for it")
    create.add_argument("--tenant", required=True, help="the tenant id, e.g. acme")
    create.add_argument("--name", default="default", help="a label for the key")
    create.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME, help="the deployed stack (default: pullbridge)"
    )
    create.add_argument("--events-table", help="skip the stack lookup: the EventsTable name")
    create.add_argument("--control-table", help="skip the stack lookup: the ControlTable name")
    return parser


def main(argv: Sequence[str] | None = None, *, cloudformation: Any = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        key = create_key(
            arguments.tenant,
            name=arguments.name,
            stack_name=arguments.stack_name,
            events_table=arguments.events_table,
            control_table=arguments.control_table,
            cloudformation=cloudformation,
        )
    except KeyBootstrapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(announcement(arguments.tenant, key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
