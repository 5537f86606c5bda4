"""The `pullbridge` command (extra `[cli]`): the API from a terminal, and the admin commands.

    pullbridge events tail --follow            # PULLBRIDGE_URL, PULLBRIDGE_API_KEY from the environment
    pullbridge pulls list --status error
    pullbridge consumers tail billing          # receive, print and ack a consumer's events
    pullbridge mutate update --connection conn_1 --collection customers --id cus_1 --data @change.json
    pullbridge admin keys create --tenant acme # on a deployed stack, with your AWS credentials ([admin])
    pullbridge dev                             # from a clone: the local stack, as `make dev`

The consumer commands are in pullbridge_client.cli_consumers, the mutation ones in cli_mutations, the
admin ones in cli_admin. boto3 and the local stack are imported only by the commands that use them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from pullbridge_client._version import __version__
from pullbridge_client.cli_admin import admin, hidden_keys_alias
from pullbridge_client.cli_common import (
    EPILOG,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    HANDLED,
    AwsClients,
    CommandFailed,
    Config,
    echo_json,
    event_line,
    failure_of,
    reported,
)
from pullbridge_client.cli_consumers import consumers
from pullbridge_client.cli_mutations import mutate, mutations

__all__ = ["cli", "main"]


def _key_values(_: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param=parameter)
        pairs[key] = value
    return pairs


def _setting_value(text: str) -> Any:
    """A setting's value: JSON when it parses (numbers, objects like rate_limit), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- the group -------------------------------------------------------------------------------------


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="PULLBRIDGE_URL",
    default="http://127.0.0.1:3000",
    show_default=True,
    show_envvar=True,
    help="The API's base URL.",
)
@click.option("--api-key", envvar="PULLBRIDGE_API_KEY", show_envvar=True, help="The tenant's API key.")
@click.version_option(__version__, prog_name="pullbridge")
@click.pass_context
def cli(context: click.Context, url: str, api_key: str | None) -> None:
    """pullbridge: provider webhooks in, a cursor-paged pull API out."""
    aws = context.obj if isinstance(context.obj, AwsClients) else AwsClients()
    context.obj = Config(url, api_key, aws)


def main() -> None:
    """The `pullbridge` console script."""
    cli(prog_name="pullbridge")


# --- events ----------------------------------------------------------------------------------------


@cli.group(epilog=EPILOG)
def events() -> None:
    """Read the event log."""


