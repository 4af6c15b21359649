"""Alerting settings (the ``alerts`` section of healthd's config)."""

from __future__ import annotations

from pydantic import Field

from healthd.alerts._rules import AlertRule, Severity
from healthd.alerts._webhook import WebhookConfig
from services.common import ConfigModel

__all__ = ["DEFAULT_RULES", "AlertsConfig"]

DEFAULT_RULES = [
    AlertRule(name="ComponentDown", kind="component_down", severity=Severity.CRITICAL, for_s=10),
    AlertRule(name="HealFatal", kind="heal_fatal", severity=Severity.CRITICAL),
    AlertRule(name="HighErrorRate", kind="error_rate", threshold=0.05, for_s=60),
    AlertRule(name="BreakerOpen", kind="breaker_open", for_s=0),
    AlertRule(name="StoreSpaceLow", kind="store_space_low", severity=Severity.CRITICAL, for_s=0),
]


class AlertsConfig(ConfigModel):
    """Rules evaluated by healthd, and where their notices go."""

    rules: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_RULES))
    """Alert rules; by default: component down 10 s (critical), heal FATAL (critical),
    error rate over 5 % for 60 s, any circuit breaker open, a store below its free-space
    reserve (critical)."""
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    """Alertmanager-compatible webhook receivers; none means alerts only on the dashboard."""
    evaluate_interval_s: float = Field(default=1.0, gt=0, le=300)
    """How often rules are evaluated (and metric targets scraped)."""
    inhibit_grace_s: float = Field(default=30.0, ge=0, le=3600)
    """After a root cause recovers, how long alerts it caused stay grouped under it (and do not
    page on their own) while they follow it back up."""
    metrics_targets: dict[str, str] = Field(default_factory=dict)
    """Name -> ``/metrics`` URL of a service, scraped for the error_rate and breaker_open rules
    (the name is the alert's ``component`` label)."""
