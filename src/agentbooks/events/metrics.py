"""Prometheus metrics of the publisher and the webhook deliveries.

Registered on the API's registry when the publisher runs beside ``agentbooks serve`` (so
``/metrics`` shows them), or on their own registry for ``agentbooks publish --metrics-port``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EventMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.lag = Gauge("agentbooks_publisher_lag_sequences",
                         "journal transactions committed but not yet published", ["publisher"], registry=self.registry)
        self.position = Gauge("agentbooks_publisher_position", "last journal sequence published",
                              ["publisher"], registry=self.registry)
        self.published = Counter("agentbooks_publisher_messages_total", "messages the broker confirmed",
                                 ["publisher", "type"], registry=self.registry)
        self.broker_failures = Counter("agentbooks_publisher_broker_failures_total",
                                       "pages the broker did not confirm (sent again later)", ["publisher"],
                                       registry=self.registry)
        self.webhook_deliveries = Counter("agentbooks_webhook_deliveries_total", "webhook calls answered 2xx",
                                          registry=self.registry)
        self.webhook_failures = Counter("agentbooks_webhook_failures_total",
                                        "webhook calls that failed (retried with back-off until the last attempt)",
                                        ["final"], registry=self.registry)
