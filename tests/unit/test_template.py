"""Template-level checks on template.yaml: pure parsing, no AWS and no SAM CLI."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from pullbridge_local.template import load_template

FUNCTIONS = ("IngestFunction", "ApiFunction", "PullerFunction", "AdminFunction")
TABLES = ("EventsTable", "ControlTable")
API_GATEWAY_MAX_SECONDS = 30
LONG_POLL_MAX_SECONDS = 20

# The routes PRODUCT.md promises, besides the webhook route that the ingest function serves.
API_ROUTES = {
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/console"),
    ("GET", "/console/assets/{name}"),
    ("GET", "/events"),
    ("GET", "/events/{event_id}"),
    ("POST", "/connections"),
    ("GET", "/connections"),
    ("GET", "/connections/{connection_id}"),
    ("PATCH", "/connections/{connection_id}"),
    ("DELETE", "/connections/{connection_id}"),
    ("POST", "/external-event-subscriptions"),
    ("GET", "/external-event-subscriptions"),
    ("GET", "/external-event-subscriptions/{subscription_id}"),
    ("PATCH", "/external-event-subscriptions/{subscription_id}"),
    ("DELETE", "/external-event-subscriptions/{subscription_id}"),
    ("POST", "/external-event-subscriptions/{subscription_id}/pull"),
    ("GET", "/external-event-pulls"),
    ("GET", "/external-event-pulls/{pull_id}"),
    ("GET", "/records"),
    ("GET", "/records/{connection_id}/{collection}/{record_id}"),
    ("POST", "/consumers"),
    ("GET", "/consumers"),
    ("GET", "/consumers/{consumer}"),
    ("PATCH", "/consumers/{consumer}"),
    ("DELETE", "/consumers/{consumer}"),
    ("POST", "/consumers/{consumer}/receive"),
    ("POST", "/consumers/{consumer}/ack"),
    ("POST", "/consumers/{consumer}/nack"),
    ("POST", "/consumers/{consumer}/extend"),
    ("POST", "/consumers/{consumer}/term"),
    ("POST", "/consumers/{consumer}/seek"),
    ("GET", "/consumers/{consumer}/dead-letters"),
    ("POST", "/consumers/{consumer}/dead-letters/redrive"),
    ("DELETE", "/consumers/{consumer}/dead-letters/{event_id}"),
    ("POST", "/mutations"),
    ("GET", "/mutations"),
    ("GET", "/mutations/{mutation_id}"),
}


@cache
def _template() -> dict[str, Any]:
    return load_template()  # the loader the local stack and every other test use


def _resource(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = _template()["Resources"][name]
    return resource


def _function_property(function: str, key: str) -> Any:
    """A function's effective property: its own value, else the one from Globals."""
    own = _resource(function)["Properties"]
    return own[key] if key in own else _template()["Globals"]["Function"][key]


