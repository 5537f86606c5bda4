"""`pullbridge mutate` and `pullbridge mutations` against an in-memory API on httpx.MockTransport: the
arguments (`--data` inline, `@file`, `@-`), the refusals before any request, what is printed, and the
exit codes of failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fake_api import API_KEY, BASE_URL, FakeApi, _scripted
from mutation_payloads import error_json, mutation_json

from pullbridge_client import Client
from pullbridge_client.cli import cli
from pullbridge_client.cli_common import Config

Run = Callable[..., Result]


@pytest.fixture
def run(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Runs `pullbridge ARGS` with a client on the in-memory API, no waits between retries."""
    http = httpx.Client(transport=httpx.MockTransport(api))

    def client(config: Config) -> Client:
        assert config.api_key
        return Client(config.url, config.api_key, http=http, max_retries=3, sleep=lambda _: None)

    monkeypatch.setattr(Config, "client", client)

    def invoke(*args: str, input: str | None = None) -> Result:
        environment = {"PULLBRIDGE_URL": BASE_URL, "PULLBRIDGE_API_KEY": API_KEY}
        return CliRunner().invoke(cli, list(args), input=input, env=environment)

    return invoke


def _answer(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, json=body)


def _sent(api: FakeApi) -> list[Any]:
    return [json.loads(request.content) for request in api.requests if request.method == "POST"]


UPDATE = ("mutate", "update", "--connection", "conn_1", "--collection", "customers", "--id", "cus_1")


# --- mutate: --data ------------------------------------------------------------------------------------


def test_inline_data_is_sent_and_the_mutation_is_printed_as_json(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _answer(200, mutation_json())

    result = run(*UPDATE, "--data", '{"name": "Ada", "metadata": {"tier": "gold"}}')

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == mutation_json()
    assert _sent(api) == [
        {
            "connection_id": "conn_1",
            "collection": "customers",
            "kind": "update",
            "record_id": "cus_1",
            "data": {"name": "Ada", "metadata": {"tier": "gold"}},
        }
    ]


def test_data_from_a_file(api: FakeApi, run: Run, tmp_path: Path) -> None:
    api.routes["POST", "/mutations"] = _answer(200, mutation_json(kind="create"))
    change = tmp_path / "customer.json"
    change.write_text('{"name": "Zoë", "email": "z@x.test"}\n', encoding="utf-8")

    result = run(
        "mutate", "create", "--connection", "conn_1", "--collection", "customers", "--data", f"@{change}"
    )

    assert result.exit_code == 0, result.stderr
    assert _sent(api)[0]["data"] == {"name": "Zoë", "email": "z@x.test"}
    assert "record_id" not in _sent(api)[0]


def test_data_from_stdin(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _answer(200, mutation_json())

    result = run(*UPDATE, "--data", "@-", input='{"state": "closed"}')

    assert result.exit_code == 0, result.stderr
    assert _sent(api)[0]["data"] == {"state": "closed"}


def test_a_delete_takes_only_the_id(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _answer(200, mutation_json(kind="delete", record=None))

    result = run("mutate", "delete", "--connection", "conn_1", "--collection", "customers", "--id", "cus_1")

    assert result.exit_code == 0, result.stderr
    assert _sent(api) == [
        {"connection_id": "conn_1", "collection": "customers", "kind": "delete", "record_id": "cus_1"}
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{name: Ada}", "the value is not JSON"),
        ('["a", "b"]', "the value is an array, not a JSON object"),
        ('"Ada"', "the value is a string, not a JSON object"),
        ("null", "the value is null, not a JSON object"),
        ('{"amount": NaN}', "the value is not JSON"),
        ("@/no/such/file.json", "cannot read '/no/such/file.json'"),
    ],
)
def test_data_that_is_not_a_json_object_is_a_usage_error(
    api: FakeApi, run: Run, data: str, message: str
) -> None:
    result = run(*UPDATE, "--data", data)

    assert result.exit_code == 2
    assert "--data" in result.stderr
    assert message in result.stderr
    assert api.requests == []


def test_a_file_that_is_not_json_names_the_file(api: FakeApi, run: Run, tmp_path: Path) -> None:
    change = tmp_path / "change.json"
    change.write_text("name=Ada", encoding="utf-8")

    result = run(*UPDATE, "--data", f"@{change}")

    assert result.exit_code == 2
    assert f"{change} is not JSON" in result.stderr
    assert api.requests == []


def test_stdin_that_is_not_an_object_says_stdin(api: FakeApi, run: Run) -> None:
    result = run(*UPDATE, "--data", "@-", input="[1]")

    assert result.exit_code == 2
    assert "stdin is an array, not a JSON object" in result.stderr


# --- mutate: options each kind needs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["update", "--data", "{}"], "update needs --id"),
        (["delete"], "delete needs --id"),
        (["create", "--id", "cus_1", "--data", "{}"], "create takes no --id"),
        (["create"], "create needs --data"),
        (["update", "--id", "cus_1"], "update needs --data"),
        (["delete", "--id", "cus_1", "--data", "{}"], "delete takes no --data"),
        (["upsert", "--id", "cus_1"], "'upsert' is not one of"),
    ],
)
def test_options_the_kind_does_not_take_are_refused_before_any_request(
    api: FakeApi, run: Run, args: list[str], message: str
) -> None:
    result = run("mutate", *args, "--connection", "conn_1", "--collection", "customers")

    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert api.requests == []


