"""`make run`'s configs expose every process's /metrics on the documented ports (moved here
by the same VIGIL_* variables), and every metric the shipped Grafana dashboard and alert
rules name is one those real processes export."""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from services.common import FailedPrecondition
from services.workflow.client import WorkflowClient, pb
from tests.conftest import REPO, eventually, python_env, stop_group
from tests.deploy._observability import dashboard_exprs, exported_names, metric_names, rule_exprs
from tests.e2e.test_fresh_clone import free_port

pytestmark = pytest.mark.e2e
LOCAL = REPO / "deploy" / "local"


def test_local_configs_use_the_documented_metrics_ports() -> None:
    readme = (REPO / "README.md").read_text()
    for name, port in (("workflow", 9051), ("security", 9052)):
        assert yaml.safe_load((LOCAL / f"{name}.yaml").read_text())["server"]["metrics_port"] == port
        assert f"| {name} | 5005" in readme.replace("  ", " ") and f"`/metrics` {port}" in readme
    assert yaml.safe_load((LOCAL / "healthd.yaml").read_text())["http"]["port"] == 8050


async def _admitted(client: WorkflowClient) -> pb.Run | None:
    try:
        run, _ = await client.start_run("echo", {"x": 1}, wait=True)
    except FailedPrecondition:
        return None
    return run


def _get(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return str(resp.read().decode())


@pytest.mark.timeout(180)
async def test_every_process_serves_metrics_and_the_dashboards_name_real_ones(tmp_path: Path) -> None:
    shutil.copytree(LOCAL, tmp_path / "deploy" / "local")
    ports = {f"VIGIL_{n}_SERVER__PORT": str(free_port()) for n in ("HEALTHD", "WORKFLOW", "SECURITY")}
    metrics = {"healthd": free_port(), "workflow": free_port(), "security": free_port()}
    env = python_env(
        **ports,
        VIGIL_HEALTHD_HTTP__PORT=str(metrics["healthd"]),
        VIGIL_WORKFLOW_SERVER__METRICS_PORT=str(metrics["workflow"]),
        VIGIL_SECURITY_SERVER__METRICS_PORT=str(metrics["security"]),
    )
    log = (tmp_path / "stack.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthd", "--config", "deploy/local/healthd.yaml"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        token_file = tmp_path / ".vigil" / "dev-token"

        async def serving() -> bool:
            body = _get(metrics["healthd"], "/api/health")
            # readiness SERVING: the level is NORMAL again, so StartRun is admitted
            return token_file.exists() and '"readiness": "SERVING"' in body and '"level": "NORMAL"' in body

        try:
            await eventually(serving, timeout=120, interval=0.5)
        except Exception as exc:
            log_text = (tmp_path / "stack.log").read_text()[-3000:]
            raise AssertionError(f"stack not healthy: {exc}\n{log_text}") from exc
        token = token_file.read_text().strip()
        async with WorkflowClient(f"127.0.0.1:{ports['VIGIL_WORKFLOW_SERVER__PORT']}", token=token) as client:
            # the service follows healthd's level over a Watch stream: a moment behind it
            ok = await eventually(lambda: _admitted(client), timeout=20, interval=0.3)
            bad, _ = await client.start_run("flaky", {"failures": 99}, wait=True)
        assert (ok.state, bad.state) == (pb.RUN_STATE_SUCCEEDED, pb.RUN_STATE_FAILED)

        texts = {name: _get(port) for name, port in metrics.items()}
        assert "vigil_healthd_component_up" in texts["healthd"]
        assert 'vigil_workflow_run_transitions_total{state="SUCCEEDED",workflow="echo"}' in texts["workflow"]
        assert "grpc_server_handled_total" in texts["security"]
        exported = set().union(*(exported_names(t) for t in texts.values()))
        for source, exprs in (("Grafana dashboard", dashboard_exprs()), ("alert rules", rule_exprs())):
            named = set().union(*(metric_names(e) for e in exprs))
            assert named, source
            assert named <= exported, f"{source} names metrics nobody exports: {sorted(named - exported)}"
    finally:
        stop_group(proc)  # healthd stops its children, then itself
        log.close()