def _statements(function: str) -> Iterator[dict[str, Any]]:
    for policy in _resource(function)["Properties"].get("Policies", []):
        assert isinstance(policy, dict), f"{function}: only inline policies are expected, got {policy!r}"
        yield from policy["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions_on(function: str, table: str) -> set[str]:
    """Every action a function may perform on a table or its indexes."""
    actions: set[str] = set()
    for statement in _statements(function):
        resources = _as_list(statement["Resource"])
        if any(table in str(resource) for resource in resources):
            actions.update(_as_list(statement["Action"]))
    return actions


def _http_routes(function: str) -> set[tuple[str, str]]:
    events = _resource(function)["Properties"].get("Events", {})
    return {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in events.values()
        if event["Type"] == "HttpApi"
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_runs_python313_on_arm64(function: str) -> None:
    assert _function_property(function, "Runtime") == "python3.13"
    assert _function_property(function, "Architectures") == ["arm64"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_uses_the_shared_layer(function: str) -> None:
    assert {"Ref": "SharedLayer"} in _function_property(function, "Layers")


def test_layer_is_built_for_the_functions_cpu_and_runtime() -> None:
    metadata = _resource("SharedLayer")["Metadata"]
    architectures = {arch for f in FUNCTIONS for arch in _function_property(f, "Architectures")}
    runtimes = {_function_property(f, "Runtime") for f in FUNCTIONS}

    assert {metadata["BuildArchitecture"]} == architectures
    assert {metadata["BuildMethod"]} == runtimes


def test_layer_declares_what_it_is_compatible_with() -> None:
    properties = _resource("SharedLayer")["Properties"]

    assert properties["ContentUri"] == "layers/shared/"
    assert properties["CompatibleRuntimes"] == ["python3.13"]
    assert properties["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize("table", TABLES)
def test_every_table_is_billed_on_demand(table: str) -> None:
    assert _resource(table)["Properties"]["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.parametrize("table", TABLES)
def test_every_table_expires_items_on_expires_at(table: str) -> None:
    ttl = _resource(table)["Properties"]["TimeToLiveSpecification"]

    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


@pytest.mark.parametrize("table", TABLES)
def test_every_table_has_point_in_time_recovery(table: str) -> None:
    pitr = _resource(table)["Properties"]["PointInTimeRecoverySpecification"]

    assert pitr == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("table", TABLES)
def test_every_table_is_encrypted_with_kms(table: str) -> None:
    sse = _resource(table)["Properties"]["SSESpecification"]

    assert sse["SSEEnabled"] is True
    assert sse["SSEType"] == "KMS"


@pytest.mark.parametrize("table", TABLES)
def test_every_table_survives_stack_deletion_and_replacement(table: str) -> None:
    assert _resource(table)["DeletionPolicy"] == "Retain"
    assert _resource(table)["UpdateReplacePolicy"] == "Retain"


def test_events_table_orders_each_log_by_a_numeric_position() -> None:
    properties = _resource("EventsTable")["Properties"]
    types = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}

    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert types == {"pk": "S", "sk": "N"}


def test_control_table_has_the_tenant_and_due_indexes() -> None:
    properties = _resource("ControlTable")["Properties"]
    types = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    indexes = {index["IndexName"]: index for index in properties["GlobalSecondaryIndexes"]}

    assert indexes["by_tenant"]["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert indexes["by_tenant"]["Projection"] == {"ProjectionType": "ALL"}
    assert indexes["by_due"]["KeySchema"] == [
        {"AttributeName": "gsi2pk", "KeyType": "HASH"},
        {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
    ]
    assert indexes["by_due"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert types == {"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "gsi2pk": "S", "gsi2sk": "S"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_has_a_log_group_with_retention(function: str) -> None:
    log_groups = [
        resource["Properties"]
        for resource in _template()["Resources"].values()
        if resource["Type"] == "AWS::Logs::LogGroup"
        and resource["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
    ]

    assert len(log_groups) == 1
    assert log_groups[0]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def _unconditional_actions_on(function: str, table: str) -> set[str]:
    return {
        action
        for statement in _statements(function)
        if "Condition" not in statement and any(table in str(r) for r in _as_list(statement["Resource"]))
        for action in _as_list(statement["Action"])
    }


def test_ingest_may_only_read_connections_and_append_events() -> None:
    assert _unconditional_actions_on("IngestFunction", "ControlTable") == {
        "dynamodb:GetItem",
        "dynamodb:ConditionCheckItem",
    }
    # BatchWriteItem only ever puts tombstones on positions the failed commit had taken; BatchGetItem
    # reads a new instance's two log heads at once.
    assert _actions_on("IngestFunction", "EventsTable") == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
    }


def test_ingest_cannot_scan_query_or_delete() -> None:
    actions = _unconditional_actions_on("IngestFunction", "ControlTable") | _actions_on(
        "IngestFunction", "EventsTable"
    )
    forbidden = {"dynamodb:Scan", "dynamodb:Query", "dynamodb:DeleteItem"}

    assert not actions & forbidden
    assert "dynamodb:BatchGetItem" not in _unconditional_actions_on("IngestFunction", "ControlTable")


def test_ingest_may_write_only_snapshot_and_record_items_of_the_control_table() -> None:
    [statement] = [s for s in _statements("IngestFunction") if "Condition" in s]
    assert set(_as_list(statement["Action"])) == {
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
    }
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SNAP#*", "REC#*"]}
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_is_granted_wildcard_actions_or_resources(function: str) -> None:
    for statement in _statements(function):
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in _as_list(statement["Action"]))
        assert "*" not in _as_list(statement["Resource"])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_may_scan_a_table(function: str) -> None:
    actions = {action for statement in _statements(function) for action in _as_list(statement["Action"])}

    assert "dynamodb:Scan" not in actions


def test_only_the_api_reads_the_cursor_signing_secret() -> None:
    readers = {
        function
        for function in FUNCTIONS
        for statement in _statements(function)
        if {"Ref": "CursorSigningSecret"} in _as_list(statement["Resource"])
    }

    assert readers == {"ApiFunction"}
    assert _function_property("ApiFunction", "Environment")["Variables"]["CURSOR_SECRET_ARN"] == {
        "Ref": "CursorSigningSecret"
    }


def test_cursor_signing_secret_is_generated_long_and_printable() -> None:
    generated = _resource("CursorSigningSecret")["Properties"]["GenerateSecretString"]

    assert generated["PasswordLength"] >= 64
    assert generated["ExcludePunctuation"] is True


def test_puller_runs_every_minute() -> None:
    events = _resource("PullerFunction")["Properties"]["Events"]
    (schedule,) = events.values()

    assert schedule["Type"] in {"Schedule", "ScheduleV2"}
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 minute)"


def test_puller_can_run_for_the_longest_lambda_invocation() -> None:
    assert _function_property("PullerFunction", "Timeout") == 900


def test_only_the_function_that_runs_mutations_reaches_the_idempotency_records() -> None:
    assert _actions_on("ApiFunction", "IdempotencyTable") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    for function in FUNCTIONS:
        if function != "ApiFunction":
            assert _actions_on(function, "IdempotencyTable") == set(), function
    api_variables = _resource("ApiFunction")["Properties"]["Environment"]["Variables"]
    assert api_variables["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}


def test_idempotency_records_expire_on_powertools_attribute_and_are_encrypted() -> None:
    properties = _resource("IdempotencyTable")["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_ingest_serves_only_the_webhook_route() -> None:
    assert _http_routes("IngestFunction") == {("POST", "/webhooks/{connection_id}")}


def test_api_serves_every_route_of_the_contract() -> None:
    assert _http_routes("ApiFunction") == API_ROUTES


def test_puller_serves_no_route() -> None:
    assert _http_routes("PullerFunction") == set()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_route_is_on_the_one_http_api(function: str) -> None:
    for event in _resource(function)["Properties"].get("Events", {}).values():
        if event["Type"] == "HttpApi":
            assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}


def test_api_timeout_outlasts_long_polling_within_api_gateways_limit() -> None:
    timeout = _function_property("ApiFunction", "Timeout")

    assert LONG_POLL_MAX_SECONDS < timeout < API_GATEWAY_MAX_SECONDS


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EVENTS_TABLE", {"Ref": "EventsTable"}),
        ("CONTROL_TABLE", {"Ref": "ControlTable"}),
        ("RETENTION_DAYS", {"Ref": "RetentionDays"}),
        ("PULLBRIDGE_ALLOW_PRIVATE_URLS", {"Ref": "AllowPrivateUrls"}),
        ("POWERTOOLS_SERVICE_NAME", "pullbridge"),
    ],
)
def test_every_function_gets_the_shared_environment(variable: str, value: Any) -> None:
    assert _template()["Globals"]["Function"]["Environment"]["Variables"][variable] == value


def test_private_urls_are_refused_by_default() -> None:
    parameter = _template()["Parameters"]["AllowPrivateUrls"]

    assert parameter["Default"] == "0"
    assert parameter["AllowedValues"] == ["0", "1"]


def test_events_are_kept_thirty_days_by_default() -> None:
    parameter = _template()["Parameters"]["RetentionDays"]

    assert parameter["Default"] == 30
    assert parameter["MinValue"] == 1


@pytest.mark.parametrize(
    "output", ["ApiUrl", "WebhookUrlPrefix", "EventsTableName", "ControlTableName", "ApiFunctionName"]
)
def test_every_output_is_described(output: str) -> None:
    assert _template()["Outputs"][output]["Description"]
