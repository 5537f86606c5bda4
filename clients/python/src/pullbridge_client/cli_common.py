"""What every `pullbridge` command shares: the exit codes, one-line failures, and the configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from pullbridge_client.client import Client

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
  2    usage: bad options, or a request the API refused as invalid (400)
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