@events.command("tail", epilog=EPILOG)
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new events (long polling) until Ctrl-C.")
@click.option("--connection", "connection_id", metavar="ID", help="Only this connection's events.")
@click.option("--provider", help="Only this provider's events.")
@click.option("--collection", help="Only this collection's events.")
@click.option("--type", "event_type", metavar="T", help="Only events of this type.")
@click.option(
    "--source",
    type=click.Choice(["webhook", "pull", "mutation"]),
    help="Only webhook, pull or mutation events.",
)
@click.option("--cursor", metavar="C", help="Resume after this cursor (as printed on exit).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def events_tail(
    config: Config,
    follow: bool,
    connection_id: str | None,
    provider: str | None,
    collection: str | None,
    event_type: str | None,
    source: str | None,
    cursor: str | None,
    as_json: bool,
) -> None:
    """Print the events after --cursor (from the start without one), oldest first, each exactly once.

    One line per event: received time, type, id, connection, record id (or JSON lines with --json).
    On exit (end of the log, an error or Ctrl-C) the cursor to resume from is printed to stderr as
    `resume with: --cursor C`: passing it back continues with the next event, nothing repeated.
    """
    client = config.client()
    stream = client.iter_events(
        cursor,
        follow,
        connection_id=connection_id,
        provider=provider,
        collection=collection,
        type=event_type,
        source=source,
    )
    resume = cursor
    exit_code = 0
    failure: CommandFailed | None = None
    try:
        for event in stream:
            if as_json:
                echo_json(event.to_dict())
            else:
                click.echo(event_line(event))
            resume = stream.cursor
        resume = stream.cursor
    except KeyboardInterrupt:
        exit_code = EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `| head`: the reader is gone; what it read is what was printed
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (so the interpreter's final flush is silent)
        exit_code = EXIT_ERROR
    except HANDLED as exc:
        failure = failure_of(exc, config.url)
        exit_code = failure.exit_code
    finally:
        stream.close()
        client.close()
    if failure is not None:
        failure.show()
    if resume:
        click.echo(f"resume with: --cursor {resume}", err=True)
    if exit_code:
        raise click.exceptions.Exit(exit_code)


# --- pulls -----------------------------------------------------------------------------------------


@cli.group(epilog=EPILOG)
def pulls() -> None:
    """External event pulls: full scans of providers' list APIs."""


def _pull_line(pull: dict[str, Any]) -> str:
    stats = pull.get("stats") or {}
    counts = f"+{stats.get('created', 0)} ~{stats.get('updated', 0)} -{stats.get('deleted', 0)}"
    error = pull.get("error") or {}
    fields = [
        str(pull.get("start_datetime")),
        str(pull.get("status")),
        str(pull.get("id")),
        str(pull.get("external_event_subscription_id")),
        f"{pull.get('provider')}/{pull.get('collection')}",
        counts,
    ]
    if error:
        fields.append(f"{error.get('type')}: {error.get('message')}")
    return "  ".join(fields)


@pulls.command("list", epilog=EPILOG)
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "success", "error"]),
    help="Only pulls in this status.",
)
@click.option("--subscription", "subscription_id", metavar="ID", help="Only this subscription's pulls.")
@click.option("--connection", "connection_id", metavar="ID", help="Only this connection's pulls.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def pulls_list(
    config: Config,
    status: str | None,
    subscription_id: str | None,
    connection_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List pull records, newest first: start, status, id, subscription, collection, +created ~updated
    -deleted, and the error of a failed one."""
    with config.client() as client, reported(config):
        records = client.iter_pulls(
            status, subscription_id, connection_id=connection_id, limit=min(limit, 1000)
        )
        for count, pull in enumerate(records, start=1):
            if as_json:
                echo_json(pull)
            else:
                click.echo(_pull_line(pull))
            if count >= limit:
                break


@pulls.command("trigger", epilog=EPILOG)
@click.argument("subscription_id")
@click.option("--json", "as_json", is_flag=True, help="Print the pull record as JSON.")
@click.pass_obj
def pulls_trigger(config: Config, subscription_id: str, as_json: bool) -> None:
    """Start a full scan of SUBSCRIPTION_ID now. Exit code 5 if one is already running."""
    with config.client() as client, reported(config):
        pull = client.trigger_pull(subscription_id)
    if as_json:
        echo_json(pull)
    else:
        click.echo(_pull_line(pull))


# --- connections -----------------------------------------------------------------------------------


@cli.group(epilog=EPILOG)
def connections() -> None:
    """Provider accounts: their webhook URLs, secrets and credentials."""


def _connection_line(connection: dict[str, Any]) -> str:
    return "  ".join(
        str(connection.get(field)) for field in ("id", "provider", "name", "webhook_url", "created_at")
    )


@connections.command("create", epilog=EPILOG)
@click.option("--provider", required=True, help="stripe, github, shopify, hubspot, standard or generic.")
@click.option("--name", required=True, help="A name for the connection.")
@click.option("--secret", "secrets", multiple=True, metavar="S", help="A webhook secret (repeatable).")
@click.option(
    "--credential", multiple=True, metavar="K=V", callback=_key_values, help="An API credential (repeatable)."
)
@click.option("--api-base-url", metavar="U", help="The provider API's base URL, for pulls.")
@click.option(
    "--setting",
    multiple=True,
    metavar="K=V",
    callback=_key_values,
    help="A setting (repeatable); V is parsed as JSON when it can be.",
)
@click.option("--metadata", multiple=True, metavar="K=V", callback=_key_values, help="Metadata (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the connection as JSON.")
@click.pass_obj
def connections_create(
    config: Config,
    provider: str,
    name: str,
    secrets: tuple[str, ...],
    credential: dict[str, str],
    api_base_url: str | None,
    setting: dict[str, str],
    metadata: dict[str, str],
    as_json: bool,
) -> None:
    """Create a connection and print it (id, provider, name, webhook URL). Secrets are never printed."""
    with config.client() as client, reported(config):
        connection = client.create_connection(
            provider,
            name,
            webhook_secrets=list(secrets),
            credentials=credential,
            api_base_url=api_base_url,
            settings={key: _setting_value(value) for key, value in setting.items()},
            metadata=metadata,
        )
    if as_json:
        echo_json(connection)
    else:
        click.echo(_connection_line(connection))


@connections.command("list", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def connections_list(config: Config, as_json: bool) -> None:
    """List the active connections, newest first: id, provider, name, webhook URL, created."""
    with config.client() as client, reported(config):
        for connection in client.iter_connections():
            if as_json:
                echo_json(connection)
            else:
                click.echo(_connection_line(connection))


# --- dev (the local stack, from a clone) -----------------------------------------------------------


@cli.command(epilog=EPILOG)
def dev() -> None:
    """Serve the whole stack locally, as `make dev` does (PORT, PULLBRIDGE_API_KEY, DYNAMODB_ENDPOINT,
    CURSOR_SECRET from the environment). Needs a clone of the pullbridge repository."""
    try:
        from pullbridge_local.dev import run_dev
    except ImportError:
        raise CommandFailed(
            "the local stack runs from a clone of the pullbridge repository: run `make dev` there"
        ) from None
    run_dev()


# --- consumers: pullbridge_client.cli_consumers ------------------------------------------------------

cli.add_command(consumers)

# --- mutations: pullbridge_client.cli_mutations ------------------------------------------------------

cli.add_command(mutate)
cli.add_command(mutations)

# --- admin (deployed stacks, with AWS credentials): pullbridge_client.cli_admin -----------------------

cli.add_command(admin)
cli.add_command(hidden_keys_alias)
