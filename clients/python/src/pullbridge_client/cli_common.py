"""What every `pullbridge` command shares: the exit codes, one-line failures, the configuration, and the
ways events and JSON are printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click
import httpx

from pullbridge_client.client import Client
from pullbridge_client.errors import PullbridgeAPIError, ResumeError
from pullbridge_client.models import Event

if TYPE_CHECKING:
    from pullbridge_client.admin import CloudFormationClient, LambdaClient

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_INTERRUPTED = 130

EPILOG = """\b
Exit codes:
  0    success
  1    any other error: server error, network, rate limit, expired cursor (410), AWS
  2    usage: bad options, or a request the API or the provider refused as invalid (400, 422)
  3    authentication: missing or wrong API key (401)
  4    not found (404)
  5    conflict (409), e.g. a pull already running
  130  interrupted (Ctrl-C)
"""


class CommandFailed(click.ClickException):
    """A one-line `Error: ...` on stderr and exit code 1; never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class UsageFailed(CommandFailed):
    exit_code = EXIT_USAGE


class AuthFailed(CommandFailed):
    exit_code = EXIT_AUTH


class NotFoundFailed(CommandFailed):
    exit_code = EXIT_NOT_FOUND


class ConflictFailed(CommandFailed):
    exit_code = EXIT_CONFLICT


FAILURE_OF_STATUS: dict[int, type[CommandFailed]] = {
    400: UsageFailed,
    422: UsageFailed,
    401: AuthFailed,
    403: AuthFailed,
    404: NotFoundFailed,
    409: ConflictFailed,
}
FAILURE_OF_ERROR_TYPE: dict[str, type[CommandFailed]] = {
    "bad_request": UsageFailed,
    "unprocessable": UsageFailed,
    "not_found": NotFoundFailed,
    "conflict": ConflictFailed,
}
"""For answers without an HTTP status (the admin function's refusals): by the error object's type."""


@dataclass(frozen=True)
class AwsClients:
    """boto3 clients for the admin commands; None: made from your AWS configuration when needed.

    Tests pass fakes: `CliRunner().invoke(cli, args, obj=AwsClients(lambda_client=...))`.
    """

    lambda_client: LambdaClient | None = None
    cloudformation_client: CloudFormationClient | None = None


@dataclass
class Config:
    """The global options, as `click.pass_obj` hands them to each command."""

    url: str
    api_key: str | None
    aws: AwsClients = field(default_factory=AwsClients)

    def client(self) -> Client:
        if not self.api_key:
            raise click.UsageError("no API key: pass --api-key or set PULLBRIDGE_API_KEY")
        # Fewer retries than the library's default: a person is waiting (about 3 s at most).
        return Client(self.url, self.api_key, max_retries=3)


def failure_of(exc: Exception, url: str) -> CommandFailed:
    """What a command shows for a failed call: one line, with the exit code of its kind."""
    if isinstance(exc, PullbridgeAPIError):
        message = f"{exc.message} ({exc.error_type}, HTTP {exc.status_code})"
        if exc.status_code in (401, 403):
            message += ": check --api-key / PULLBRIDGE_API_KEY"
        pull_id = exc.data.get("pull_id")
        if isinstance(pull_id, str) and pull_id not in message:
            message += f": pull {pull_id}"
        mutation_id = exc.mutation_id
        if mutation_id is not None and mutation_id not in message:
            applied = " may have been applied" if exc.status_code >= 500 else ""
            message += f": mutation {mutation_id}{applied} (pullbridge mutations get {mutation_id})"
        request_id = exc.data.get("request_id")
        if isinstance(request_id, str) and request_id not in message:
            message += f": provider request id {request_id}"
        return FAILURE_OF_STATUS.get(exc.status_code, CommandFailed)(message)
    if isinstance(exc, ResumeError):
        return UsageFailed(f"--cursor: {exc}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return UsageFailed(f"invalid --url {url!r}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return CommandFailed(f"{url} did not answer in time ({type(exc).__name__})")
    return CommandFailed(f"cannot reach {url}: {exc or type(exc).__name__}")


HANDLED = (PullbridgeAPIError, ResumeError, httpx.HTTPError, httpx.InvalidURL)
"""What `failure_of` turns into a one-line failure; anything else is a bug, shown with its traceback."""


@contextmanager
def reported(config: Config) -> Iterator[None]:
    try:
        yield
    except HANDLED as exc:
        raise failure_of(exc, config.url) from None


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def event_line(event: Event) -> str:
    """An event on one line: received time, type, id, connection, record id (or -)."""
    return "  ".join((event.received_at, event.type, event.id, event.connection_id, event.record_id or "-"))
