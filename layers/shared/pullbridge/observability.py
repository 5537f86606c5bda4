"""The product's CloudWatch metrics (EMF through Powertools Metrics), named in one place.

template.yaml's alarms watch `IngestServerErrors` and `PullsFailed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric

from pullbridge.errors import PullbridgeError
from pullbridge.providers import get_provider

if TYPE_CHECKING:  # the webhook path never loads the pull or consumer modules
    from pullbridge.consumers.records import StoredConsumer
    from pullbridge.pulls.records import StoredPull


def record_webhook_accepted(metrics: Metrics, event_ids: list[str], duplicates: int) -> None:
    metrics.add_metric(name="WebhooksAccepted", unit=MetricUnit.Count, value=1)
    if duplicates:
        metrics.add_metric(name="WebhooksDuplicate", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="EventsWritten", unit=MetricUnit.Count, value=len(event_ids) - duplicates)


def record_webhook_rejected(metrics: Metrics, error: PullbridgeError) -> None:
    """One metric per reason (the error's key), and server-side failures apart, for the 5xx alarm."""
    if error.status_code >= 500:
        metrics.add_metric(name="IngestServerErrors", unit=MetricUnit.Count, value=1)
    with single_metric(
        name="WebhooksRejected", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
    ) as metric:
        metric.add_dimension(name="reason", value=error.key)


def record_pull_finished(metrics: Metrics, pull: StoredPull) -> None:
    duration = (pull.ended_at or pull.started_at) - pull.started_at
    metrics.add_metric(name="PullDuration", unit=MetricUnit.Seconds, value=duration)
    metrics.add_metric(
        name="PullsFailed" if pull.status == "error" else "PullsSucceeded", unit=MetricUnit.Count, value=1
    )
    metrics.add_metric(name="EventsWritten", unit=MetricUnit.Count, value=pull.collected_events_count)
    if not pull.first_scan and get_provider(pull.provider).webhook_matches_list_representation:
        # Where webhooks refresh the snapshot (Stripe, Shopify), a later scan finds only what they missed.
        metrics.add_metric(
            name="EventsFoundOnlyByPulls", unit=MetricUnit.Count, value=pull.collected_events_count
        )
    if (
        pull.is_full_scan
        and pull.status == "success"
        and not pull.first_scan
        and get_provider(pull.provider).webhook_matches_list_representation
    ):
        # The tenant's total of what its webhooks missed (a connection's own figure is its `health`: a
        # dimension per connection would be too many metrics).
        with single_metric(
            name="MissedByWebhooks",
            unit=MetricUnit.Count,
            value=pull.collected_events_count,
            namespace=metrics.namespace,
        ) as metric:
            metric.add_dimension(name="tenant_id", value=pull.tenant_id)


class ConsumerMetrics:
    """Per tenant and consumer: deliveries, redeliveries, dead letters and lag (the `ConsumerObserver`
    of the API). New dead letters are also counted without those dimensions, for the alarm."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def delivered(self, consumer: StoredConsumer, *, first: int, again: int, dead: int) -> None:
        for name, value in (
            ("ConsumerDeliveries", first),
            ("ConsumerRedeliveries", again),
            ("ConsumerDeadLetters", dead),
        ):
            if value:
                self._per_consumer(consumer, name, MetricUnit.Count, value)
        if dead:
            self._metrics.add_metric(name="ConsumerDeadLetters", unit=MetricUnit.Count, value=dead)

    def described(self, consumer: StoredConsumer, *, pending: int, lag_seconds: float) -> None:
        self._per_consumer(consumer, "ConsumerLag", MetricUnit.Seconds, lag_seconds)
        self._per_consumer(consumer, "ConsumerPending", MetricUnit.Count, pending)

    def _per_consumer(self, consumer: StoredConsumer, name: str, unit: MetricUnit, value: float) -> None:
        with single_metric(name=name, unit=unit, value=value, namespace=self._metrics.namespace) as metric:
            metric.add_dimension(name="tenant_id", value=consumer.tenant_id)
            metric.add_dimension(name="consumer", value=consumer.name)
