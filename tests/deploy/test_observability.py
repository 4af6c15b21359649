"""The shipped alert rules, Grafana dashboard and Prometheus Operator manifests: promtool
checks the rules and runs their unit tests, the PrometheusRule carries exactly the plain
rules, the dashboard is well-formed and all its PromQL parses, and the ServiceMonitors
point at named ports of the real Services. (That every metric they name is really exported
is checked against a live scrape in tests/e2e/test_local_metrics.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy._load import documents
from tests.deploy._observability import (
    MONITORING,
    RULES,
    RULES_TEST,
    as_recording_rules,
    dashboard,
    dashboard_exprs,
    metric_names,
    panels,
    rule_exprs,
    rules,
)


def _promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing under CI: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return exe


def _run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_promtool_checks_the_rules() -> None:
    out = _run(_promtool(), "check", "rules", str(RULES))
    assert f"SUCCESS: {len(rule_exprs())} rules found" in out


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    out = _run(_promtool(), "test", "rules", str(RULES_TEST))
    assert "SUCCESS" in out


def test_promtool_fails_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit test can fail: the same test expecting the wrong severity does."""
    shutil.copy(RULES, tmp_path / RULES.name)
    wrong = RULES_TEST.read_text().replace("severity: critical", "severity: info", 1)
    (tmp_path / "wrong.test.yaml").write_text(wrong)
    proc = subprocess.run([_promtool(), "test", "rules", str(tmp_path / "wrong.test.yaml")],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode != 0 and "VigilComponentDown" in proc.stdout + proc.stderr


def test_prometheusrule_carries_exactly_the_plain_rules() -> None:
    manifest = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert manifest["spec"] == rules()
    kubernetes_validate.validate(  # its metadata is an ordinary ObjectMeta
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": manifest["metadata"]}, "1.29.0", strict=True
    )


def test_every_alert_has_severity_and_summary() -> None:
    for group in rules()["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            assert rule["alert"].startswith("Vigil")


_TARGET = {
    "type": "object",
    "required": ["refId", "expr", "datasource"],
    "properties": {"refId": {"type": "string", "minLength": 1}, "expr": {"type": "string", "minLength": 1}},
}
_PANEL = {
    "type": "object",
    "required": ["id", "type", "title", "gridPos"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "type": {"enum": ["row", "stat", "timeseries", "gauge", "table", "bargauge"]},
        "title": {"type": "string", "minLength": 1},
        "gridPos": {
            "type": "object",
            "required": ["x", "y", "w", "h"],
            "properties": {k: {"type": "integer", "minimum": 0} for k in "xywh"},
        },
        "targets": {"type": "array", "items": _TARGET},
        "datasource": {"type": "object", "properties": {"uid": {"const": "${datasource}"}}},
    },
}
_DASHBOARD = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "panels": {"type": "array", "minItems": 1, "items": _PANEL},
        "templating": {"type": "object", "required": ["list"]},
    },
}


def test_grafana_dashboard_structure() -> None:
    dash = dashboard()
    jsonschema.validate(dash, _DASHBOARD)
    every = panels(dash)
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    cells: set[tuple[int, int]] = set()
    for p in every:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        covered = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not covered & cells, f"panel {p['title']!r} overlaps another"
        cells |= covered
        if p["type"] != "row":
            assert p["targets"], p["title"]
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), p["title"]
            assert all(metric_names(t["expr"]) for t in p["targets"]), p["title"]


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    rules_file = as_recording_rules(dashboard_exprs(), tmp_path / "dashboard-exprs.yaml")
    out = _run(_promtool(), "check", "rules", str(rules_file))
    assert f"SUCCESS: {len(dashboard_exprs())} rules found" in out


def _service(labels: dict[str, str]) -> dict[str, Any]:
    (svc,) = [
        d
        for _, d in documents()
        if d["kind"] == "Service" and labels.items() <= d["metadata"].get("labels", {}).items()
    ]
    return svc


def test_servicemonitors_select_real_services_and_ports() -> None:
    monitors = [d for d in yaml.safe_load_all((MONITORING / "servicemonitors.yaml").read_text()) if d]
    assert {m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for m in monitors} == {
        "workflow",
        "security",
    }
    for m in monitors:
        assert (m["apiVersion"], m["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
        svc = _service(m["spec"]["selector"]["matchLabels"])
        ports = {p["name"] for p in svc["spec"]["ports"]}
        for ep in m["spec"]["endpoints"]:
            assert ep["port"] in ports, (m["metadata"]["name"], ep["port"])
            assert ep["path"] == "/metrics"


def test_monitoring_kustomization_lists_every_file() -> None:
    kust = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    listed = set(kust["resources"]) | {f for g in kust["configMapGenerator"] for f in g["files"]}
    on_disk = {p.name for p in MONITORING.iterdir()} - {"kustomization.yaml"}
    assert listed == on_disk
    (gen,) = kust["configMapGenerator"]
    assert gen["options"]["labels"] == {"grafana_dashboard": "1"}
