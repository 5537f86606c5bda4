"""`pullbridge admin keys create|revoke` (and the hidden `pullbridge keys` alias) against fake boto3
clients: what the admin function is sent, what is printed, and the exit code of each failure."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from click.testing import CliRunner, Result

from pullbridge_client import admin as admin_module
from pullbridge_client import cli_admin
from pullbridge_client.admin import Admin, AdminError, AdminRefused
from pullbridge_client.cli import cli
from pullbridge_client.cli_common import AwsClients

FUNCTION = "pullbridge-AdminFunction-1a2b3c"
API_KEY = "pk_live_0123456789abcdefghij"


class FakeLambda:
    """Lambda's `invoke`: records each call and answers with the next scripted payload."""

    def __init__(self, *answers: Any, function_error: str | None = None) -> None:
        self.answers = list(answers)
        self.function_error = function_error
        self.calls: list[dict[str, Any]] = []
        self.failure: Exception | None = None

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        self.calls.append({"function": FunctionName, "type": InvocationType, "payload": json.loads(Payload)})
        if self.failure is not None:
            raise self.failure
        answer = self.answers.pop(0)
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(body)}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response

    @property
    def payloads(self) -> list[Any]:
        return [call["payload"] for call in self.calls]


class FakeCloudFormation:
    """CloudFormation's `describe_stacks`, for one stack with the given outputs."""

    def __init__(self, outputs: dict[str, str] | None = None) -> None:
        self.outputs = {"AdminFunctionName": FUNCTION} if outputs is None else outputs
        self.asked: list[str] = []
        self.failure: Exception | None = None

    def describe_stacks(self, *, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        if self.failure is not None:
            raise self.failure
        outputs = [{"OutputKey": key, "OutputValue": value} for key, value in self.outputs.items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


def _run(lambda_client: FakeLambda, cloudformation: FakeCloudFormation | None, *args: str) -> Result:
    clients = AwsClients(
        lambda_client=lambda_client, cloudformation_client=cloudformation or FakeCloudFormation()
    )
    return CliRunner().invoke(cli, list(args), obj=clients, catch_exceptions=False)


def _refusal(error_type: str, message: str, key: str = "the_key") -> dict[str, Any]:
    return {"error": {"type": error_type, "key": key, "message": message, "data": {}}}


def _access_denied(operation: str) -> ClientError:
    error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed\nat all"}}
    return ClientError(error, operation)  # type: ignore[arg-type]


# --- create ----------------------------------------------------------------------------------------


def test_create_invokes_the_stacks_admin_function_and_prints_the_key_last() -> None:
    # Given a stack whose output names the admin function, which makes a key
    lambda_client = FakeLambda({"tenant": "acme", "api_key": API_KEY})
    cloudformation = FakeCloudFormation()

    # When
    result = _run(
        lambda_client, cloudformation, "admin", "keys", "create", "--tenant", "acme", "--stack-name", "prod"
    )

    # Then
    assert result.exit_code == 0, result.output
    assert result.stdout == f"tenant acme: API key (shown once, stored only as a hash)\n{API_KEY}\n"
    assert result.stdout.splitlines()[-1] == API_KEY
    assert cloudformation.asked == ["prod"]
    assert lambda_client.calls == [
        {
            "function": FUNCTION,
            "type": "RequestResponse",
            "payload": {"action": "keys.create", "tenant": "acme", "name": "default"},
        }
    ]


def test_create_sends_the_keys_name_and_looks_up_the_default_stack() -> None:
    lambda_client = FakeLambda({"tenant": "acme", "api_key": API_KEY})
    cloudformation = FakeCloudFormation()

    result = _run(
        lambda_client, cloudformation, "admin", "keys", "create", "--tenant", "acme", "--name", "ci"
    )

    assert result.exit_code == 0, result.output
    assert cloudformation.asked == ["pullbridge"]
    assert lambda_client.payloads == [{"action": "keys.create", "tenant": "acme", "name": "ci"}]


def test_a_function_name_skips_the_stack_lookup() -> None:
    lambda_client = FakeLambda({"tenant": "acme", "api_key": API_KEY})
    cloudformation = FakeCloudFormation()

    result = _run(
        lambda_client,
        cloudformation,
        "admin",
        "keys",
        "create",
        "--tenant",
        "acme",
        "--function-name",
        "AdminFunction",
    )

    assert result.exit_code == 0, result.output
    assert cloudformation.asked == []
    assert lambda_client.calls[0]["function"] == "AdminFunction"


def test_a_stack_name_and_a_function_name_together_are_a_usage_error() -> None:
    lambda_client = FakeLambda()

    result = _run(
        lambda_client,
        None,
        "admin",
        "keys",
        "create",
        "--tenant",
        "a",
        "--stack-name",
        "s",
        "--function-name",
        "f",
    )

    assert result.exit_code == 2
    assert result.stderr == "Error: pass --stack-name or --function-name, not both\n"
    assert lambda_client.calls == []


def test_the_cli_and_the_admin_module_default_to_the_same_stack() -> None:
    assert cli_admin.DEFAULT_STACK_NAME == admin_module.DEFAULT_STACK_NAME


def test_create_requires_a_tenant() -> None:
    result = _run(FakeLambda(), None, "admin", "keys", "create")

    assert result.exit_code == 2
    assert "--tenant" in result.stderr


# --- revoke ----------------------------------------------------------------------------------------


def test_revoke_sends_the_key_and_names_its_tenant() -> None:
    lambda_client = FakeLambda({"tenant": "acme"})
    key_hash = "a" * 64

    result = _run(lambda_client, None, "admin", "keys", "revoke", key_hash)

    assert result.exit_code == 0, result.output
    assert result.stdout == "revoked an API key of tenant acme\n"
    assert lambda_client.payloads == [{"action": "keys.revoke", "key": key_hash}]


# --- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "exit_code"),
    [
        ("conflict", 5),
        ("not_found", 4),
        ("bad_request", 2),
        ("unprocessable", 2),
        ("internal", 1),
        ("new_kind", 1),
    ],
)
def test_a_refusal_prints_its_message_and_exits_with_its_kinds_code(error_type: str, exit_code: int) -> None:
    lambda_client = FakeLambda(_refusal(error_type, "no such API key"))

    result = _run(lambda_client, None, "admin", "keys", "revoke", "pk_unknown_key_000000000000")

    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert result.stderr == "Error: no such API key\n"


def test_a_refusal_is_raised_with_the_error_object() -> None:
    admin = Admin(
        function_name=FUNCTION,
        lambda_client=FakeLambda(_refusal("bad_request", "tenant: too long", "tenant")),
    )

    with pytest.raises(AdminRefused) as refused:
        admin.create_key("x" * 500)

    assert (refused.value.error_type, refused.value.key, refused.value.message) == (
        "bad_request",
        "tenant",
        "tenant: too long",
    )


def test_a_function_error_is_one_line_and_exit_code_1() -> None:
    crash = {"errorType": "KeyError", "errorMessage": "'tenant'", "stackTrace": ["  File ...\n"]}
    lambda_client = FakeLambda(crash, function_error="Unhandled")

    result = _run(lambda_client, None, "admin", "keys", "create", "--tenant", "acme")

    assert result.exit_code == 1
    assert result.stderr == f"Error: the admin function {FUNCTION} failed: KeyError: 'tenant'\n"


def test_a_stack_without_the_output_is_one_line_and_exit_code_1() -> None:
    lambda_client = FakeLambda()
    cloudformation = FakeCloudFormation({"ApiUrl": "https://example.test/"})

    result = _run(lambda_client, cloudformation, "admin", "keys", "create", "--tenant", "acme")

    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: stack pullbridge has no output AdminFunctionName")
    assert lambda_client.calls == []


@pytest.mark.parametrize("where", ["cloudformation", "lambda"])
def test_aws_errors_are_one_line_and_exit_code_1(where: str) -> None:
    lambda_client = FakeLambda({"tenant": "acme"})
    cloudformation = FakeCloudFormation()
    if where == "cloudformation":
        cloudformation.failure = _access_denied("DescribeStacks")
    else:
        lambda_client.failure = NoCredentialsError()

    result = _run(lambda_client, cloudformation, "admin", "keys", "revoke", "pk_x")

    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    assert ("AccessDenied" in line) if where == "cloudformation" else ("credentials" in line)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "answer",
    [b"not json", [1, 2], {"tenant": "acme"}, {"error": "refused"}, {"api_key": 7}],
)
def test_an_answer_that_is_not_the_functions_shape_is_an_admin_error(answer: Any) -> None:
    admin = Admin(function_name=FUNCTION, lambda_client=FakeLambda(answer))

    with pytest.raises(AdminError) as raised:
        admin.create_key("acme")

    assert not isinstance(raised.value, AdminRefused)
    assert "\n" not in str(raised.value)


