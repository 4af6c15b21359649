"""The alert rule engine with a driven clock: pending, firing, de-duplication, escalation, resolve."""

from __future__ import annotations

from healthd.alerts import (
    AlertRule,
    AlertState,
    ComponentFact,
    Facts,
    MetricsScrape,
    RuleEngine,
    Severity,
    alertmanager_payload,
)

DOWN = AlertRule(name="ComponentDown", kind="component_down", severity=Severity.WARNING, for_s=5,
                 repeat_interval_s=60)  # fmt: skip


def facts(**status: str) -> Facts:
    return Facts(components={n: ComponentFact(s, "HEALTHY") for n, s in status.items()})


def test_down_for_n_seconds_fires_once_then_escalates_then_resolves() -> None:
    eng = RuleEngine([DOWN])
    assert eng.evaluate(facts(a="NOT_SERVING", b="SERVING"), now=100) == []
    assert eng.alerts()[0].state is AlertState.PENDING
    assert eng.evaluate(facts(a="NOT_SERVING"), now=104.9) == []  # held 4.9 s < 5 s
    fired = eng.evaluate(facts(a="NOT_SERVING"), now=105)
    assert [(n.kind, n.alert.severity, dict(n.alert.labels)) for n in fired] == [
        ("firing", Severity.WARNING, {"component": "a"})
    ]
    for t in (106, 130, 164.9):  # still down: de-duplicated
        assert eng.evaluate(facts(a="NOT_SERVING"), now=t) == []
    escalated = eng.evaluate(facts(a="NOT_SERVING"), now=165)
    assert [(n.kind, n.alert.severity, n.alert.escalations) for n in escalated] == [
        ("escalated", Severity.CRITICAL, 1)
    ]
    resolved = eng.evaluate(facts(a="SERVING"), now=170)
    assert [(n.kind, n.alert.state) for n in resolved] == [("resolved", AlertState.RESOLVED)]
    assert eng.evaluate(facts(a="SERVING"), now=171) == []
    assert eng.alerts()[0].state is AlertState.RESOLVED  # kept for the dashboard


def test_flap_shorter_than_for_s_never_notifies() -> None:
    eng = RuleEngine([DOWN])
    for t, s in ((0, "NOT_SERVING"), (3, "SERVING"), (4, "NOT_SERVING"), (8, "SERVING")):
        assert eng.evaluate(facts(a=s), now=t) == []
    assert eng.alerts() == []


def test_heal_fatal_error_rate_and_breaker_rules() -> None:
    rules = [
        AlertRule(name="HealFatal", kind="heal_fatal", severity=Severity.CRITICAL),
        AlertRule(name="Errors", kind="error_rate", threshold=0.1, min_requests=10),
        AlertRule(name="Breaker", kind="breaker_open", component="workflow"),
    ]
    eng = RuleEngine(rules)
    f = Facts(
        components={"a": ComponentFact("NOT_SERVING", "FATAL"), "b": ComponentFact("SERVING", "HEALTHY")},
        error_rates={"workflow": (0.5, 20), "security": (0.5, 4), "other": (0.05, 100)},
        open_breakers={"workflow": ("echo",), "security": ("x",)},
    )
    got = {(n.alert.rule, n.alert.labels) for n in eng.evaluate(f, now=0)}
    assert got == {
        ("HealFatal", (("component", "a"),)),
        ("Errors", (("component", "workflow"),)),  # security: too few requests; other: under threshold
        ("Breaker", (("component", "workflow"), ("breaker", "echo"))),  # rule limited to workflow
    }


def test_alertmanager_payload_shape() -> None:
    eng = RuleEngine([DOWN.model_copy(update={"for_s": 0})])
    (notice,) = eng.evaluate(facts(a="NOT_SERVING"), now=1_700_000_000)
    body = alertmanager_payload(notice, external_url="http://h:8050/")
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "vigil"
    (alert,) = body["alerts"]
    assert alert["labels"] == {"alertname": "ComponentDown", "severity": "warning", "component": "a"}
    assert alert["startsAt"] == "2023-11-14T22:13:20Z" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["annotations"]["summary"] == "component a is down"
    assert body["groupKey"] == '{}:{alertname="ComponentDown",component="a"}'
    (resolved,) = eng.evaluate(facts(a="SERVING"), now=1_700_000_060)
    body = alertmanager_payload(resolved)
    assert body["status"] == "resolved" and body["alerts"][0]["endsAt"] == "2023-11-14T22:14:20Z"
    assert body["alerts"][0]["fingerprint"] == alert["fingerprint"]


def test_metrics_scrape_counts_server_faults_not_health_traffic() -> None:
    def handled(service: str, code: str, n: int) -> str:
        return f'grpc_server_handled_total{{grpc_service="{service}",grpc_code="{code}"}} {n}'

    text = "\n".join(
        [
            "# TYPE grpc_server_handled_total counter",
            handled("v.W", "OK", 90),
            handled("v.W", "UNAVAILABLE", 7),
            handled("v.W", "INVALID_ARGUMENT", 3),
            handled("grpc.health.v1.Health", "OK", 500),
            "# TYPE vigil_workflow_breaker_state gauge",
            'vigil_workflow_breaker_state{workflow="echo"} 2',
            'vigil_workflow_breaker_state{breaker="ok"} 0',
        ]
    )
    s = MetricsScrape(text + "\n")
    assert (s.total, s.failed, s.open_breakers) == (100, 7, ["echo"])


def test_store_space_low_fires_below_the_reserve_and_resolves_when_space_returns() -> None:
    eng = RuleEngine([AlertRule(name="StoreSpaceLow", kind="store_space_low", severity=Severity.CRITICAL)])
    mib = 1 << 20
    low = Facts(store_space={"/data/runs.db": (10 * mib, 64 * mib), "/other.db": (100 * mib, 64 * mib)})
    (fired,) = eng.evaluate(low, now=0)
    assert (fired.kind, fired.alert.labels) == ("firing", (("store", "/data/runs.db"),))
    assert "10.0 MiB free, below the reserve of 64.0 MiB" in fired.alert.summary
    assert eng.evaluate(low, now=1) == []  # de-duplicated while it holds
    (resolved,) = eng.evaluate(Facts(store_space={"/data/runs.db": (80 * mib, 64 * mib)}), now=2)
    assert resolved.kind == "resolved"
