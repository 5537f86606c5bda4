"""`pullbridge mutate create|update|delete ...`: write one record at a connection's provider through
pullbridge; `pullbridge mutations list|get`: what was written.

Each `mutate` sends an `Idempotency-Key` (`--idempotency-key`, or a new one). When the outcome is
uncertain (a 5xx, a lost answer, a rate limit, a request still running) the key is printed to stderr as
`retry safely with: --idempotency-key K`: running the same command with it is the same write again,
answered with the first outcome or finished (an update or a delete is read back from the provider
first), not a new write.
Failures are one line with the exit codes of cli_common.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import click
import httpx

from pullbridge_client.cli_common import EPILOG, HANDLED, Config, echo_json, failure_of, reported
from pullbridge_client.client import KEY_REUSED
from pullbridge_client.errors import PullbridgeAPIError
from pullbridge_client.mutation_models import (
    MUTATION_KINDS,
    MUTATION_STATUSES,
    Mutation,
    MutationKind,
    MutationStatus,
)
from pullbridge_client.mutations import new_idempotency_key

__all__ = ["mutate", "mutations"]

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _json_object(_: click.Context, parameter: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """`--data`: a JSON object, inline, from a file (`@path`) or from stdin (`@-`)."""
    if value is None:
        return None
    where = "the value"
    text = value
    if value.startswith("@"):
        name = value[1:]
        where = "stdin" if name == "-" else name
        try:
            with click.open_file(name, encoding="utf-8") as source:
                text = source.read()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {name!r}: {exc.strerror or exc}", param=parameter
            ) from None
        except UnicodeDecodeError:
            raise click.BadParameter(f"{where} is not UTF-8 text", param=parameter) from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise click.BadParameter(f"{where} is not JSON: {exc}", param=parameter) from None
    if not isinstance(data, dict):
        kind = "null" if data is None else _JSON_KINDS.get(type(data), type(data).__name__)
        raise click.BadParameter(f"{where} is {kind}, not a JSON object", param=parameter)
    return data


def _check_options(kind: str, record_id: str | None, data: dict[str, Any] | None) -> None:
    if kind == "create" and record_id is not None:
        raise click.BadOptionUsage("record_id", "create takes no --id: the provider gives the new record one")
    if kind != "create" and record_id is None:
        raise click.BadOptionUsage("record_id", f"{kind} needs --id R: the provider's id of the record")
    if kind == "delete" and data is not None:
        raise click.BadOptionUsage("data", "delete takes no --data")
    if kind != "delete" and data is None:
        raise click.BadOptionUsage(
            "data", f"{kind} needs --data: a JSON object, inline, @file.json or @- for stdin"
        )


def _uncertain(exc: Exception) -> bool:
    """Whether the write may have been applied, or may succeed if sent again: worth the same key."""
    if isinstance(exc, PullbridgeAPIError):
        if exc.status_code == 409:
            return exc.key != KEY_REUSED  # the key's first request, still running
        return exc.status_code >= 500 or exc.status_code == 429
    return isinstance(exc, httpx.TransportError)


@click.command("mutate", epilog=EPILOG)
@click.argument("kind", type=click.Choice(MUTATION_KINDS))
@click.option(
    "--connection", "connection_id", required=True, metavar="ID", help="The connection to write with."
)
@click.option("--collection", required=True, metavar="C", help="The provider's collection, e.g. customers.")
@click.option("--id", "record_id", metavar="R", help="The record to update or delete (not for create).")
@click.option(
    "--data",
    metavar="JSON|@FILE|@-",
    callback=_json_object,
    help="The fields to write (create, update): a JSON object, inline, from a file (@file.json) or stdin (@-).",
)
@click.option(
    "--idempotency-key",
    metavar="K",
    help="Send this Idempotency-Key (default: a new one): the same key within 24 h is the same write.",
)
@click.pass_obj
def mutate(
    config: Config,
    kind: MutationKind,
    connection_id: str,
    collection: str,
    record_id: str | None,
    data: dict[str, Any] | None,
    idempotency_key: str | None,
) -> None:
    """Create, update or delete one record at the connection's provider (KIND: create, update or
    delete), and print the mutation as JSON: its status, the provider's record after the change, and
    the id of the event it was logged as.

    Exit code 2 when the provider refused the write (422; the error has the provider's message and
    request id) or the input is wrong. When the outcome is uncertain, the idempotency key is printed to
    stderr: run the command again with it, and the API treats it as the same write, not a new one.
    """
    _check_options(kind, record_id, data)
    key = idempotency_key or new_idempotency_key()
    with config.client() as client:
        try:
            mutation = client.mutate(
                connection_id, collection, kind, record_id=record_id, data=data, idempotency_key=key
            )
        except HANDLED as exc:
            failure = failure_of(exc, config.url)
            if not _uncertain(exc):
                raise failure from None
            failure.show()
            click.echo(f"retry safely with: --idempotency-key {key}", err=True)
            raise click.exceptions.Exit(failure.exit_code) from None
    echo_json(mutation.to_dict())


@click.group(epilog=EPILOG)
def mutations() -> None:
    """Mutations: the creates, updates and deletes sent to providers through pullbridge."""


def mutation_line(mutation: Mutation) -> str:
    """created_at, status, id, kind, collection, record id (or -), and the error of a failed one."""
    fields = [
        mutation.created_at,
        mutation.status,
        mutation.id,
        mutation.kind,
        mutation.collection,
        mutation.record_id or "-",
    ]
    if mutation.error is not None:
        fields.append(f"{mutation.error.type}: {mutation.error.message}")
    return "  ".join(fields)


@mutations.command("list", epilog=EPILOG)
@click.option("--connection", "connection_id", metavar="ID", help="Only this connection's mutations.")
@click.option("--status", type=click.Choice(MUTATION_STATUSES), help="Only mutations in this status.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def mutations_list(
    config: Config, connection_id: str | None, status: MutationStatus | None, limit: int, as_json: bool
) -> None:
    """List mutations, newest first: created, status, id, kind, collection, record id, and the error of
    a failed or unknown one."""
    with config.client() as client, reported(config):
        found = client.iter_mutations(
            connection_id=connection_id,
            status=status,
            limit=min(limit, 100),
        )
        for count, mutation in enumerate(found, start=1):
            if as_json:
                echo_json(mutation.to_dict())
            else:
                click.echo(mutation_line(mutation))
            if count >= limit:
                break


@mutations.command("get", epilog=EPILOG)
@click.argument("mutation_id")
@click.pass_obj
def mutations_get(config: Config, mutation_id: str) -> None:
    """Print mutation MUTATION_ID as JSON (exit code 4 if there is none)."""
    with config.client() as client, reported(config):
        mutation = client.get_mutation(mutation_id)
    echo_json(mutation.to_dict())
