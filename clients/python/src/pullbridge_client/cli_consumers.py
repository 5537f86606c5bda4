"""`pullbridge consumers ...`: create, list, look at and delete consumers, their dead letters, and `tail`
(receive, print and ack a consumer's events until Ctrl-C).

Every command takes the consumer's name or its id (`cns_...`). Failures are one line with the exit codes
of cli_common.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

import click

from pullbridge_client.cli_common import (
    EPILOG,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    HANDLED,
    CommandFailed,
    Config,
    UsageFailed,
    echo_json,
    event_line,
    failure_of,
    reported,
)
from pullbridge_client.client import Client
from pullbridge_client.consumer_models import Consumer, DeadLetter, Delivery
from pullbridge_client.consumers import MAX_ACK_IDS, Unlimited

__all__ = ["consumers"]

TAIL_WAIT_SECONDS = 20


def _max_deliveries(
    _: click.Context, parameter: click.Parameter, value: str | None
) -> int | Unlimited | None:
    """`--max-deliveries`: a number of deliveries (1-1,000), or `none` for no limit."""
    if value is None:
        return None
    text = value.strip().lower()
    if text == "none":
        return "unlimited"
    if text.isdigit() and 1 <= int(text) <= 1000:
        return int(text)
    raise click.BadParameter(f"{value!r} is not a number of deliveries (1-1000) or 'none'", param=parameter)


@click.group(epilog=EPILOG)
def consumers() -> None:
    """Consumers: named positions in the log shared by many workers, with acks and dead letters."""


def _show(as_json: bool, value: dict[str, Any], line: str) -> None:
    if as_json:
        echo_json(value)
    else:
        click.echo(line)


def _filters(filters: Any) -> str:
    return " ".join(f"{key}={value}" for key, value in filters.items() if value is not None) or "-"


def consumer_line(consumer: Consumer) -> str:
    """id, name, then the counts: pending, ack pending, waiting, dead, and the lag."""
    return "  ".join(
        (
            consumer.id,
            consumer.name,
            f"pending={consumer.num_pending}",
            f"ack_pending={consumer.num_ack_pending}",
            f"waiting={consumer.num_waiting}",
            f"dead={consumer.num_dead}",
            f"lag={consumer.lag_seconds:g}s",
        )
    )


def _consumer_table(consumer: Consumer) -> str:
    rows = {
        "id": consumer.id,
        "name": consumer.name,
        "filters": _filters(consumer.filters),
        "ordering": consumer.ordering,
        "ack_wait_seconds": consumer.ack_wait_seconds,
        "max_deliveries": "none" if consumer.max_deliveries is None else consumer.max_deliveries,
        "max_ack_pending": consumer.max_ack_pending,
        "num_pending": consumer.num_pending,
        "num_ack_pending": consumer.num_ack_pending,
        "num_waiting": consumer.num_waiting,
        "num_dead": consumer.num_dead,
        "lag_seconds": f"{consumer.lag_seconds:g}",
        "created_at": consumer.created_at,
        "updated_at": consumer.updated_at,
    }
    width = max(len(key) for key in rows)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in rows.items())


def dead_letter_line(dead: DeadLetter) -> str:
    """dead_at, event id, delivery count, reason, and the event's type and record id (or -)."""
    event = dead.event
    return "  ".join(
        (
            dead.dead_at,
            dead.event_id,
            f"deliveries={dead.delivery_count}",
            dead.reason or "-",
            event.type if event else "-",
            (event.record_id or "-") if event else "-",
        )
    )