@pytest.mark.parametrize("missing", ["--connection", "--collection"])
def test_the_connection_and_the_collection_are_required(api: FakeApi, run: Run, missing: str) -> None:
    options = {"--connection": "conn_1", "--collection": "customers"}
    del options[missing]

    result = run("mutate", "delete", "--id", "cus_1", *(item for pair in options.items() for item in pair))

    assert result.exit_code == 2
    assert missing in result.stderr
    assert api.requests == []


def test_an_idempotency_key_is_sent_as_given(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _answer(200, mutation_json())

    result = run(*UPDATE, "--data", "{}", "--idempotency-key", "order-7")

    assert result.exit_code == 0, result.stderr
    assert api.requests[0].headers["idempotency-key"] == "order-7"


# --- mutate: failures ----------------------------------------------------------------------------------


def test_an_unknown_outcome_names_the_mutation_and_the_key_to_retry_with(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _answer(
        504, error_json("timeout", "stripe did not answer in time", data={"mutation_id": "mut_0042"})
    )

    result = run(*UPDATE, "--data", '{"name": "Ada"}')

    assert result.exit_code == 1
    keys = {request.headers["idempotency-key"] for request in api.requests}
    assert len(api.requests) == 4  # the CLI's 3 retries, all under one key
    (key,) = keys
    error, hint = result.stderr.splitlines()
    assert error.startswith("Error: stripe did not answer in time (timeout, HTTP 504)")
    assert "mutation mut_0042 may have been applied (pullbridge mutations get mut_0042)" in error
    assert hint == f"retry safely with: --idempotency-key {key}"
    assert result.stdout == ""


def test_a_retry_with_the_printed_key_sends_it_again(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _scripted(
        *[httpx.Response(502, json=error_json("bad_gateway", "hubspot answered 500"))] * 4,
        httpx.Response(200, json=mutation_json()),
    )

    failed = run(*UPDATE, "--data", "{}")
    key = failed.stderr.splitlines()[-1].removeprefix("retry safely with: --idempotency-key ")
    retried = run(*UPDATE, "--data", "{}", "--idempotency-key", key)

    assert (failed.exit_code, retried.exit_code) == (1, 0)
    assert {request.headers["idempotency-key"] for request in api.requests} == {key}


def test_a_request_still_running_exits_5_with_the_key_to_retry_with(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _answer(
        409,
        error_json("conflict", "a request with this key is still in progress", "idempotency_key_in_progress"),
    )

    result = run(*UPDATE, "--data", "{}", "--idempotency-key", "order-7")

    assert result.exit_code == 5
    assert len(api.requests) == 4  # waited out with the CLI's retries first
    assert result.stderr.splitlines()[-1] == "retry safely with: --idempotency-key order-7"


def test_a_provider_refusal_exits_2_with_the_providers_request_id(api: FakeApi, run: Run) -> None:
    api.routes["POST", "/mutations"] = _answer(
        422,
        error_json(
            "unprocessable",
            "github refused the write: Validation Failed",
            data={
                "status_code": 422,
                "message": "Validation Failed",
                "request_id": "A1B2:C3D4",
                "mutation_id": "mut_0009",
            },
        ),
    )

    result = run(*UPDATE, "--data", '{"title": ""}')

    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line == (
        "Error: github refused the write: Validation Failed (unprocessable, HTTP 422): "
        "mutation mut_0009 (pullbridge mutations get mut_0009): provider request id A1B2:C3D4"
    )
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_type", "key", "code"),
    [
        (400, "bad_request", "k", 2),
        (404, "not_found", "k", 4),
        (409, "conflict", "idempotency_key_reused", 5),
    ],
)
def test_refusals_exit_with_their_code_and_no_retry_hint(
    api: FakeApi, run: Run, status: int, error_type: str, key: str, code: int
) -> None:
    api.routes["POST", "/mutations"] = _answer(status, error_json(error_type, "no", key))

    result = run(*UPDATE, "--data", "{}")

    assert result.exit_code == code
    assert "retry safely" not in result.stderr


# --- mutations list / get ------------------------------------------------------------------------------


def test_mutations_list_sends_the_filters_and_prints_a_line_each(api: FakeApi, run: Run) -> None:
    failed = mutation_json(
        1,
        status="failed",
        error={"type": "unprocessable", "message": "No such customer", "key": "k", "data": {}},
    )
    api.routes["GET", "/mutations"] = _answer(
        200, {"data": [mutation_json(2), failed], "next_cursor": "c_1", "has_more": False}
    )

    result = run("mutations", "list", "--connection", "conn_1", "--status", "failed")

    assert result.exit_code == 0, result.stderr
    assert dict(api.requests[0].url.params) == {"limit": "50", "connection_id": "conn_1", "status": "failed"}
    assert result.stdout.splitlines() == [
        "2026-01-01T00:00:00Z  succeeded  mut_0002  update  customers  cus_1",
        "2026-01-01T00:00:00Z  failed  mut_0001  update  customers  cus_1  unprocessable: No such customer",
    ]


def test_mutations_list_follows_pages_up_to_the_limit_as_json_lines(api: FakeApi, run: Run) -> None:
    pages = {
        None: {"data": [mutation_json(5), mutation_json(4)], "next_cursor": "c_2", "has_more": True},
        "c_2": {"data": [mutation_json(3), mutation_json(2)], "next_cursor": "c_4", "has_more": True},
    }
    api.routes["GET", "/mutations"] = lambda request: httpx.Response(
        200, json=pages[request.url.params.get("cursor")]
    )

    result = run("mutations", "list", "--limit", "3", "--json")

    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [
        "mut_0005",
        "mut_0004",
        "mut_0003",
    ]
    assert len(api.requests) == 2


def test_mutations_list_refuses_an_unknown_status(api: FakeApi, run: Run) -> None:
    result = run("mutations", "list", "--status", "done")

    assert result.exit_code == 2
    assert api.requests == []


def test_mutations_get_prints_the_mutation_as_json(api: FakeApi, run: Run) -> None:
    api.routes["GET", "/mutations/mut_0001"] = _answer(200, mutation_json())

    result = run("mutations", "get", "mut_0001")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == mutation_json()


def test_mutations_get_of_an_unknown_id_exits_4(api: FakeApi, run: Run) -> None:
    api.routes["GET", "/mutations/mut_x"] = _answer(404, error_json("not_found", "no such mutation"))

    result = run("mutations", "get", "mut_x")

    assert result.exit_code == 4
    assert result.stderr.startswith("Error: no such mutation (not_found, HTTP 404)")


def test_the_help_lists_the_mutation_commands() -> None:
    top = CliRunner().invoke(cli, ["--help"])
    group = CliRunner().invoke(cli, ["mutations", "--help"])
    mutate = CliRunner().invoke(cli, ["mutate", "--help"])

    assert "  mutate " in top.stdout
    assert "  mutations " in top.stdout
    assert "  list " in group.stdout
    assert "  get " in group.stdout
    assert "{create|update|delete}" in mutate.stdout
    assert "Exit codes:" in mutate.stdout
