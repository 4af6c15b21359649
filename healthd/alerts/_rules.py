"""Alert rules and their state machine: pure, clock injected (``now=`` everywhere).

A rule turns `Facts` (component health + scraped metrics) into the set of conditions
that hold now, each under a stable key (rule + labels). Each key has one `AlertState`
moved by `transition`:

    INACTIVE --holds--> PENDING --held for_s--> FIRING --still holds after
    repeat_interval_s--> FIRING (escalated: notified again, severity raised one step)
    FIRING --stops holding--> RESOLVED (notified) --> INACTIVE

De-duplication: a key notifies only on entering FIRING, on each escalation and on
resolving; the same condition seen on every evaluation produces no more notices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from pydantic import Field

from services.common import ConfigModel

__all__ = [
    "Alert",
    "AlertRule",
    "AlertState",
    "ComponentFact",
    "Facts",
    "Notice",
    "RuleEngine",
    "Severity",
    "transition",
]


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    def raised(self) -> Severity:
        """One step more severe (CRITICAL stays CRITICAL)."""
        order = list(Severity)
        return order[min(order.index(self) + 1, len(order) - 1)]


class AlertRule(ConfigModel):
    """One alerting rule."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    """Alert name (``alertname`` label), e.g. ``ComponentDown``."""
    kind: Literal["component_down", "error_rate", "breaker_open", "heal_fatal", "store_space_low"]
    """What to watch: a component NOT_SERVING, the share of failed RPCs of a scraped
    target, an open circuit breaker of a scraped target, healing that gave up (FATAL), or a
    store's volume below its free-space reserve (from healthd's store checks)."""
    severity: Severity = Severity.WARNING
    """Severity when it starts firing."""
    for_s: float = Field(default=0.0, ge=0, le=86400)
    """How long the condition must hold before the alert fires."""
    threshold: float = Field(default=0.05, ge=0, le=1)
    """error_rate only: fraction of failed RPCs (server-fault codes) that fires."""
    min_requests: int = Field(default=10, ge=1)
    """error_rate only: RPCs needed between two scrapes before the rate is judged."""
    repeat_interval_s: float = Field(default=300.0, gt=0, le=7 * 86400)
    """While still firing, notify again (escalated one severity step) after this long."""
    component: str = "*"
    """Component or scrape target the rule applies to; ``*`` for all."""
    summary: str = ""
    """Human summary; defaults to a description of the condition."""


@dataclass(frozen=True)
class ComponentFact:
    status: str  # SERVING / NOT_SERVING / UNKNOWN
    heal_state: str  # HealState value
    cause: str = ""
    """The down dependency at the root of this component's failure (aggregation walks the
    ``depends_on`` graph); empty when it fails on its own or is up."""


@dataclass(frozen=True)
class Facts:
    """What rules look at, gathered by the caller."""

    components: Mapping[str, ComponentFact] = field(default_factory=dict)
    error_rates: Mapping[str, tuple[float, int]] = field(default_factory=dict)
    """target -> (failed fraction, requests) since the previous scrape."""
    open_breakers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """target -> names of breakers that are open."""
    store_space: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """store path -> (free bytes, reserve bytes) as healthd's store checks last measured."""


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert instance (a rule and its labels)."""

    rule: str
    labels: tuple[tuple[str, str], ...]
    state: AlertState
    severity: Severity
    summary: str
    since: float
    """When the condition started holding."""
    fired_at: float = 0.0
    last_notified: float = 0.0
    resolved_at: float = 0.0
    escalations: int = 0
    caused_by: str = ""
    """Root-cause component while a dependency's failure explains this alert (`correlate`)."""
    cause_cleared_at: float = 0.0
    paged: bool = False
    """Whether a firing notice of this alert went out (an inhibited one did not)."""

    @property
    def fingerprint(self) -> str:
        text = self.rule + "".join(f"\0{k}={v}" for k, v in self.labels)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "labels": dict(self.labels),
            "state": self.state.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "since": self.since,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "escalations": self.escalations,
            "fingerprint": self.fingerprint,
            "caused_by": self.caused_by,
        }

    @property
    def component(self) -> str:
        return dict(self.labels).get("component", "")