@consumers.command("create", epilog=EPILOG)
@click.argument("name")
@click.option("--filter-connection", "connection_id", metavar="ID", help="Only this connection's events.")
@click.option("--filter-provider", "provider", metavar="P", help="Only this provider's events.")
@click.option("--filter-collection", "collection", metavar="C", help="Only this collection's events.")
@click.option("--filter-type", "event_type", metavar="T", help="Only events of this type.")
@click.option(
    "--filter-source",
    "source",
    type=click.Choice(["webhook", "pull", "mutation"]),
    help="Only webhook, pull or mutation events.",
)
@click.option(
    "--start", type=click.Choice(["all", "new"]), help="From the log's start (all) or its end (new) [all]."
)
@click.option(
    "--ack-wait",
    "ack_wait_seconds",
    type=click.IntRange(1, 43_200),
    metavar="N",
    help="Seconds a delivery is leased before it goes out again [30].",
)
@click.option(
    "--max-deliveries",
    metavar="N|none",
    callback=_max_deliveries,
    help="Deliveries without an ack before an event becomes a dead letter; none: no limit [10].",
)
@click.option(
    "--max-ack-pending",
    type=click.IntRange(1, 10_000),
    metavar="N",
    help="Most events leased or waiting to be delivered again at once [1000].",
)
@click.option(
    "--ordering",
    type=click.Choice(["record", "none"]),
    help="record: one event of a record at a time, in log order; none: any order [record].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the consumer as JSON.")
@click.pass_obj
def consumers_create(
    config: Config,
    name: str,
    connection_id: str | None,
    provider: str | None,
    collection: str | None,
    event_type: str | None,
    source: str | None,
    start: Literal["all", "new"] | None,
    ack_wait_seconds: int | None,
    max_deliveries: int | Unlimited | None,
    max_ack_pending: int | None,
    ordering: Literal["record", "none"] | None,
    as_json: bool,
) -> None:
    """Create consumer NAME (a-z 0-9 - _, unique; exit code 5 if taken) and print it: id, name, pending,
    ack pending, waiting, dead, lag."""
    with config.client() as client, reported(config):
        consumer = client.create_consumer(
            name,
            connection_id=connection_id,
            provider=provider,
            collection=collection,
            type=event_type,
            source=source,
            start=start,
            ack_wait_seconds=ack_wait_seconds,
            max_deliveries=max_deliveries,
            max_ack_pending=max_ack_pending,
            ordering=ordering,
        )
    _show(as_json, consumer.to_dict(), consumer_line(consumer))


