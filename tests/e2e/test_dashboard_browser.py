"""The dashboard in headless Chromium: it renders every component, and when a supervised
service is killed the open page shows it down (and the alert firing) without a reload."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from healthd._daemon import Daemon
from tests.browser import Browser, chromium_path
from tests.conftest import eventually
from tests.healthd_util import config
from tests.integration.healthd.conftest import free_port, grpc_service

# No skip when chromium is missing: CI installs it (.ci/run), so its absence is a failure to see.
pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _require_chromium() -> None:
    if chromium_path() is None:
        pytest.fail("Debian's chromium is not installed: apt-get install chromium (as .ci/run does)")


SEC, WF = "vigil.security.v1.SecurityService", "vigil.workflow.v1.WorkflowService"
SHOTS = Path(os.environ.get("VIGIL_SCREENSHOTS", "")) if os.environ.get("VIGIL_SCREENSHOTS") else None


def _child(name: str, port: int, *, critical: bool, action: str) -> dict[str, object]:
    comp = grpc_service(name, port)
    comp["critical"] = critical
    comp["healing"] = {"action": action}
    return comp


def _status(name: str) -> str:
    return f"document.querySelector('[data-component=\"{name}\"]')?.dataset.status || ''"


async def test_page_renders_and_follows_a_kill_live(tmp_path: Path) -> None:
    cfg = config(
        server={"port": 0},
        http={"port": 0},
        components=[
            _child(SEC, free_port(), critical=True, action="none"),
            _child(WF, free_port(), critical=False, action="restart"),
            {"name": "disk", "checks": [{"kind": "exec", "argv": [sys.executable, "-c", "pass"]}]},
        ],
        alerts={
            "evaluate_interval_s": 0.1,
            "rules": [{"name": "ComponentDown", "kind": "component_down", "for_s": 0.5}],
        },
    )
    daemon = Daemon(cfg, sink=lambda _line: None)
    await daemon.start()
    browser = Browser()
    try:
        page = await browser.open(daemon.dashboard.url)

        async def all_serving() -> bool:
            statuses = [await page.eval(_status(n)) for n in (SEC, WF, "disk")]
            return statuses == ["SERVING"] * 3

        await eventually(all_serving, timeout=20, interval=0.2)
        assert await page.eval("document.getElementById('system-status').textContent") == "HEALTHY"
        assert await page.eval("document.getElementById('score').textContent") == "100"
        assert await page.eval("document.getElementById('live-text').textContent") == "live"
        # a sparkline per component once checks have run
        await eventually(lambda: page.eval("document.querySelectorAll('.comp polyline').length === 3"), 10)
        await page.eval("window.__notReloaded = true")
        if SHOTS:
            await page.screenshot(SHOTS / "dashboard-healthy.png")

        pid = daemon.engine.supervisor.children[SEC].pid
        assert pid
        os.kill(pid, signal.SIGKILL)

        await eventually(lambda: page.eval(f"{_status(SEC)} === 'NOT_SERVING'"), timeout=10, interval=0.1)
        assert await page.eval("window.__notReloaded === true")  # same page, updated over SSE
        # the failing card says why (the failing check's latest error), not its last good latency
        card = f"document.querySelector('[data-component=\"{SEC}\"]')"
        error = await eventually(lambda: page.eval(f"{card}.querySelector('.last-error')?.textContent"), 5)
        assert error.split(":")[0] in ("grpc", "process"), error
        assert await page.eval(f"{card}.querySelector('.latency') === null")
        assert await page.eval(f"document.querySelector('[data-component=\"{WF}\"] .latency') !== null")
        await eventually(
            lambda: page.eval("document.getElementById('system-status').textContent === 'UNHEALTHY'"), 5
        )
        await eventually(
            lambda: page.eval(
                "[...document.querySelectorAll('#alerts .alert')]"
                ".some(a => a.dataset.rule === 'ComponentDown' && a.dataset.state === 'firing')"
            ),
            timeout=10,
        )
        events = await page.eval("document.getElementById('events').textContent")
        assert "PROCESS" in events and SEC in events
        assert await page.eval(_status(WF)) == "SERVING"
        shot = await page.screenshot((SHOTS or tmp_path) / "dashboard-down.png")
        assert shot.stat().st_size > 10_000
    finally:
        await browser.close()
        await daemon.stop()
