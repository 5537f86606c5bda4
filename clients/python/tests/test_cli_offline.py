"""The `pullbridge` command where no stack is needed: its help, its version, and `dev` outside a clone.
(The commands that talk to the API run against the real local stack in the repository's
tests/e2e/test_cli.py.)"""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

import pullbridge_client
from pullbridge_client.cli import cli


def test_the_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout
    assert "3    authentication" in result.stdout


def test_the_version_is_the_packages() -> None:
    result = CliRunner().invoke(cli, ["--version"])

    assert result.stdout == f"pullbridge, version {pullbridge_client.__version__}\n"


def test_dev_outside_a_clone_says_where_the_local_stack_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an install without the repository's local stack
    monkeypatch.setitem(sys.modules, "pullbridge_local.dev", None)

    # When
    result = CliRunner().invoke(cli, ["dev"])

    # Then
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    assert "make dev" in line


def test_a_command_without_an_api_key_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["connections", "list"], env={"PULLBRIDGE_API_KEY": ""})

    assert result.exit_code == 2
    assert "PULLBRIDGE_API_KEY" in result.stderr


def test_the_script_without_the_cli_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an install without click: a None entry makes `import click` fail as if it were absent
    from pullbridge_client.__main__ import main

    monkeypatch.setitem(sys.modules, "click", None)
    monkeypatch.delitem(sys.modules, "pullbridge_client.cli", raising=False)

    # When
    with pytest.raises(SystemExit) as exited:
        main()

    # Then
    assert exited.value.code == 1
    assert "pip install 'pullbridge-client[cli]'" in capsys.readouterr().err


def test_the_consumers_group_lists_its_commands() -> None:
    result = CliRunner().invoke(cli, ["consumers", "--help"])

    assert result.exit_code == 0
    for command in ("create", "list", "get", "delete", "tail", "dead-letters", "redrive", "discard"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize("value", ["0", "1001", "many", "-1"])
def test_max_deliveries_is_a_number_or_none(value: str) -> None:
    result = CliRunner().invoke(
        cli, ["consumers", "create", "billing", "--max-deliveries", value], env={"PULLBRIDGE_API_KEY": "k"}
    )

    assert result.exit_code == 2
    assert "'none'" in result.stderr


@pytest.mark.parametrize("options", [[], ["--all", "--event-id", "evt_1"]])
def test_redrive_needs_event_ids_or_all(options: list[str]) -> None:
    result = CliRunner().invoke(
        cli, ["consumers", "redrive", "billing", *options], env={"PULLBRIDGE_API_KEY": "k"}
    )

    assert result.exit_code == 2
    assert "--event-id" in result.stderr
