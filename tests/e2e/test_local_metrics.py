"""`make run`'s configs expose every process's /metrics (healthd's and each replica's) on the
documented ports (moved here by the same VIGIL_* variables), and every metric the shipped
Grafana dashboard and alert rules name is one those real processes export."""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from bench import free_ports
from services.common import FailedPrecondition
from services.workflow.client import WorkflowClient, pb
from tests.conftest import REPO, eventually, python_env, stop_group
from tests.deploy._observability import dashboard_exprs, exported_names, metric_names, rule_exprs
from tests.e2e.test_fresh_clone import free_port

pytestmark = pytest.mark.e2e
LOCAL = REPO / "deploy" / "local"


def test_local_configs_use_the_documented_metrics_ports() -> None:
    readme = (REPO / "README.md").read_text()
    healthd = yaml.safe_load((LOCAL / "healthd.yaml").read_text())
    assert healthd["http"]["port"] == 8050
    for name, base in (("workflow", 9051), ("security", 9061)):
        (comp,) = [c for c in healthd["components"] if c["name"].startswith(f"vigil.{name}.")]
        env = f"VIGIL_LOCAL_{name.upper()}_METRICS_PORT"
        assert comp["process"]["metrics_port"] == f"${{{env}:-{base}}}"
        ports = ", ".join(str(base + i) for i in range(comp["replicas"]))
        assert f"`/metrics` of replica i on {base - 1}+i: {ports} (base `{env}`)" in readme


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
    bases = {"WORKFLOW": free_ports(2), "SECURITY": free_ports(2)}  # two replicas each
    env = python_env(
        **ports,
        VIGIL_HEALTHD_HTTP__PORT=str(http := free_port()),
        **{f"VIGIL_LOCAL_{n}_HEALTH_PORT": str(free_ports(2)) for n in bases},
        **{f"VIGIL_LOCAL_{n}_METRICS_PORT": str(b) for n, b in bases.items()},
    )
    metrics = {"healthd": http, **{f"{n.lower()}-{i + 1}": b + i for n, b in bases.items() for i in range(2)}}
    log = (tmp_path / "stack.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthd", "--config", "deploy/local/healthd.yaml"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        token_file = tmp_path / ".vigil" / "dev-token"

        async def serving() -> bool:
            body = _get(http, "/api/health")
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
        assert any(
            'vigil_workflow_run_transitions_total{state="SUCCEEDED",workflow="echo"}'
            in texts[f"workflow-{i}"]
            for i in (1, 2)
        )  # whichever replica ran it
        assert all("grpc_server_handled_total" in texts[f"security-{i}"] for i in (1, 2))
        exported = set().union(*(exported_names(t) for t in texts.values()))
        for source, exprs in (("Grafana dashboard", dashboard_exprs()), ("alert rules", rule_exprs())):
            named = set().union(*(metric_names(e) for e in exprs))
            assert named, source
            assert named <= exported, f"{source} names metrics nobody exports: {sorted(named - exported)}"
    finally:
        stop_group(proc)  # healthd stops its children, then itself
        log.close()
