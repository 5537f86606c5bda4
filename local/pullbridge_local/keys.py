"""Bootstrap a tenant and its API key on a deployed stack, with the operator's own AWS credentials.

    python -m pullbridge_local.keys create --tenant acme --stack-name pullbridge

The key is printed once and stored only as a hash. The tables are found from the stack's outputs, so
nothing needs to be copied by hand; `--events-table`/`--control-table` skip the lookup.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import boto3

from pullbridge.auth import issue_api_key
from pullbridge.errors import PullbridgeError
from pullbridge.settings import Settings
from pullbridge.storage import Store, dynamodb_client


def _stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pullbridge_local.keys", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a tenant (if new) and a new API key for it")
    create.add_argument("--tenant", required=True, help="the tenant id, e.g. acme")
    create.add_argument("--name", default="default", help="a label for the key")
    create.add_argument("--stack-name", default="pullbridge", help="the deployed stack (default: pullbridge)")
    create.add_argument("--events-table", help="skip the stack lookup: the EventsTable name")
    create.add_argument("--control-table", help="skip the stack lookup: the ControlTable name")
    return parser


def main(argv: Sequence[str] | None = None, *, cloudformation: Any = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.control_table and arguments.events_table:
        tables = {"EventsTableName": arguments.events_table, "ControlTableName": arguments.control_table}
    else:
        tables = _stack_outputs(cloudformation or boto3.client("cloudformation"), arguments.stack_name)
    settings = Settings(
        events_table=tables["EventsTableName"],
        control_table=tables["ControlTableName"],
        dynamodb_endpoint=os.environ.get("DYNAMODB_ENDPOINT") or None,
    )
    try:
        key = issue_api_key(
            Store(dynamodb_client(settings.dynamodb_endpoint), settings),
            arguments.tenant,
            name=arguments.name,
        )
    except PullbridgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"tenant {arguments.tenant}: API key (shown once, stored only as a hash)\n{key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
