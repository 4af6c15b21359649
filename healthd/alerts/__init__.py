"""Alerting: a pure rule engine (component down, error rate, breaker open, heal FATAL)
with de-duplication, escalation and resolve notices, delivered to Alertmanager-style webhooks."""

from healthd.alerts._config import DEFAULT_RULES, AlertsConfig
from healthd.alerts._rules import (
    Alert,
    AlertRule,
    AlertState,
    ComponentFact,
    Facts,
    Notice,
    RuleEngine,
    Severity,
    transition,
)
from healthd.alerts._runner import Alerting, MetricsScrape
from healthd.alerts._webhook import WebhookConfig, WebhookSender, alertmanager_payload

__all__ = [
    "DEFAULT_RULES",
    "Alert",
    "AlertRule",
    "AlertState",
    "Alerting",
    "AlertsConfig",
    "ComponentFact",
    "Facts",
    "MetricsScrape",
    "Notice",
    "RuleEngine",
    "Severity",
    "WebhookConfig",
    "WebhookSender",
    "alertmanager_payload",
    "transition",
]