def test_without_boto3_the_admin_commands_say_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.delitem(sys.modules, "pullbridge_client.admin")

    result = _run(FakeLambda(), None, "admin", "keys", "create", "--tenant", "acme")

    assert result.exit_code == 1
    assert "pullbridge-client[admin]" in result.stderr


# --- the hidden alias ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "answer"),
    [
        (
            ["keys", "create", "--tenant", "acme", "--name", "n", "--stack-name", "prod"],
            {"tenant": "acme", "api_key": API_KEY},
        ),
        (["keys", "revoke", API_KEY, "--function-name", FUNCTION], {"tenant": "acme"}),
        (["keys", "revoke", API_KEY], _refusal("not_found", "no such API key")),
        (["keys", "create", "--tenant", "acme"], _refusal("conflict", "the tenant is archived")),
    ],
)
def test_pullbridge_keys_is_the_same_as_pullbridge_admin_keys(arguments: list[str], answer: Any) -> None:
    alias_lambda, admin_lambda = FakeLambda(answer), FakeLambda(answer)
    alias_cloudformation, admin_cloudformation = FakeCloudFormation(), FakeCloudFormation()

    alias = _run(alias_lambda, alias_cloudformation, *arguments)
    admin = _run(admin_lambda, admin_cloudformation, "admin", *arguments)

    assert (alias.exit_code, alias.stdout, alias.stderr) == (admin.exit_code, admin.stdout, admin.stderr)
    assert alias_lambda.calls == admin_lambda.calls
    assert alias_cloudformation.asked == admin_cloudformation.asked


def test_the_alias_is_hidden_from_the_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    commands = result.stdout.split("Commands:")[1].split("Exit codes:")[0]
    assert "admin" in commands
    assert "keys" not in commands
