"""`pullbridge admin keys create|revoke`: API keys of a deployed stack, through its admin function.

They use your own AWS credentials, not an API key (see pullbridge_client.admin), and need the `[admin]`
extra (boto3), which is imported only when one of them runs. `pullbridge keys create|revoke` is a hidden
alias, kept for scripts written before the admin group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pullbridge_client.cli_common import EPILOG, FAILURE_OF_ERROR_TYPE, CommandFailed, Config, UsageFailed

if TYPE_CHECKING:
    from pullbridge_client.admin import Admin

__all__ = ["admin", "announcement", "hidden_keys_alias"]

T = TypeVar("T")

# pullbridge_client.admin.DEFAULT_STACK_NAME (a test keeps them equal): that module imports boto3, which
# only a running admin command may load.
DEFAULT_STACK_NAME = "pullbridge"


def _stack_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--function-name",
        metavar="F",
        help="The admin function's name or ARN: skips the stack lookup.",
    )(command)
    return click.option(
        "--stack-name",
        metavar="S",
        help=f"The deployed stack, whose AdminFunctionName output names the function [default: "
        f"{DEFAULT_STACK_NAME}].",
    )(command)


def announcement(tenant: str, key: str) -> str:
    """What `keys create` prints: the key on its own last line, so scripts can take it with `tail -n1`."""
    return f"tenant {tenant}: API key (shown once, stored only as a hash)\n{key}"


def _call(
    config: Config, stack_name: str | None, function_name: str | None, action: Callable[[Admin], T]
) -> T:
    """`action` on the stack's admin function; whatever fails is one line, with its kind's exit code."""
    if stack_name is not None and function_name is not None:
        raise UsageFailed("pass --stack-name or --function-name, not both")
    try:
        from pullbridge_client.admin import Admin, AdminError, AdminRefused
    except ImportError as exc:
        raise CommandFailed(
            f"the admin commands need boto3 ({exc.name} is missing): pip install 'pullbridge-client[admin]'"
        ) from None
    admin = Admin(
        function_name=function_name,
        stack_name=stack_name or DEFAULT_STACK_NAME,
        lambda_client=config.aws.lambda_client,
        cloudformation_client=config.aws.cloudformation_client,
    )
    try:
        return action(admin)
    except AdminRefused as refused:
        failure = FAILURE_OF_ERROR_TYPE.get(refused.error_type, CommandFailed)
        raise failure(refused.message or refused.error_type) from None
    except AdminError as exc:
        raise CommandFailed(str(exc)) from None


@click.command("create", epilog=EPILOG)
@click.option("--tenant", required=True, help="The tenant id, e.g. acme (created if new).")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@_stack_options
@click.pass_obj
def keys_create(
    config: Config, tenant: str, name: str, stack_name: str | None, function_name: str | None
) -> None:
    """Create a tenant (if new) and a new API key, printed once and stored only as a hash."""
    key = _call(config, stack_name, function_name, lambda admin: admin.create_key(tenant, name=name))
    click.echo(announcement(tenant, key))


@click.command("revoke", epilog=EPILOG)
@click.argument("key_or_sha256")
@_stack_options
@click.pass_obj
def keys_revoke(
    config: Config, key_or_sha256: str, stack_name: str | None, function_name: str | None
) -> None:
    """Revoke an API key, given the key or its SHA-256 hex. Calls with it get 401 from now on."""
    tenant = _call(config, stack_name, function_name, lambda admin: admin.revoke_key(key_or_sha256))
    click.echo(f"revoked an API key of tenant {tenant}")


@click.group(epilog=EPILOG)
def admin() -> None:
    """A deployed stack's administration, with your own AWS credentials (not an API key)."""


@admin.group("keys", epilog=EPILOG)
def keys() -> None:
    """API keys, made by the stack's admin function (cloudformation:DescribeStacks to find it,
    lambda:InvokeFunction to call it)."""


keys.add_command(keys_create)
keys.add_command(keys_revoke)

hidden_keys_alias = click.Group(
    "keys",
    commands=[keys_create, keys_revoke],
    help="The same as `pullbridge admin keys`.",
    epilog=EPILOG,
    hidden=True,
)
