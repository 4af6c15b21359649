"""Alert correlation with a driven clock: a dependency's failure pages once, under its own
alert, with the alerts it caused grouped in; dependents page on their own only when they
fail by themselves (or stay down after the root recovered and the grace ran out)."""

from __future__ import annotations

from healthd.alerts import AlertRule, ComponentFact, Facts, RuleEngine, Severity, alertmanager_payload

DOWN = AlertRule(name="ComponentDown", kind="component_down", severity=Severity.CRITICAL, for_s=2)


def down(**causes: str) -> Facts:
    """Every named component NOT_SERVING; the value names its root cause ("" = its own failure)."""
    comps = {n: ComponentFact("NOT_SERVING", "HEALTHY", cause) for n, cause in causes.items()}
    return Facts(components={"db": ComponentFact("SERVING", "HEALTHY"), **comps})


def test_root_cause_pages_once_with_its_dependents_grouped() -> None:
    eng = RuleEngine([DOWN], inhibit_grace_s=5)
    fault = down(db="", app="db", web="db")
    assert eng.evaluate(fault, now=0) == []
    (page,) = eng.evaluate(fault, now=2)
    assert (page.kind, page.alert.component) == ("firing", "db")
    assert [(a.component, a.caused_by) for a in page.related] == [("app", "db"), ("web", "db")]
    body = alertmanager_payload(page)
    assert [a["labels"]["component"] for a in body["alerts"]] == ["db", "app", "web"]
    assert body["groupLabels"] == {"alertname": "ComponentDown", "component": "db"}
    assert body["alerts"][1]["annotations"]["caused_by"] == "db"
    assert body["commonLabels"] == {"alertname": "ComponentDown", "severity": "critical"}
    assert eng.evaluate(fault, now=10) == []  # de-duplicated, dependents still inhibited
    shown = {a.component: a.caused_by for a in eng.alerts()}
    assert shown == {"db": "", "app": "db", "web": "db"}  # the dashboard shows the grouping

    # the root recovers and its dependents follow within the grace: one resolve, grouped
    (resolved,) = eng.evaluate(down(app="", web=""), now=11)
    assert (resolved.kind, resolved.alert.component) == ("resolved", "db")
    assert {a.component for a in resolved.related} == {"app", "web"}
    assert eng.evaluate(Facts(components={"db": ComponentFact("SERVING", "HEALTHY")}), now=12) == []


def test_dependent_still_down_after_the_grace_pages_on_its_own() -> None:
    eng = RuleEngine([DOWN], inhibit_grace_s=5)
    eng.evaluate(down(db="", app="db"), now=0)
    eng.evaluate(down(db="", app="db"), now=2)
    (resolved,) = eng.evaluate(down(app=""), now=3)  # db is back, app still fails by itself
    assert resolved.alert.component == "db"
    assert eng.evaluate(down(app=""), now=7.9) == []  # within the grace
    (page,) = eng.evaluate(down(app=""), now=8)
    assert (page.kind, page.alert.component, page.alert.caused_by, page.related) == ("firing", "app", "", ())
    (done,) = eng.evaluate(Facts(), now=9)
    assert (done.kind, done.alert.component) == ("resolved", "app")


def test_independent_failures_each_page() -> None:
    eng = RuleEngine([DOWN])
    eng.evaluate(down(db="", app=""), now=0)
    pages = eng.evaluate(down(db="", app=""), now=2)
    assert sorted((p.alert.component, p.related) for p in pages) == [("app", ()), ("db", ())]


def test_no_inhibition_without_an_alert_on_the_root() -> None:
    """A dependency no rule watches cannot page, so what it causes is not held back."""
    rule = AlertRule(name="AppDown", kind="component_down", component="app", for_s=0)
    eng = RuleEngine([rule])
    (page,) = eng.evaluate(down(db="", app="db"), now=0)
    assert (page.alert.component, page.alert.caused_by) == ("app", "")