@dataclass(frozen=True)
class Notice:
    """A notification to deliver: ``kind`` is firing, escalated or resolved."""

    kind: Literal["firing", "escalated", "resolved"]
    alert: Alert
    related: tuple[Alert, ...] = ()
    """Alerts grouped under this one: caused by the failure of its component (inhibited)."""


def transition(
    alert: Alert, holds: bool, rule: AlertRule, *, now: float, summary: str
) -> tuple[Alert, Notice | None]:
    """Move one alert given whether its condition holds at ``now``."""
    s = alert.state
    if holds:
        if s in (AlertState.INACTIVE, AlertState.RESOLVED):
            # the condition starts holding: wait for_s (fires at once when for_s is 0)
            alert = Alert(alert.rule, alert.labels, AlertState.PENDING, rule.severity, summary, since=now)
            s = AlertState.PENDING
        if s is AlertState.PENDING:
            if now - alert.since < rule.for_s:
                return alert, None  # still pending: held for less than for_s
            # held long enough: fire and notify
            fired = replace(alert, state=AlertState.FIRING, fired_at=now, last_notified=now, summary=summary)
            return fired, Notice("firing", fired)
        if now - alert.last_notified >= rule.repeat_interval_s:
            # still firing after the repeat interval: escalate one severity step, notify again
            escalated = replace(
                alert,
                severity=alert.severity.raised(),
                last_notified=now,
                escalations=alert.escalations + 1,
                summary=summary,
            )
            return escalated, Notice("escalated", escalated)
        return alert, None  # firing, already notified recently: de-duplicated
    if s is AlertState.FIRING:
        # stopped holding while firing: resolve and notify
        done = replace(alert, state=AlertState.RESOLVED, resolved_at=now)
        return done, Notice("resolved", done)
    if s is AlertState.PENDING:
        return replace(alert, state=AlertState.INACTIVE), None  # stopped before firing: nothing to say
    return alert, None  # INACTIVE or RESOLVED stays as it is


Labels = tuple[tuple[str, str], ...]


def correlate(
    alerts: dict[tuple[str, Labels], Alert],
    facts: Facts,
    notices: list[Notice],
    *,
    now: float,
    grace_s: float,
) -> list[Notice]:
    """Group alerts under their root cause and inhibit the rest (Alertmanager's grouping and
    inhibition, with the cause taken from the ``depends_on`` graph), so one fault pages once.

    An alert whose component is down because a dependency is (its `ComponentFact.cause`),
    while that root component has an alert pending or firing, is *caused*: its own notices
    are held back, and it rides along (``Notice.related``) in the root's notices. Once the
    root recovers, a caused alert still firing pages on its own; a resolve is sent only for
    alerts that paged. A caused alert stays grouped for ``grace_s`` after its root stopped
    being down (dependents recover a little after their dependency). ``alerts`` is updated
    in place (``caused_by``, ``paged``).
    """
    active = {AlertState.PENDING, AlertState.FIRING}
    roots = {a.component for a in alerts.values() if a.state in active and a.component}
    for key, a in alerts.items():
        fact = facts.components.get(a.component)
        cause = fact.cause if fact is not None and fact.cause in roots and a.state in active else ""
        if cause:
            alerts[key] = replace(a, caused_by=cause, cause_cleared_at=0.0)
        elif a.caused_by and a.state in active and now - (a.cause_cleared_at or now) < grace_s:
            # The root just recovered; dependents take a moment to follow: no page meanwhile.
            alerts[key] = replace(a, cause_cleared_at=a.cause_cleared_at or now)
        elif a.caused_by:
            alerts[key] = replace(a, caused_by="", cause_cleared_at=0.0)
    out: list[Notice] = []
    sent: set[tuple[str, Labels]] = set()
    for n in notices:
        key = (n.alert.rule, n.alert.labels)
        a = alerts[key]
        if a.caused_by or (n.kind == "resolved" and not a.paged):
            continue  # inhibited by its root cause, or a resolve of something never paged
        sent.add(key)
        out.append(replace(n, alert=a))
    for key, a in alerts.items():  # inhibited before, root recovered, still firing: page now
        if a.state is AlertState.FIRING and not a.caused_by and not a.paged and key not in sent:
            out.append(Notice("firing", a))
    result = []
    for n in out:
        key = (n.alert.rule, n.alert.labels)
        if n.kind != "resolved":
            alerts[key] = replace(alerts[key], paged=True)
        related = tuple(
            sorted(
                (a for a in alerts.values() if a.caused_by and a.caused_by == n.alert.component),
                key=lambda a: (a.component, a.rule),
            )
        )
        result.append(replace(n, alert=alerts[key], related=related))
    return result


