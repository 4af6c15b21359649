"""The dashboard's operator side in headless Chromium against a real stack (security and
workflow processes, healthd in-process): a token typed into the page shows the runs view
(state counts, throughput, a run's steps), and the component controls act with it."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from healthd._daemon import Daemon
from services.security import Level, new_key
from services.workflow.client import WorkflowClient, pb
from tests.browser import Browser, Page, chromium_path
from tests.conftest import REPO, eventually, python_env
from tests.e2e.test_workflow_crash import _write
from tests.healthd_util import config
from tests.obs_support import OtlpReceiver

pytestmark = pytest.mark.e2e
SEC, WF = "vigil.security.v1.SecurityService", "vigil.workflow.v1.WorkflowService"
SHOTS = Path(os.environ["VIGIL_SCREENSHOTS"]) if os.environ.get("VIGIL_SCREENSHOTS") else None
TRACE_UI = "http://jaeger.invalid:16686/trace/{trace_id}"


@pytest.fixture(autouse=True)
def _require_chromium() -> None:
    if chromium_path() is None:
        pytest.fail("Debian's chromium is not installed: apt-get install chromium (as .ci/run does)")


def _grpc(name: str, port: int, **extra: Any) -> dict[str, Any]:
    check = {"kind": "grpc", "address": f"127.0.0.1:{port}", "service": name, "interval_s": 0.3}
    return {"name": name, "checks": [check], **extra}


async def _stack(spawn: Any, tmp: Path, entries: list[Any], otlp_endpoint: str) -> tuple[int, int]:
    keys = [e.model_dump(mode="json") for e in entries]
    sec_cfg = _write(
        tmp / "security.yaml",
        {"server": {"port": 0}, "auth": {"api_keys": keys}, "audit": {"db_path": str(tmp / "audit.db")}},
    )
    sec = spawn("-m", "services.security", "--config", str(sec_cfg))
    sec_port = await asyncio.to_thread(sec.wait_for_port)
    wf_cfg = _write(
        tmp / "workflow.yaml",
        {
            "server": {"port": 0},
            "store_path": str(tmp / "runs.db"),
            "security_address": f"127.0.0.1:{sec_port}",
            "healthd_address": None,
            "load_entry_points": False,
            "workflows": {"example.pipeline": {"handler": "vigil_examples.pipeline:pipeline"}},
        },
    )
    # traced (to a receiver this test owns), so each run has a trace id to link to
    env = python_env(PYTHONPATH=str(REPO / "examples"), OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint)
    wf = spawn("-m", "services.workflow", "--config", str(wf_cfg), env=env)
    return sec_port, await asyncio.to_thread(wf.wait_for_port)


async def _text(page: Page, selector: str) -> str:
    return str(await page.eval(f"document.querySelector({json.dumps(selector)})?.textContent || ''"))


async def test_runs_view_and_controls_with_a_typed_token(spawn: Any, tmp_path: Path) -> None:
    admin, admin_entry = new_key("ops", Level.ADMIN, n=1 << 4)
    viewer, viewer_entry = new_key("viewer", Level.AUTHENTICATED, n=1 << 4)
    rx = OtlpReceiver()
    sec_port, wf_port = await _stack(spawn, tmp_path, [admin_entry, viewer_entry], await rx.start())
    async with WorkflowClient(f"127.0.0.1:{wf_port}", token=admin) as client:
        for n in range(3):
            run, _ = await client.start_run("example.pipeline", {"items": ["a", "b" * n]}, wait=True)
            assert run.state == pb.RUN_STATE_SUCCEEDED
            trace_id = client.last_trace_id
        failed, _ = await client.start_run("flaky", {"failures": 99}, wait=True)
        assert failed.state == pb.RUN_STATE_FAILED
    cfg = config(
        server={"port": 0},
        http={"port": 0},
        mode="sidecar",
        auth={"api_keys": [admin_entry.model_dump(mode="json"), viewer_entry.model_dump(mode="json")]},
        dashboard={"workflow_address": f"127.0.0.1:{wf_port}", "trace_url": TRACE_UI},
        components=[_grpc(SEC, sec_port), _grpc(WF, wf_port, depends_on=[SEC])],
    )
    daemon = Daemon(cfg, sink=lambda _line: None)
    await daemon.start()
    browser = Browser()
    try:
        page = await browser.open(daemon.dashboard.url)
        await eventually(lambda: page.eval("!document.getElementById('runs-section').hidden"), 20, 0.2)
        assert "enter a token" in await _text(page, "#runs-msg")
        assert await page.eval("getComputedStyle(document.querySelector('.controls')).display") == "none"

        await page.eval(
            f"document.getElementById('token').value = {json.dumps(admin)};"
            "document.getElementById('token-form').requestSubmit()"
        )
        await eventually(lambda: page.eval("document.querySelectorAll('#runs .run-row').length === 4"), 10)
        assert await page.eval("sessionStorage.getItem('vigil.token')") == admin  # the tab holds it
        counts = await page.eval(
            "Object.fromEntries([...document.querySelectorAll('.count-chip')]"
            ".map(c => [c.dataset.state, c.querySelector('b').textContent]))"
        )
        assert counts["SUCCEEDED"] == "3" and counts["FAILED"] == "1"
        assert "failure rate 25%" in await _text(page, "#run-rates")
        assert await page.eval(
            "[...document.querySelectorAll('#run-chart rect.bad')].some(r => +r.getAttribute('height') > 0)"
        )

        # a run's detail: its persisted steps, its error
        first = await page.eval(
            "document.querySelector('#runs .run-row[data-state=SUCCEEDED]').dataset.runId"
        )
        await page.eval(f"document.querySelector('#runs .run-row[data-run-id=\"{first}\"]').click()")
        await eventually(
            lambda: page.eval(f"document.getElementById('run-detail').dataset.runId === '{first}'"), 5
        )
        steps = await page.eval(
            "[...document.querySelectorAll('#run-detail .step td:first-child')].map(t => t.textContent)"
        )
        assert steps == ["fetch", "transform", "summarize"]
        history = await page.eval(
            "[...document.querySelectorAll('#run-detail .history-event')].map(e => e.dataset.type)"
        )
        assert history[0] == "RUN_CREATED" and history[-1] == "RUN_FINISHED" and "STEP_FINISHED" in history
        # the newest succeeded run is the last one started: its trace id is the one the client got
        link = await page.eval("document.querySelector('#run-detail a.trace-link')?.href")
        assert len(trace_id) == 32 and link == TRACE_UI.format(trace_id=trace_id)
        await page.eval(f"document.querySelector('#runs .run-row[data-run-id=\"{failed.run_id}\"]').click()")
        await eventually(lambda: page.eval("document.querySelector('#run-detail .last-error') !== null"), 5)
        assert "injected failure" in await _text(page, "#run-detail .last-error")
        if SHOTS:
            await page.eval("document.getElementById('runs-section').scrollIntoView()")
            await page.screenshot(SHOTS / "dashboard-runs.png")

        # controls: maintenance on through the page, refused heal shows why
        wf_card = f'[data-component="{WF}"]'
        await page.eval(f"document.querySelector('{wf_card} button[data-action=maintenance_on]').click()")
        await eventually(lambda: daemon.engine.snapshot().components[1].maintenance, 5)
        await eventually(
            lambda: page.eval(
                f"document.querySelector('{wf_card} button[data-action=maintenance_off]') !== null"
            ),
            5,
        )
        assert f"maintenance_on {WF}: maintenance on" == await _text(page, "#control-msg")
        await page.eval(
            f"document.querySelector('[data-component=\"{SEC}\"] button[data-action=heal]').click()"
        )
        await eventually(
            lambda: page.eval("document.getElementById('control-msg').textContent.includes('409')"), 5
        )
        assert "no healing action" in await _text(page, "#control-msg")

        # a token below ADMIN: runs still readable, controls refused
        await page.eval(
            f"document.getElementById('token').value = {json.dumps(viewer)};"
            "document.getElementById('token-form').requestSubmit()"
        )
        await page.eval(f"document.querySelector('{wf_card} button[data-action=maintenance_off]').click()")
        await eventually(
            lambda: page.eval("document.getElementById('control-msg').textContent.includes('403')"), 5
        )
        assert daemon.engine.snapshot().components[1].maintenance
        await page.eval("document.getElementById('token-clear').click()")
        assert await page.eval("sessionStorage.getItem('vigil.token')") is None
    finally:
        await browser.close()
        await daemon.stop()
        await rx.stop()
