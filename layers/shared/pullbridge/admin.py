"""Operator actions: what the admin function does when an operator invokes it with AWS credentials.

The admin function has no HTTP route. `pullbridge admin keys create|revoke` (the client package's CLI)
invokes it with `lambda:InvokeFunction`, so the operator's IAM identity is the authorisation, and the
key schema and hashing stay here, on the server, instead of in every operator's tool.

An action is a JSON object with an `action` field; the answer is its result, or the contract's error
object (`{"error": {"type", "message", "key", "data"}}`), never an exception, so the caller can tell a
refusal (a key of another tenant) from a failure of the function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pullbridge.auth import issue_api_key, revoke_api_key
from pullbridge.errors import PullbridgeError, ValidationFailed
from pullbridge.storage import Store


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateKey(_Action):
    """Create the tenant if it is new, and a new API key for it. The key is returned once, and stored
    only as its hash."""

    action: Literal["keys.create"]
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(default="default", min_length=1, max_length=100)


class RevokeKey(_Action):
    """Revoke a key, given the key itself or its SHA-256 hash (as `keys create` printed it)."""

    action: Literal["keys.revoke"]
    key: str = Field(min_length=20, max_length=200)


AdminAction = Annotated[CreateKey | RevokeKey, Field(discriminator="action")]
_actions: TypeAdapter[CreateKey | RevokeKey] = TypeAdapter(AdminAction)


def run_admin_action(store: Store, event: Mapping[str, Any]) -> dict[str, Any]:
    try:
        action = _actions.validate_python(event)
        if isinstance(action, CreateKey):
            return {"tenant": action.tenant, "api_key": issue_api_key(store, action.tenant, name=action.name)}
        return {"tenant": revoke_api_key(store, action.key)}
    except ValidationError as exc:
        return _invalid(exc).to_body()
    except PullbridgeError as error:
        return error.to_body()


def _invalid(exc: ValidationError) -> ValidationFailed:
    fields = [
        {"field": ".".join(str(part) for part in error["loc"]) or "action", "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return ValidationFailed(summary, data={"field": fields[0]["field"], "fields": fields})
