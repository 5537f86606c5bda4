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