@consumers.command("list", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def consumers_list(config: Config, as_json: bool) -> None:
    """List the consumers, newest first: id, name, pending, ack pending, waiting, dead, lag."""
    with config.client() as client, reported(config):
        for consumer in client.iter_consumers():
            _show(as_json, consumer.to_dict(), consumer_line(consumer))


@consumers.command("get", epilog=EPILOG)
@click.argument("consumer")
@click.option("--json", "as_json", is_flag=True, help="Print the consumer as JSON.")
@click.pass_obj
def consumers_get(config: Config, consumer: str, as_json: bool) -> None:
    """Show CONSUMER (a name or an id): its filters, limits and counts, one per line."""
    with config.client() as client, reported(config):
        found = client.get_consumer(consumer)
    _show(as_json, found.to_dict(), _consumer_table(found))


@consumers.command("delete", epilog=EPILOG)
@click.argument("consumer")
@click.pass_obj
def consumers_delete(config: Config, consumer: str) -> None:
    """Delete CONSUMER, its leases and its dead letters."""
    with config.client() as client, reported(config):
        client.delete_consumer(consumer)
    click.echo(f"deleted consumer {consumer}")


@consumers.command("dead-letters", epilog=EPILOG)
@click.argument("consumer")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def consumers_dead_letters(config: Config, consumer: str, limit: int, as_json: bool) -> None:
    """List CONSUMER's dead letters, oldest event first: when it died, event id, delivery count,
    reason, event type, record id."""
    with config.client() as client, reported(config):
        for count, dead in enumerate(client.iter_dead_letters(consumer, limit=min(limit, 500)), start=1):
            _show(as_json, dead.to_dict(), dead_letter_line(dead))
            if count >= limit:
                break


@consumers.command("redrive", epilog=EPILOG)
@click.argument("consumer")
@click.option("--event-id", "event_ids", multiple=True, metavar="ID", help="A dead letter (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@click.option("--json", "as_json", is_flag=True, help='Print {"redriven", "remaining"} as JSON.')
@click.pass_obj
def consumers_redrive(
    config: Config, consumer: str, event_ids: tuple[str, ...], everything: bool, as_json: bool
) -> None:
    """Put dead letters back into rotation, as new deliveries: --event-id ID ... or --all.

    At most as many as the consumer has room for in flight (max_ack_pending) go back; the rest stay dead
    (`remaining`): run it again once workers have acked.
    """
    if bool(event_ids) == everything:
        raise UsageFailed("pass --event-id ID (repeatable) or --all")
    redriven, remaining = 0, 0
    with config.client() as client, reported(config):
        if everything:
            while True:  # each call is bounded by the room in flight; stop once one moves nothing
                result = client.redrive(consumer, all=True)
                redriven, remaining = redriven + result.redriven, result.remaining
                if not result.redriven or not remaining:
                    break
        else:
            for at in range(0, len(event_ids), MAX_ACK_IDS):
                result = client.redrive(consumer, event_ids[at : at + MAX_ACK_IDS])
                redriven, remaining = redriven + result.redriven, result.remaining
    if as_json:
        echo_json({"redriven": redriven, "remaining": remaining})
    else:
        click.echo(f"redriven {redriven}, still dead {remaining}")


@consumers.command("discard", epilog=EPILOG)
@click.argument("consumer")
@click.argument("event_id")
@click.pass_obj
def consumers_discard(config: Config, consumer: str, event_id: str) -> None:
    """Delete CONSUMER's dead letter EVENT_ID for good (exit code 4 if there is none)."""
    with config.client() as client, reported(config):
        client.discard_dead_letter(consumer, event_id)
    click.echo(f"discarded dead letter {event_id}")


@consumers.command("tail", epilog=EPILOG)
@click.argument("consumer")
@click.option(
    "--batch", type=click.IntRange(1, 1000), default=10, show_default=True, help="Events per receive."
)
@click.option(
    "--max-events", type=click.IntRange(1), metavar="N", help="Exit after N events (default: Ctrl-C)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def consumers_tail(config: Config, consumer: str, batch: int, max_events: int | None, as_json: bool) -> None:
    """Receive CONSUMER's events, print each and ack it, until Ctrl-C (exit code 130) or --max-events.

    One line per event, as `events tail` prints it: received time, type, id, connection, record id (or
    the event as JSON with --json). The events are acked once printed, so another worker of the
    consumer does not get them; on Ctrl-C those received but not printed are given back at once.
    """
    client = config.client()
    unprinted: list[Delivery] = []
    printed: list[Delivery] = []
    count = 0
    exit_code = 0
    failure: CommandFailed | None = None
    try:
        while max_events is None or count < max_events:
            wanted = batch if max_events is None else min(batch, max_events - count)
            unprinted = client.receive(consumer, max_batch_size=wanted, wait=TAIL_WAIT_SECONDS)
            while unprinted:
                delivery = unprinted[0]
                _show(as_json, delivery.event.to_dict(), event_line(delivery.event))
                printed.append(unprinted.pop(0))
            if printed:
                client.ack(consumer, printed)
                count += len(printed)
                printed = []
    except KeyboardInterrupt:
        exit_code = EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `| head`: the reader is gone; what it read is what was printed
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (so the interpreter's final flush is silent)
        exit_code = EXIT_ERROR
    except HANDLED as exc:
        failure = failure_of(exc, config.url)
        exit_code = failure.exit_code
    finally:
        _settle_quietly(client, consumer, printed, unprinted)
        client.close()
    if failure is not None:
        failure.show()
    if exit_code:
        raise click.exceptions.Exit(exit_code)


def _settle_quietly(
    client: Client, consumer: str, printed: list[Delivery], unprinted: list[Delivery]
) -> None:
    """On the way out: ack what was printed, give back what was not. Best effort: what fails here is
    delivered again once its lease runs out."""
    try:
        if printed:
            client.ack(consumer, printed)
        if unprinted:
            client.nack(consumer, unprinted)
    except (*HANDLED, KeyboardInterrupt):
        pass
