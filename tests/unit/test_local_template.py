"""The local stack's reading of template.yaml: tables, functions, routes and schedules. Pure: no AWS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pullbridge_local.template import (
    FunctionSpec,
    HttpRoute,
    functions,
    load_template,
    parse_rate,
    table_definitions,
)

TEMPLATE_TEXT = """
Parameters:
  RetentionDays: {Type: Number, Default: 30}
  Stage: {Type: String, Default: dev}
  NoDefault: {Type: String}
Globals:
  Function:
    Timeout: 10
    MemorySize: 512
    Environment:
      Variables:
        EVENTS_TABLE: !Ref EventsTable
        RETENTION_DAYS: !Ref RetentionDays
        SERVICE: shared
        DEBUG: false
Resources:
  EventsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: g, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: by_g
          KeySchema: [{AttributeName: g, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
          ContributorInsightsSpecification: {Enabled: true}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      SSESpecification: {SSEEnabled: true}
  Secret:
    Type: AWS::SecretsManager::Secret
  WebFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/web/
      Handler: app.lambda_handler
      Timeout: 29
      Environment:
        Variables:
          SERVICE: web
          SECRET_ARN: !Ref Secret
          QUEUE_URL: !GetAtt Queue.QueueUrl
          STAGE_NAME: !Sub "pullbridge-${Stage}"
          UNKNOWN_SUB: !Sub "x-${Secret}"
          NO_DEFAULT: !Ref NoDefault
      Events:
        Get: {Type: HttpApi, Properties: {Method: get, Path: "/items/{item_id}"}}
        Post: {Type: HttpApi, Properties: {Method: POST, Path: /items}}
  CronFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/cron/
      Handler: app.lambda_handler
      Events:
        Often: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(5 minutes)}}
        Legacy: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
        Off: {Type: Schedule, Properties: {Schedule: rate(1 day), Enabled: false}}
"""


@pytest.fixture
def template(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE_TEXT, encoding="utf-8")
    return load_template(path)


@pytest.fixture
def specs(template: dict[str, Any], tmp_path: Path) -> dict[str, FunctionSpec]:
    return functions(template, table_names={"EventsTable": "local-EventsTable"}, template_dir=tmp_path)


def test_short_form_intrinsics_load_as_their_long_form(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("a: !Ref X\nb: !GetAtt T.Arn\nc: !Sub 'x-${X}'\nd: !If [C, 1, 2]\n", encoding="utf-8")

    assert load_template(path) == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["T", "Arn"]},
        "c": {"Fn::Sub": "x-${X}"},
        "d": {"Fn::If": ["C", 1, 2]},
    }


def test_loading_still_refuses_arbitrary_python_objects(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n", encoding="utf-8")

    with pytest.raises(yaml.constructor.ConstructorError):
        load_template(path)


def test_table_definitions_keep_only_what_create_table_accepts(template: dict[str, Any]) -> None:
    assert table_definitions(template) == {
        "EventsTable": {
            "TableName": "EventsTable",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by_g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        }
    }


def test_a_table_without_capacity_is_billed_on_demand() -> None:
    template = {"Resources": {"T": {"Type": "AWS::DynamoDB::Table", "Properties": {"KeySchema": []}}}}

    assert table_definitions(template)["T"]["BillingMode"] == "PAY_PER_REQUEST"


def test_a_table_with_provisioned_capacity_keeps_it() -> None:
    capacity = {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}
    properties = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": capacity}
    template = {"Resources": {"T": {"Type": "AWS::DynamoDB::Table", "Properties": properties}}}

    assert table_definitions(template)["T"]["BillingMode"] == "PROVISIONED"
    assert table_definitions(template)["T"]["ProvisionedThroughput"] == capacity


def test_functions_are_found_with_their_code_and_handler(
    specs: dict[str, FunctionSpec], tmp_path: Path
) -> None:
    assert set(specs) == {"WebFunction", "CronFunction"}
    assert specs["WebFunction"].code_uri == tmp_path / "functions" / "web"
    assert specs["WebFunction"].handler == "app.lambda_handler"


def test_function_settings_override_globals(specs: dict[str, FunctionSpec]) -> None:
    assert (specs["WebFunction"].timeout_seconds, specs["WebFunction"].memory_mb) == (29, 512)
    assert (specs["CronFunction"].timeout_seconds, specs["CronFunction"].memory_mb) == (10, 512)


def test_environment_merges_globals_and_resolves_local_values(specs: dict[str, FunctionSpec]) -> None:
    assert specs["WebFunction"].environment == {
        "EVENTS_TABLE": "local-EventsTable",
        "RETENTION_DAYS": "30",
        "SERVICE": "web",
        "DEBUG": "false",
        "STAGE_NAME": "pullbridge-dev",
    }


def test_environment_omits_what_only_a_deployment_can_resolve(specs: dict[str, FunctionSpec]) -> None:
    environment = specs["WebFunction"].environment

    assert not {"SECRET_ARN", "QUEUE_URL", "UNKNOWN_SUB", "NO_DEFAULT"} & set(environment)


def test_tables_resolve_to_their_logical_ids_by_default(template: dict[str, Any]) -> None:
    assert functions(template)["CronFunction"].environment["EVENTS_TABLE"] == "EventsTable"


def test_http_routes_are_read_with_upper_case_methods(specs: dict[str, FunctionSpec]) -> None:
    assert specs["WebFunction"].http_routes == (
        HttpRoute("GET", "/items/{item_id}"),
        HttpRoute("POST", "/items"),
    )
    assert specs["CronFunction"].http_routes == ()


def test_enabled_schedules_of_both_kinds_are_read_in_seconds(specs: dict[str, FunctionSpec]) -> None:
    assert specs["CronFunction"].schedules == (300, 3600)
    assert specs["WebFunction"].schedules == ()


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(15 minutes)", 900),
        ("rate(1 hour)", 3600),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
    ],
)
def test_rates_parse_to_seconds(expression: str, seconds: int) -> None:
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize(
    "expression", ["cron(0 12 * * ? *)", "rate(0 minutes)", "rate(1 second)", "rate(minute)", "every minute"]
)
def test_other_schedule_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        parse_rate(expression)


def test_the_projects_template_routes_webhooks_to_ingest_and_schedules_the_puller() -> None:
    specs = functions(load_template())

    assert specs["IngestFunction"].http_routes == (HttpRoute("POST", "/webhooks/{connection_id}"),)
    assert specs["PullerFunction"].schedules == (60,)
    assert (specs["IngestFunction"].code_uri / "app.py").is_file()


def test_the_projects_template_gives_no_function_a_secret_arn_locally() -> None:
    for spec in functions(load_template()).values():
        assert spec.environment["EVENTS_TABLE"] == "EventsTable"
        assert "CURSOR_SECRET_ARN" not in spec.environment
