"""Reads `template.yaml`, the single source of truth for the local stack's tables, routes and schedule.

Only what the local stack needs is interpreted: DynamoDB tables, the functions' code, handler, environment,
HttpApi routes and schedules. Intrinsic functions are resolved where a local value exists (a table's
name, a parameter's default) and dropped otherwise (a secret's ARN), so nothing deployed-only leaks in.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import yaml
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE_PATH = REPO_ROOT / "template.yaml"

_TABLE_TYPE = "AWS::DynamoDB::Table"
_FUNCTION_TYPE = "AWS::Serverless::Function"
_SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")
# CreateTable accepts these; the rest of a table's CloudFormation properties (TTL, PITR, SSE, tags) are
# deployment concerns that are either applied separately (TTL) or meaningless locally.
_CREATE_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
)
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
_RATE_UNITS_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE_PATTERN = re.compile(r"rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)")
_SUB_REFERENCE = re.compile(r"\$\{([^}!]+)\}")


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that also reads CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`, ...)."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # The short form `!GetAtt Table.Arn` is the long form's two-item list.
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


class HttpRoute(NamedTuple):
    method: str
    path: str


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    http_routes: tuple[HttpRoute, ...]
    schedules: tuple[int, ...]
    """Each schedule's rate, in seconds."""
    timeout_seconds: int
    memory_mb: int
    async_retry_attempts: int = 2
    """Lambda's retries of a failed asynchronous invocation: `EventInvokeConfig.MaximumRetryAttempts`."""


def load_template(path: Path | None = None) -> dict[str, Any]:
    with (path or DEFAULT_TEMPLATE_PATH).open(encoding="utf-8") as stream:
        template: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506
    return template


def _resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def table_definitions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """CreateTable arguments for each table, named after its logical id."""
    definitions = {}
    for logical_id, resource in _resources_of_type(template, _TABLE_TYPE).items():
        properties = resource.get("Properties", {})
        definition: dict[str, Any] = {"TableName": logical_id}
        definition.update({key: properties[key] for key in _CREATE_TABLE_KEYS if key in properties})
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if index_kind in definition:
                definition[index_kind] = [
                    {key: index[key] for key in _INDEX_KEYS if key in index}
                    for index in definition[index_kind]
                ]
        if "ProvisionedThroughput" not in definition:
            definition["BillingMode"] = "PAY_PER_REQUEST"
        definitions[logical_id] = definition
    return definitions


def _time_to_live_attribute(template: Mapping[str, Any], logical_id: str) -> str | None:
    specification = template["Resources"][logical_id].get("Properties", {}).get("TimeToLiveSpecification")
    if not specification or not specification.get("Enabled"):
        return None
    attribute: str = specification["AttributeName"]
    return attribute


def create_tables(client: DynamoDBClient, template: Mapping[str, Any], *, prefix: str = "") -> dict[str, str]:
    """Creates the template's tables that do not exist yet; answers each logical id's physical name."""
    existing = set(client.get_paginator("list_tables").paginate().build_full_result().get("TableNames", []))
    physical_names = {}
    for logical_id, definition in table_definitions(template).items():
        physical_name = f"{prefix}{logical_id}"
        physical_names[logical_id] = physical_name
        if physical_name in existing:
            continue
        client.create_table(**{**definition, "TableName": physical_name})
        client.get_waiter("table_exists").wait(
            TableName=physical_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        ttl_attribute = _time_to_live_attribute(template, logical_id)
        if ttl_attribute:
            # Some DynamoDB-compatible servers lack TTL; their items then simply never expire.
            with contextlib.suppress(ClientError):
                client.update_time_to_live(
                    TableName=physical_name,
                    TimeToLiveSpecification={"AttributeName": ttl_attribute, "Enabled": True},
                )
    return physical_names


def parse_rate(expression: str) -> int:
    """Seconds between runs of a `rate(...)` schedule expression."""
    match = _RATE_PATTERN.fullmatch(expression.strip())
    if not match:
        raise ValueError(f"unsupported schedule expression {expression!r}: only rate(N minute|hour|day[s])")
    amount, unit = int(match.group(1)), match.group(2)
    if amount < 1:
        raise ValueError(f"schedule rate must be at least 1 {unit}: {expression!r}")
    return amount * _RATE_UNITS_SECONDS[unit]


class _Resolver:
    """Resolves intrinsic functions to local values; None where only a deployment has a value."""

    def __init__(self, template: Mapping[str, Any], table_names: Mapping[str, str]) -> None:
        self._parameters = template.get("Parameters", {})
        self._table_names = table_names
        # Locally a function's name is its logical id: the stack serves Lambda's Invoke API by it.
        self._function_names = {
            logical_id for logical_id in _resources_of_type(template, "AWS::Serverless::Function")
        }

    def resolve(self, value: Any) -> str | None:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return self._reference(value["Ref"])
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return self._substitute(value["Fn::Sub"])
        return None

    def _reference(self, name: str) -> str | None:
        if name in self._table_names:
            return self._table_names[name]
        if name in self._function_names:
            return name
        parameter = self._parameters.get(name)
        if parameter is not None and "Default" in parameter:
            return self.resolve(parameter["Default"])
        return None

    def _substitute(self, text: str) -> str | None:
        references = _SUB_REFERENCE.findall(text)
        values = {name: self._reference(name) for name in references}
        if any(value is None for value in values.values()):
            return None
        return _SUB_REFERENCE.sub(lambda match: str(values[match.group(1)]), text)


def _http_routes(events: Mapping[str, Any]) -> tuple[HttpRoute, ...]:
    return tuple(
        HttpRoute(event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in events.values()
        if event.get("Type") == "HttpApi"
    )


def _schedules(events: Mapping[str, Any]) -> tuple[int, ...]:
    rates = []
    for event in events.values():
        if event.get("Type") not in _SCHEDULE_EVENT_TYPES:
            continue
        properties = event.get("Properties", {})
        if properties.get("Enabled") is False or properties.get("State") == "DISABLED":
            continue
        rates.append(parse_rate(properties.get("ScheduleExpression") or properties["Schedule"]))
    return tuple(rates)


def functions(
    template: Mapping[str, Any],
    *,
    table_names: Mapping[str, str] | None = None,
    template_dir: Path = REPO_ROOT,
) -> dict[str, FunctionSpec]:
    """Each function's local shape; tables resolve to `table_names` (default: their logical ids)."""
    if table_names is None:
        table_names = {logical_id: logical_id for logical_id in table_definitions(template)}
    resolver = _Resolver(template, table_names)
    defaults = template.get("Globals", {}).get("Function", {})
    specs = {}
    for logical_id, resource in _resources_of_type(template, _FUNCTION_TYPE).items():
        properties = {**defaults, **resource.get("Properties", {})}
        variables = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
        }
        resolved = {name: resolver.resolve(value) for name, value in variables.items()}
        events = properties.get("Events", {})
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=(template_dir / properties["CodeUri"]).resolve(),
            handler=properties["Handler"],
            environment={name: value for name, value in resolved.items() if value is not None},
            http_routes=_http_routes(events),
            schedules=_schedules(events),
            timeout_seconds=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            async_retry_attempts=int(properties.get("EventInvokeConfig", {}).get("MaximumRetryAttempts", 2)),
        )
    return specs