def _matches(rule: AlertRule, name: str) -> bool:
    return rule.component in ("*", name)


def conditions(rule: AlertRule, facts: Facts) -> dict[Labels, str]:
    """The label sets for which ``rule`` holds now, with a one-line description each."""
    out: dict[Labels, str] = {}
    if rule.kind == "component_down":
        for name, c in facts.components.items():
            if _matches(rule, name) and c.status == "NOT_SERVING":
                out[(("component", name),)] = f"component {name} is down"
    elif rule.kind == "heal_fatal":
        for name, c in facts.components.items():
            if _matches(rule, name) and c.heal_state == "FATAL":
                out[(("component", name),)] = f"healing of {name} gave up (FATAL); escalated"
    elif rule.kind == "error_rate":
        for target, (rate, requests) in facts.error_rates.items():
            if _matches(rule, target) and requests >= rule.min_requests and rate > rule.threshold:
                out[(("component", target),)] = (
                    f"{target}: {rate:.0%} of {requests} RPCs failed (threshold {rule.threshold:.0%})"
                )
    elif rule.kind == "breaker_open":
        for target, names in facts.open_breakers.items():
            if _matches(rule, target):
                for b in names:
                    out[(("component", target), ("breaker", b))] = f"{target}: circuit breaker {b} is open"
    elif rule.kind == "store_space_low":
        for store, (free, reserve) in facts.store_space.items():
            if _matches(rule, store) and free < reserve:
                mib = f"{free / 2**20:.1f} MiB free, below the reserve of {reserve / 2**20:.1f} MiB"
                out[(("store", store),)] = f"store {store}: {mib} (new runs are refused)"
    return out


class RuleEngine:
    """Evaluates every rule against facts; keeps alert states; returns notices to send."""

    def __init__(
        self, rules: list[AlertRule], keep_resolved: int = 50, inhibit_grace_s: float = 30.0
    ) -> None:
        self.rules = rules
        self.inhibit_grace_s = inhibit_grace_s
        self._alerts: dict[tuple[str, Labels], Alert] = {}
        self._keep_resolved = keep_resolved

    def evaluate(self, facts: Facts, *, now: float) -> list[Notice]:
        notices: list[Notice] = []
        for rule in self.rules:
            holding = conditions(rule, facts)
            keys = {(rule.name, labels) for labels in holding} | {
                k for k in self._alerts if k[0] == rule.name
            }
            for key in sorted(keys):
                labels = key[1]
                alert = self._alerts.get(key) or Alert(
                    rule.name, labels, AlertState.INACTIVE, rule.severity, "", since=now
                )
                text = rule.summary or holding.get(labels, alert.summary)
                new, notice = transition(alert, labels in holding, rule, now=now, summary=text)
                self._alerts[key] = new
                if notice is not None:
                    notices.append(notice)
        notices = correlate(self._alerts, facts, notices, now=now, grace_s=self.inhibit_grace_s)
        self._prune()
        return notices

    def _prune(self) -> None:
        for key in [k for k, a in self._alerts.items() if a.state is AlertState.INACTIVE]:
            del self._alerts[key]
        resolved = sorted(
            (a.resolved_at, k) for k, a in self._alerts.items() if a.state is AlertState.RESOLVED
        )
        for _, key in resolved[: max(0, len(resolved) - self._keep_resolved)]:
            del self._alerts[key]

    def alerts(self) -> list[Alert]:
        """Pending, firing and recently resolved alerts, firing first, most severe first."""
        order = {AlertState.FIRING: 0, AlertState.PENDING: 1, AlertState.RESOLVED: 2}
        sev = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
        return sorted(self._alerts.values(), key=lambda a: (order.get(a.state, 3), sev[a.severity], -a.since))
