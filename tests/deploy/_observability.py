"""The shipped observability files and what their expressions reference."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO

RULES = REPO / "deploy" / "prometheus" / "vigil-rules.yaml"
RULES_TEST = REPO / "deploy" / "prometheus" / "vigil-rules.test.yaml"
MONITORING = REPO / "deploy" / "k8s" / "monitoring"
DASHBOARD = MONITORING / "vigil-dashboard.json"
# Series the services export (Prometheus's own `up` and friends are not theirs).
_OURS = re.compile(r"\b(?:vigil|grpc)_[a-zA-Z0-9_]+\b")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# Label names: inside matchers {...} and grouping clauses such as `by (le, component)`.
_LABELS = re.compile(r"\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def rules() -> dict[str, Any]:
    return dict(yaml.safe_load(RULES.read_text()))


def rule_exprs() -> list[str]:
    return [r["expr"] for g in rules()["groups"] for r in g["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in panels(dashboard()) for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """Names of our series an expression reads (label values in quotes are not names)."""
    return set(_OURS.findall(_LABELS.sub(" ", _STRING.sub('""', expr))))


def exported_names(text: str) -> set[str]:
    """Series names in a /metrics exposition, with each family's suffixed sample names
    (``_total``, ``_bucket``/``_sum``/``_count``) even while it has no sample yet."""
    names: set[str] = set()
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["_sum", "_count"],
    }
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        names.update(fam.name + s for s in suffixes.get(fam.type, []))
        names.update(s.name for s in fam.samples)
    return names


def as_recording_rules(exprs: list[str], path: Path) -> Path:
    """Dashboard expressions as a rules file, so promtool parses each PromQL expression."""
    concrete = [e.replace("$namespace", ".*") for e in exprs]
    rules = [{"record": f"vigil:dashboard_expr_{i}", "expr": e} for i, e in enumerate(concrete)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return path
