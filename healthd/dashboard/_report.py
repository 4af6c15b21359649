"""A self-contained, printable HTML report of one dashboard state (no scripts, no assets)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

__all__ = ["render_report", "sparkline_svg"]

_CSS = """\
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1c2330;
  margin:32px;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.meta{color:#5b6474} table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e7ee;vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6474}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
  background:#eef1f6}
.serving,.healthy,.info{background:#dcf5e6;color:#146c3b}
.not_serving,.unhealthy,.critical{background:#fde2e2;color:#a12828}
.degraded,.warning,.unknown{background:#fff1d6;color:#8a5a00}
.crit{font-size:11px;color:#a12828} .sub{color:#5b6474;font-size:12px}
.kpi{display:flex;gap:28px;margin:16px 0} .kpi div b{display:block;font-size:20px}
"""


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"


def sparkline_svg(points: list[list[Any]], width: int = 160, height: int = 32) -> str:
    """Latency points [(t, ms, status)] as an inline SVG polyline; failures as red dots."""
    if not points:
        return '<svg class="spark" width="160" height="32"></svg>'
    values = [float(p[1]) for p in points]
    top = max(values) or 1.0
    step = width / max(1, len(points) - 1)
    xy = [(i * step, height - 2 - (v / top) * (height - 4)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#d64545"/>'
        for (x, y), p in zip(xy, points, strict=True)
        if p[2] != "SERVING"
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline points="{line}" fill="none" stroke="#3b82f6" stroke-width="1.5"/>{dots}</svg>'
    )


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _pill(text: str) -> str:
    return f'<span class="pill {escape(text.lower())}">{escape(text)}</span>'


def render_report(state: dict[str, Any]) -> str:
    system = state["system"]
    comps = "".join(
        _row(
            [
                f"<b>{escape(c['name'])}</b>"
                + (' <span class="crit">critical</span>' if c["critical"] else ""),
                _pill(c["status"]) + (f"<div class=sub>{escape(c['reason'])} {escape(c['cause'])}</div>"),
                escape(c["heal_state"]) + f"<div class=sub>{c['heal_attempts']} attempts</div>",
                "<br>".join(
                    f"{escape(k['kind'])}: {k['latency_ms']:.1f} ms {escape(k['message'])}"
                    for k in c["checks"]
                ),
                sparkline_svg(c["latency"]),
            ]
        )
        for c in state["components"]
    )
    alerts = (
        "".join(
            _row(
                [
                    _pill(a["severity"]),
                    escape(a["rule"]),
                    escape(a["state"]),
                    escape(a["summary"]),
                    _time(a["since"]),
                ]
            )
            for a in state["alerts"]
        )
        or '<tr><td colspan="5" class="sub">No alerts.</td></tr>'
    )
    events = (
        "".join(
            _row([_time(e["at"]), escape(e["kind"]), escape(e["component"]), escape(e["message"])])
            for e in state["events"]
        )
        or '<tr><td colspan="4" class="sub">No events.</td></tr>'
    )
    title = escape(state.get("title", "Vigil"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} health report</title>
<style>
{_CSS}</style></head><body>
<h1>{title} health report</h1>
<div class="meta">Generated {_time(state["generated_at"])}</div>
<div class="kpi">
<div>System<b>{_pill(system["status"])}</b></div><div>Score<b>{system["score"]}</b></div>
<div>Degradation level<b>{escape(system["level"])}</b></div>
<div>Liveness<b>{escape(system["liveness"])}</b></div><div>Readiness<b>{escape(system["readiness"])}</b></div>
</div>
<h2>Components</h2>
<table><tr><th>Component</th><th>Status</th><th>Healing</th><th>Checks</th><th>Latency</th></tr>{comps}</table>
<h2>Alerts</h2>
<table><tr><th>Severity</th><th>Alert</th><th>State</th><th>Summary</th><th>Since</th></tr>{alerts}</table>
<h2>Recent events</h2>
<table><tr><th>Time</th><th>Kind</th><th>Component</th><th>Message</th></tr>{events}</table>
</body></html>
"""
