"""The deploy bootstrap: `python -m pullbridge_local.keys create --tenant T`."""

from __future__ import annotations

from typing import Any

import pytest

from pullbridge.auth import authenticate
from pullbridge.settings import Settings
from pullbridge.storage import Store
from pullbridge_local import keys


class FakeCloudFormation:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        outputs = {
            "EventsTableName": self.settings.events_table,
            "ControlTableName": self.settings.control_table,
        }
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


def test_create_finds_the_tables_from_the_stack_and_prints_a_working_key(
    settings: Settings, store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT", settings.dynamodb_endpoint or "")
    cloudformation = FakeCloudFormation(settings)
    assert (
        keys.main(["create", "--tenant", "acme", "--stack-name", "prod"], cloudformation=cloudformation) == 0
    )
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert cloudformation.asked == ["prod"]
    assert authenticate(store, f"Bearer {key}") == "acme"


def test_create_requires_a_tenant(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        keys.main(["create"])
    assert exited.value.code == 2
    assert "--tenant" in capsys.readouterr().err


def test_keys_revoke_stops_a_key_at_once(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pullbridge.errors import Unauthorized
    from pullbridge_local.cli import cli

    monkeypatch.setenv("DYNAMODB_ENDPOINT", settings.dynamodb_endpoint or "")
    tables = ["--events-table", settings.events_table, "--control-table", settings.control_table]
    created = CliRunner().invoke(cli, ["keys", "create", "--tenant", "acme", *tables])
    key = created.output.strip().splitlines()[-1]
    revoked = CliRunner().invoke(cli, ["keys", "revoke", key, *tables])
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(Unauthorized):
        authenticate(store, f"Bearer {key}")
    again = CliRunner().invoke(cli, ["keys", "revoke", "pb_unknown_key_000000000000", *tables])
    assert again.exit_code != 0
