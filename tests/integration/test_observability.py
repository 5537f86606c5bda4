"""Metrics (EMF), Swagger UI behind the key, and the template's alarms."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.metrics import Metrics

from pullbridge.errors import SignatureInvalid, StorageUnavailable
from pullbridge.observability import record_pull_finished, record_webhook_rejected
from pullbridge.pulls.records import StoredPull
from tests.integration.conftest import counting
from tests.support import api_event, lambda_context, standard_webhook_event

BODY = json.dumps({"type": "invoice.paid", "data": {"id": "inv_1"}})


def _metrics(output: str) -> dict[str, Any]:
    """Metric name -> (value, dimensions) from the EMF blobs a function printed."""
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            dimensions = {name: blob[name] for group in directive["Dimensions"] for name in group}
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found[metric["Name"]] = (sum(value) if isinstance(value, list) else value, dimensions)
    return found


def test_an_accepted_webhook_counts_itself_and_its_events(
    ingest: ModuleType, connection: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    ingest.lambda_handler(standard_webhook_event(connection["id"], BODY), lambda_context())
    metrics = _metrics(capsys.readouterr().out)
    assert metrics["WebhooksAccepted"][0] == 1.0
    assert metrics["EventsWritten"][0] == 1.0
    assert metrics["WebhooksAccepted"][1]["service"] == "pullbridge"


def test_a_rejected_webhook_counts_its_reason(
    ingest: ModuleType, connection: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    event = standard_webhook_event(
        connection["id"], BODY, signature="v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    )
    ingest.lambda_handler(event, lambda_context())
    metrics = _metrics(capsys.readouterr().out)
    assert metrics["WebhooksRejected"] == (1.0, {"service": "pullbridge", "reason": "invalid_signature"})
    assert "WebhooksAccepted" not in metrics
    assert "IngestServerErrors" not in metrics


def test_a_webhook_answered_5xx_feeds_the_ingest_alarm_metric(
    ingest: ModuleType, connection: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with counting(ingest.store._client) as calls:
        calls.fail("TransactWriteItems")
        ingest.lambda_handler(standard_webhook_event(connection["id"], BODY), lambda_context())
    metrics = _metrics(capsys.readouterr().out)
    assert metrics["IngestServerErrors"][0] == 1.0
    assert metrics["WebhooksRejected"][1]["reason"] == "storage_unavailable"


def _pull(status: str, *, first_scan: bool, provider: str = "stripe") -> StoredPull:
    pull = StoredPull(
        id="pull_1",
        tenant_id="t",
        subscription_id="s",
        connection_id="c",
        provider=provider,
        collection="customers",
        name="n",
        started_at=time.time() - 4,
        first_scan=first_scan,
        status=status,
    )
    pull.ended_at = pull.started_at + 4
    pull.collected_events_count = 3
    return pull


@pytest.mark.parametrize(
    ("pull", "expected", "absent"),
    [
        (
            _pull("success", first_scan=False),
            {"PullsSucceeded": 1.0, "EventsFoundOnlyByPulls": 3.0, "PullDuration": 4.0},
            "PullsFailed",
        ),
        (_pull("error", first_scan=False), {"PullsFailed": 1.0}, "PullsSucceeded"),
        (_pull("success", first_scan=True), {"PullsSucceeded": 1.0}, "EventsFoundOnlyByPulls"),
        (
            _pull("success", first_scan=False, provider="github"),
            {"PullsSucceeded": 1.0},
            "EventsFoundOnlyByPulls",
        ),
    ],
    ids=["success", "error", "first-scan-backfill", "webhooks-do-not-refresh-snapshots"],
)
def test_a_finished_pull_reports_duration_outcome_and_what_only_pulls_found(
    pull: StoredPull, expected: dict[str, float], absent: str, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = Metrics(namespace="PullbridgeTests", service="pullbridge")
    record_pull_finished(metrics, pull)
    metrics.flush_metrics()
    found = _metrics(capsys.readouterr().out)
    assert {name: found[name][0] for name in expected} == pytest.approx(expected, abs=0.5)
    assert absent not in found


def test_only_server_side_rejections_feed_the_5xx_alarm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for error, feeds_alarm in ((SignatureInvalid("forged"), False), (StorageUnavailable("down"), True)):
        metrics = Metrics(namespace="PullbridgeTests", service="pullbridge")
        record_webhook_rejected(metrics, error)
        metrics.flush_metrics()
        found = _metrics(capsys.readouterr().out)
        assert ("IngestServerErrors" in found) is feeds_alarm
        assert found["WebhooksRejected"][1]["reason"] == error.key


def test_swagger_ui_is_served_behind_the_api_key(api: ModuleType, api_key: str) -> None:
    assert (
        api.lambda_handler(api_event("health.json", None, path="/docs"), lambda_context())["statusCode"]
        == 401
    )
    response = api.lambda_handler(api_event("health.json", api_key, path="/docs"), lambda_context())
    assert response["statusCode"] == 200
    assert "swagger" in response["body"].lower()


def test_the_template_alarms_on_ingest_5xx_pull_errors_and_puller_failures(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    alarms = {
        resource["Properties"]["MetricName"]: resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {
        "IngestServerErrors",
        "PullsFailed",
        "Errors",
        "ApproximateNumberOfMessagesVisible",
        "ConsumerDeadLetters",
    } <= set(alarms)
    assert alarms["ConsumerDeadLetters"]["Dimensions"] == [{"Name": "service", "Value": "pullbridge"}]
    assert all(alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] for alarm in alarms.values())
    puller = resources["PullerFunction"]["Properties"]
    assert puller["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert puller["Events"]["EveryMinute"]["Properties"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["PullerFailureQueue", "Arn"]}
    }


def _template_routes(template: dict[str, Any], function: str) -> set[tuple[str, str]]:
    events = template["Resources"][function]["Properties"]["Events"].values()
    return {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi"}


@pytest.mark.parametrize(("function", "module"), [("ApiFunction", "api"), ("IngestFunction", "ingest")])
def test_each_functions_routes_are_exactly_the_templates(
    template: dict[str, Any], functions: dict[str, ModuleType], function: str, module: str
) -> None:
    app = functions[module].app
    served = {
        (route.method, route.path.replace("<", "{").replace(">", "}"))
        for route in app._static_routes + app._dynamic_routes
    }
    assert served == _template_routes(template, function)


def _api(api: ModuleType, api_key: str, method: str, path: str, body: Any = None) -> Any:
    response = api.lambda_handler(
        api_event("list_events.json", api_key, path=path, method=method, body=body), lambda_context()
    )
    return json.loads(response["body"]) if response.get("body") else None


def _emf_blobs(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


def test_consumers_report_deliveries_dead_letters_and_lag_per_tenant(
    api: ModuleType,
    ingest: ModuleType,
    api_key: str,
    connection: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ingest.lambda_handler(standard_webhook_event(connection["id"], BODY), lambda_context())
    _api(api, api_key, "POST", "/consumers", {"name": "billing"})
    capsys.readouterr()
    (delivery,) = _api(api, api_key, "POST", "/consumers/billing/receive", {})["data"]
    assert (
        _api(api, api_key, "POST", "/consumers/billing/term", {"ack_ids": [delivery["ack_id"]]})["termed"]
        == 1
    )
    _api(api, api_key, "GET", "/consumers/billing")
    blobs = _emf_blobs(capsys.readouterr().out)

    def values(name: str, **dimensions: str) -> list[float]:
        return [
            sum(blob[name]) if isinstance(blob[name], list) else blob[name]
            for blob in blobs
            if name in blob and all(blob.get(key) == value for key, value in dimensions.items())
        ]

    per_consumer = {"tenant_id": "t_alpha", "consumer": "billing"}
    assert values("ConsumerDeliveries", **per_consumer) == [1.0]
    assert values("ConsumerDeadLetters", **per_consumer) == [1.0]
    assert values("ConsumerLag", **per_consumer)
    alarmed = [blob for blob in blobs if "ConsumerDeadLetters" in blob and "tenant_id" not in blob]
    assert [blob["ConsumerDeadLetters"] for blob in alarmed] in ([1.0], [[1.0]])
    assert alarmed[0]["service"] == "pullbridge"


def test_a_complete_scan_reports_what_webhooks_missed_per_tenant(capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    metrics = Metrics(namespace="PullbridgeTests", service="pullbridge")
    scan = StoredPull(
        id="pull_1",
        tenant_id="t_alpha",
        subscription_id="sub_1",
        connection_id="conn_1",
        provider="stripe",
        collection="customers",
        name="full scan",
        started_at=now - 2,
        first_scan=False,
        status="success",
        ended_at=now,
        collected_events_count=3,
    )
    capsys.readouterr()
    record_pull_finished(metrics, scan)
    blobs = _emf_blobs(capsys.readouterr().out)
    missed = [blob for blob in blobs if "MissedByWebhooks" in blob]
    assert [(blob["MissedByWebhooks"], blob["tenant_id"]) for blob in missed] in (
        [(3.0, "t_alpha")],
        [([3.0], "t_alpha")],
    )
    capsys.readouterr()
    record_pull_finished(metrics, replace(scan, status="error"))
    assert not [blob for blob in _emf_blobs(capsys.readouterr().out) if "MissedByWebhooks" in blob]
