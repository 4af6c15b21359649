"""`vigil`, the one CLI, run as a subprocess against the real local stack (deploy/local) with every
port moved by VIGIL_* variables: health, runs and their history, retries, component control,
size limits and the errors an operator sees."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, python_env
from tests.e2e.vigil_stack import VigilStack, free_port, vigil_argv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

WORKFLOWS = '{stepper: {handler: "tests.e2e.cli_workflows:stepper"}}'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilStack]:
    s = VigilStack.create(tmp_path_factory.mktemp("vigil-stack"), VIGIL_WORKFLOW_WORKFLOWS=WORKFLOWS)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


def test_status_works_unchanged_with_every_port_moved(stack: VigilStack) -> None:
    got = stack.vigil("status")
    assert got.rc == 0, got.err
    assert got.out.startswith("system: HEALTHY")
    assert "vigil.workflow.v1.WorkflowService" in got.out and "vigil.security.v1.SecurityService" in got.out
    health = stack.vigil("status", "--json").json()
    assert {c["name"] for c in health["components"]} >= {
        "workflow-store",
        "vigil.workflow.v1.WorkflowService",
    }
    # The older entry point is an alias sharing the code.
    alias = subprocess.run(
        [sys.executable, "-m", "healthd", "status"],
        cwd=stack.root,
        env=stack.env,
        capture_output=True,
        text=True,
    )
    assert alias.returncode == 0 and alias.stdout.startswith("system: HEALTHY")


def test_probe_has_grpc_health_probe_exit_codes(stack: VigilStack) -> None:
    addr = f"127.0.0.1:{stack.ports['healthd']}"
    assert stack.vigil("probe").rc == 1  # -addr is required, as grpc_health_probe has it
    assert stack.vigil("probe", "-addr", addr).rc == 0
    got = stack.vigil(
        "probe", "-addr", addr, "-service", "vigil.workflow.v1.WorkflowService", "-connect-timeout", "2s"
    )
    assert (got.rc, got.out.strip()) == (0, "status: SERVING")
    assert stack.vigil("probe", "-addr", addr, "-service", "no.such.Service").rc == 3  # NOT_FOUND
    closed = stack.vigil("probe", "-addr", f"127.0.0.1:{free_port()}", "-connect-timeout", "250ms")
    assert closed.rc == 2 and "failed to connect" in closed.err
    bad = stack.vigil("probe", "-addr", addr, "-connect-timeout", "soon")
    assert bad.rc == 1 and "invalid duration" in bad.err
    no_traceback(closed.err, bad.err)


def test_help_lists_every_command() -> None:
    top = subprocess.run([*vigil_argv(), "--help"], capture_output=True, text=True, env=python_env())
    assert top.returncode == 0
    for command in ("status", "watch", "probe", "runs", "workflows", "ctl", "VIGIL_HEALTHD_HTTP__PORT"):
        assert command in top.stdout
    runs = subprocess.run([*vigil_argv(), "runs", "--help"], capture_output=True, text=True, env=python_env())
    for command in ("list", "get", "history", "start", "cancel", "retry", "watch"):
        assert command in runs.stdout
    ctl = subprocess.run([*vigil_argv(), "ctl", "--help"], capture_output=True, text=True, env=python_env())
    for command in ("status", "start", "stop", "restart", "tail", "maintenance", "heal"):
        assert command in ctl.stdout
    daemon = subprocess.run([sys.executable, "-m", "healthd", "--help"], capture_output=True, text=True)
    assert all(f"healthd {c}" in daemon.stdout for c in ("status", "watch", "probe"))


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "vigil"
    if not script.exists():
        pytest.skip("the package is not installed in this interpreter's environment (make venv does)")
    got = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert got.returncode == 0 and "runs" in got.stdout


def test_start_wait_shows_progress_and_get_shows_the_run(stack: VigilStack) -> None:
    got = stack.vigil(
        "runs", "start", "echo", "--params", '{"message": "hi"}', "--label", "team=ops", "--wait"
    )
    assert got.rc == 0, got.err
    # Progress on stderr while waiting (echo may be done before the watch begins: its snapshot).
    # A run created while a slot is free starts with its first attempt (RUNNING); queued: PENDING.
    assert re.search(r"created: (RUNNING|PENDING)", got.err) and ": SUCCEEDED attempt=1" in got.err
    run_id = got.out.split()[1]
    shown = stack.vigil("runs", "get", run_id)
    assert "state:      SUCCEEDED" in shown.out and f"run:        {run_id}" in shown.out
    as_json = stack.vigil("runs", "get", run_id, "--json").json()
    assert as_json["state"] == "RUN_STATE_SUCCEEDED" and as_json["labels"] == {"team": "ops"}
    listed = stack.vigil("runs", "list", "--workflow", "echo", "--state", "succeeded", "--label", "team=ops")
    assert run_id in listed.out and listed.out.startswith("RUN_ID")
    page = stack.vigil("runs", "list", "--json", "--limit", "1").json()
    assert len(page["runs"]) == 1 and page["nextPageToken"]
    catalogue = stack.vigil("workflows")
    assert catalogue.rc == 0 and "echo" in catalogue.out and "stepper" in catalogue.out
    names = {w["name"] for w in stack.vigil("workflows", "--json").json()["workflows"]}
    assert {"echo", "stepper", "flaky"} <= names


def test_cancel_a_waiting_run(stack: VigilStack) -> None:
    started = stack.vigil("runs", "start", "sleep", "--params", '{"seconds": 300}', "--json").json()
    cancelled = stack.vigil("runs", "cancel", started["runId"], "--reason", "operator", "--json").json()
    assert cancelled["state"] == "RUN_STATE_CANCELLED" and "operator" in cancelled["error"]["message"]
    watched = stack.vigil("runs", "watch", started["runId"])
    assert watched.rc == 1  # followed to an end that is not SUCCEEDED


def test_errors_are_one_clear_line(stack: VigilStack, tmp_path: Path) -> None:
    bad = stack.vigil("runs", "start", "echo", "--params", "[1,2]")
    assert (bad.rc, bad.err) == (2, "error: --params must be a JSON object, got a JSON list\n")
    typo = stack.vigil("runs", "start", "ehco")
    assert typo.rc == 2 and "did you mean 'echo'?" in typo.err
    unknown = stack.vigil("runs", "get", "f" * 32)
    assert unknown.rc == 2 and unknown.err.startswith("error: NOT_FOUND: run")
    # Outside the stack's directory, without VIGIL_TOKEN: every place tried is named.
    lost = stack.vigil("runs", "list", cwd=tmp_path)
    assert lost.rc == 2
    for place in (
        "--token",
        "--token-file",
        "$VIGIL_TOKEN",
        str(tmp_path / ".vigil" / "dev-token"),
        "not found",
    ):
        assert place in lost.err
    token = (stack.root / ".vigil" / "dev-token").read_text().strip()
    assert stack.vigil("runs", "list", cwd=tmp_path, env={**stack.env, "VIGIL_TOKEN": token}).rc == 0
    missing_file = stack.vigil("runs", "list", "--token-file", str(tmp_path / "nope"))
    assert missing_file.rc == 2 and "nope (not found)" in missing_file.err
    no_traceback(bad.err, typo.err, unknown.err, lost.err, missing_file.err)


def test_oversized_params_name_the_documented_limit(stack: VigilStack, tmp_path: Path) -> None:
    for size in (5 << 20, 10 << 20):
        params = tmp_path / f"params-{size}.json"
        params.write_text(json.dumps({"blob": "x" * size}))
        got = stack.vigil("runs", "start", "echo", "--params", f"@{params}")
        assert got.rc == 2
        assert got.err.startswith("error: INVALID_ARGUMENT: request is ")
        assert f"limit of {4 << 20} bytes (server.max_message_bytes)" in got.err
    big_params = tmp_path / "params-300k.json"
    big_params.write_text(json.dumps({"blob": "x" * 300_000}))
    got = stack.vigil("runs", "start", "echo", "--params", f"@{big_params}")
    assert got.rc == 2 and got.err.startswith("error: INVALID_ARGUMENT: params:")


def _steps(stack: VigilStack, run_id: str) -> dict[str, dict]:
    run = stack.vigil("runs", "get", run_id, "--json").json()
    return {s["name"]: s for s in run.get("steps", [])}


def test_history_retry_and_resume(stack: VigilStack) -> None:
    fault = stack.root / "step-two-fails"
    fault.touch()
    params = json.dumps({"fail_while": str(fault)})
    failed = stack.vigil("runs", "start", "stepper", "--params", params, "--wait", "--json")
    assert failed.rc == 1
    run = failed.json()
    assert run["state"] == "RUN_STATE_FAILED" and run["attempts"] == 2
    steps = _steps(stack, run["runId"])
    assert steps["one"]["completed"] and not steps["two"].get("completed")
    assert "dependency refused" in steps["two"]["error"]["message"] and "duration" in steps["two"]

    history = stack.vigil("runs", "history", run["runId"])
    assert history.rc == 0 and history.out.splitlines()[1].startswith("ID")
    kinds = [
        e["type"].removeprefix("HISTORY_EVENT_TYPE_")
        for e in stack.vigil("runs", "history", run["runId"], "--json").json()["events"]
    ]
    assert kinds == [
        "RUN_CREATED",
        "ATTEMPT_STARTED",
        "STEP_STARTED",
        "STEP_FINISHED",
        "STEP_STARTED",
        "STEP_FAILED",
        "ATTEMPT_FAILED",
        "RETRY_SCHEDULED",
        "ATTEMPT_STARTED",
        "STEP_STARTED",
        "STEP_FAILED",
        "ATTEMPT_FAILED",
        "RUN_FINISHED",
    ]
    assert "RETRY_SCHEDULED" in history.out and "backoff=" in history.out and "state=FAILED" in history.out

    fault.unlink()
    resumed = stack.vigil("runs", "retry", run["runId"], "--resume", "--wait", "--json")
    assert resumed.rc == 0, resumed.err
    new = resumed.json()
    assert (new["retryOf"], new["resumed"], new["result"]) == (run["runId"], True, {"one": 1, "two": 2})
    steps = _steps(stack, new["runId"])
    assert steps["one"].get("executions", 0) == 0 and steps["two"]["executions"] == 1  # one was not re-run
    again = stack.vigil("runs", "retry", run["runId"], "--wait", "--json").json()
    assert _steps(stack, again["runId"])["one"]["executions"] == 1  # a plain retry runs every step
    still_running = stack.vigil("runs", "start", "sleep", "--params", '{"seconds": 300}', "--json").json()
    refused = stack.vigil("runs", "retry", still_running["runId"])
    assert refused.rc == 2 and "FAILED_PRECONDITION" in refused.err
    stack.vigil("runs", "cancel", still_running["runId"])


def test_ctl_status_and_maintenance_with_short_names(stack: VigilStack) -> None:
    status = stack.vigil("ctl", "status")
    assert status.rc == 0 and "workflow " in status.out and "security " in status.out
    on = stack.vigil("ctl", "maintenance", "on", "security", "--reason", "cli test")
    assert on.rc == 0, on.err
    assert "vigil.security.v1.SecurityService: maintenance on" in on.out
    health = stack.vigil("status", "--json").json()
    by_name = {c["name"]: c for c in health["components"]}
    assert by_name["vigil.security.v1.SecurityService"].get("maintenance") is True
    assert stack.vigil("ctl", "maintenance", "off", "security").rc == 0
    unknown = stack.vigil("ctl", "maintenance", "on", "nonesuch")
    assert unknown.rc == 2 and "NOT_FOUND" in unknown.err


def test_ctl_restart_and_tail(stack: VigilStack) -> None:
    before = {c["name"]: c for c in stack.vigil("status", "--json").json()["components"]}
    got = stack.vigil("ctl", "restart", "workflow")
    assert got.rc == 0, got.err
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = {c["name"]: c for c in stack.vigil("status", "--json").json()["components"]}
        wf = now["vigil.workflow.v1.WorkflowService"]
        if (
            wf.get("pid") != before["vigil.workflow.v1.WorkflowService"].get("pid")
            and wf.get("status") == "COMPONENT_STATUS_SERVING"
        ):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the workflow component did not come back with a new pid")
    tail = stack.vigil("ctl", "tail", "workflow", "-n", "5")
    assert tail.rc == 0 and tail.out.strip(), tail.err


def test_watch_exits_non_zero_when_the_daemon_goes_away(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "healthd.yaml"
    config.write_text(f"server: {{port: {port}, grace_period_s: 1}}\nhttp: {{port: 0}}\ncomponents: []\n")
    env = python_env(PYTHONPATH=str(REPO))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "healthd", "--config", str(config)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(
            [*vigil_argv(), "probe", "-addr", f"127.0.0.1:{port}"], env=env, capture_output=True
        ).returncode:
            assert time.monotonic() < deadline, "healthd did not start"
            time.sleep(0.2)
        watch = subprocess.Popen(
            [*vigil_argv(), "watch", "-addr", f"127.0.0.1:{port}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert watch.stdout is not None
        assert watch.stdout.readline().startswith("== system")  # the stream is up
        daemon.terminate()
        _, err = watch.communicate(timeout=60)
        assert watch.returncode == 3 and err.startswith("error:"), err
        no_traceback(err)
    finally:
        daemon.kill()
        daemon.wait(10)


def test_readme_operating_section_matches_the_cli() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Operating Vigil", 1)[1].split("\n## ", 1)[0]
    for needle in ("VIGIL_HEALTHD_HTTP__PORT", "VIGIL_TOKEN", ".vigil/dev-token", "grpcurl", "--json"):
        assert needle in section
    commands = {
        tuple(line.split()[1 : 3 if line.split()[1] in ("runs", "ctl") else 2])
        for line in section.splitlines()
        if line.startswith("vigil ")
    }
    assert len(commands) >= 12
    for command in sorted(commands):  # every command the README shows exists
        got = subprocess.run(
            [*vigil_argv(), *command, "--help"], capture_output=True, text=True, env=python_env()
        )
        assert got.returncode == 0, (command, got.stderr)
