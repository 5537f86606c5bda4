"""API keys of a deployed stack, made by its admin Lambda function with your own AWS credentials.

    admin = Admin(stack_name="pullbridge")              # extra `[admin]`: boto3
    api_key = admin.create_key("acme", name="default")  # printed once; the stack stores only its hash
    admin.revoke_key(api_key)                           # or its SHA-256 hex; returns the tenant

The function is invoked synchronously (`lambda:InvokeFunction`). Its name is given, or read from the
stack's `AdminFunctionName` output (`cloudformation:DescribeStacks`). `AWS_ENDPOINT_URL_LAMBDA` points
boto3 at the local stack (`make dev`), which serves Lambda's Invoke API too.

The function answers `{"tenant", "api_key"}` or `{"tenant"}`, or refuses with the API's error object
(`{"error": {"type", "message", "key", "data"}}`), raised here as `AdminRefused`. Everything else that can
go wrong (no credentials, no stack, AccessDenied, the function failing) is an `AdminError`, in one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, cast

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pullbridge_client.errors import ErrorObject, PullbridgeClientError

__all__ = [
    "DEFAULT_STACK_NAME",
    "FUNCTION_NAME_OUTPUT",
    "Admin",
    "AdminError",
    "AdminRefused",
    "CloudFormationClient",
    "LambdaClient",
]

DEFAULT_STACK_NAME = "pullbridge"
FUNCTION_NAME_OUTPUT = "AdminFunctionName"


class LambdaClient(Protocol):
    """What is used of boto3's Lambda client."""

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> Mapping[str, Any]: ...


class CloudFormationClient(Protocol):
    """What is used of boto3's CloudFormation client."""

    def describe_stacks(self, *, StackName: str) -> Mapping[str, Any]: ...


class AdminError(PullbridgeClientError):
    """Why the admin function gave no answer, in one line (AWS credentials, the stack, the function)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class AdminRefused(AdminError):
    """The admin function refused, with the API's error object (e.g. `not_found` for an unknown key)."""

    def __init__(self, error: ErrorObject) -> None:
        super().__init__(error.message or error.type)
        self.error_type = error.type
        self.message = error.message
        self.key = error.key
        self.data = dict(error.data)


class Admin:
    """The stack's admin function. boto3 clients are made from your AWS configuration unless given."""

    def __init__(
        self,
        *,
        function_name: str | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        lambda_client: LambdaClient | None = None,
        cloudformation_client: CloudFormationClient | None = None,
    ) -> None:
        self.stack_name = stack_name
        self._function_name = function_name
        self._lambda = lambda_client
        self._cloudformation = cloudformation_client

    def create_key(self, tenant: str, *, name: str = "default") -> str:
        """Creates the tenant (if new) and a new API key for it; returns the key, which is stored hashed."""
        answer = self._invoke({"action": "keys.create", "tenant": tenant, "name": name})
        return _text(answer, "api_key")

    def revoke_key(self, key_or_sha256: str) -> str:
        """Revokes a key, given itself or its SHA-256 hex, at once; returns its tenant."""
        return _text(self._invoke({"action": "keys.revoke", "key": key_or_sha256}), "tenant")

    def function_name(self) -> str:
        """The admin function's name: as given, or the stack's `AdminFunctionName` output."""
        if self._function_name is None:
            self._function_name = self._function_from_stack()
        return self._function_name

    def _function_from_stack(self) -> str:
        with _one_line():
            stacks = self._cloudformation_client().describe_stacks(StackName=self.stack_name)["Stacks"]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
        name = outputs.get(FUNCTION_NAME_OUTPUT)
        if not isinstance(name, str) or not name:
            raise AdminError(
                f"stack {self.stack_name} has no output {FUNCTION_NAME_OUTPUT}: is it pullbridge, "
                "deployed with its admin function? (or pass --function-name)"
            )
        return name

    def _invoke(self, payload: Mapping[str, str]) -> dict[str, Any]:
        function = self.function_name()
        with _one_line():
            response = self._lambda_client().invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
            body = response["Payload"].read()
        if response.get("FunctionError"):
            raise AdminError(f"the admin function {function} failed: {_lambda_error(body)}")
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise AdminError(f"the admin function {function} answered something that is not a JSON object")
        if "error" in answer:
            error = ErrorObject.from_json(answer["error"])
            if error is None:
                raise AdminError(f"the admin function {function} answered a malformed error")
            raise AdminRefused(error)
        return answer

    def _lambda_client(self) -> LambdaClient:
        if self._lambda is None:
            with _one_line():
                self._lambda = cast("LambdaClient", boto3.client("lambda"))
        return self._lambda

    def _cloudformation_client(self) -> CloudFormationClient:
        if self._cloudformation is None:
            with _one_line():
                self._cloudformation = cast("CloudFormationClient", boto3.client("cloudformation"))
        return self._cloudformation


@contextmanager
def _one_line() -> Iterator[None]:
    """Turns boto errors (credentials, no stack, AccessDenied, the network) into one AdminError line."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise AdminError(str(exc)) from exc


def _lambda_error(body: bytes) -> str:
    """Lambda's error answer, `{"errorType", "errorMessage", ...}`, as `type: message`."""
    try:
        detail = json.loads(body)
    except ValueError:
        detail = None
    if isinstance(detail, dict) and detail.get("errorMessage"):
        return f"{detail.get('errorType') or 'Error'}: {detail['errorMessage']}"
    return "no error message"


def _text(answer: Mapping[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise AdminError(f"the admin function's answer has no {name!r}")
    return value
