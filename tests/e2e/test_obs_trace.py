"""One StartRun across two real processes (workflow -> security), traced to a real OTLP
receiver and counted on both processes' /metrics."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from services.common import NotFound
from services.security import Level, new_key
from services.workflow.client import WorkflowClient, pb
from tests.conftest import REPO, Proc, eventually, python_env
from tests.e2e.test_workflow_crash import _write
from tests.obs_support import OtlpReceiver, key, scrape

pytestmark = pytest.mark.e2e

SERVER, CLIENT, INTERNAL = 2, 3, 1
WF = "vigil.workflow.v1.WorkflowService"
SEC = "vigil.security.v1.SecurityService"


def _metrics_port(proc: Proc) -> int:
    for line in proc.lines:
        if line.startswith("{") and "metrics_port" in line:
            return int(json.loads(line)["metrics_port"])
    raise AssertionError("no metrics line: " + "".join(proc.lines))


def _stop(proc: Proc) -> None:
    proc.popen.send_signal(signal.SIGTERM)  # graceful: flushes queued spans
    assert proc.popen.wait(20) == 0


async def test_start_run_is_one_trace_across_workflow_and_security(spawn, tmp_path: Path) -> None:
    rx = OtlpReceiver()
    endpoint = await rx.start()
    # A 10-minute batch delay: every span must arrive through the flush on graceful shutdown.
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_TRACES_SAMPLER": "always_on",  # the run under test must be recorded, not one in ten
    }
    try:
        token, entry = new_key("e2e", Level.AUTHENTICATED, n=1 << 4)
        sec_cfg = _write(
            tmp_path / "security.yaml",
            {
                "server": {"port": 0, "metrics_port": 0, "grace_period_s": 1},
                "auth": {"api_keys": [entry.model_dump(mode="json")]},
                "audit": {"db_path": str(tmp_path / "audit.db")},
            },
        )
        sec = spawn("-m", "services.security", "--config", str(sec_cfg), env=python_env(**otel))
        sec_port = await asyncio.to_thread(sec.wait_for_port)
        wf_cfg = _write(
            tmp_path / "workflow.yaml",
            {
                "server": {"port": 0, "metrics_port": 0, "grace_period_s": 1},
                "store_path": str(tmp_path / "runs.db"),
                "security_address": f"127.0.0.1:{sec_port}",
                "healthd_address": None,
                "load_entry_points": False,
                "workflows": {"example.pipeline": {"handler": "vigil_examples.pipeline:pipeline"}},
            },
        )
        env = python_env(PYTHONPATH=str(REPO / "examples"), **otel)
        wf = spawn("-m", "services.workflow", "--config", str(wf_cfg), env=env)
        wf_port = await asyncio.to_thread(wf.wait_for_port)
        async with WorkflowClient(f"127.0.0.1:{wf_port}", token=token) as client:
            run, _ = await client.start_run("example.pipeline", {"items": ["a", "bb"]}, wait=True)
            start_trace = client.last_trace_id  # from the x-vigil-trace-id trailer
            with pytest.raises(NotFound):
                await client.get_run("no-such-run")
            failed_trace = client.last_trace_id  # errors (a rich status) keep their trace id
        assert run.state == pb.RUN_STATE_SUCCEEDED
        assert len(start_trace) == 32 and len(failed_trace) == 32 and start_trace != failed_trace

        wf_metrics = await asyncio.to_thread(scrape, _metrics_port(wf))
        sec_metrics = await asyncio.to_thread(scrape, _metrics_port(sec))
        start = {"grpc_type": "unary_unary", "grpc_service": WF, "grpc_method": "StartRun", "grpc_code": "OK"}
        assert wf_metrics[key("grpc_server_handled_total", **start)] == 1
        succeeded = {"workflow": "example.pipeline", "state": "SUCCEEDED"}
        assert wf_metrics[key("vigil_workflow_run_transitions_total", **succeeded)] == 1
        # Traced, the run still screens on the long-lived stream (its trace context in the
        # message): one stream opened, no unary Screen.
        stream = {"grpc_type": "stream_stream", "grpc_service": SEC, "grpc_method": "ScreenStream"}
        assert sec_metrics[key("grpc_server_started_total", **stream)] == 1
        unary = {"grpc_type": "unary_unary", "grpc_service": SEC, "grpc_method": "Screen"}
        assert key("grpc_server_started_total", **unary) not in sec_metrics
        allowed = {"action": "screen", "decision": "ALLOW"}
        assert sec_metrics[key("vigil_security_audit_events_total", **allowed)] == 1

        assert rx.spans == []  # nothing exported before shutdown
        # In threads: the receiver runs on this event loop and must answer the final flushes.
        await asyncio.to_thread(_stop, wf)
        await asyncio.to_thread(_stop, sec)
        await eventually(lambda: any(s.name == f"{SEC}/Screen" for s in rx.spans), timeout=10)
    finally:
        await rx.stop()

    by_name = {s.name: s for s in rx.spans}
    start_span = by_name[f"{WF}/StartRun"]
    screen_client = next(s for s in rx.spans if s.name == f"/{SEC}/Screen" and s.kind == CLIENT)
    screen_server = by_name[f"{SEC}/Screen"]
    assert f"{SEC}/ScreenStream" not in by_name  # the stream gets no span, each screening does
    run_span = by_name["workflow.run"]
    attempt = by_name["workflow.attempt"]
    steps = [s for s in rx.spans if s.name.startswith("workflow.step ")]
    trace = {start_span.trace_id}
    assert run.trace_id == start_span.trace_id  # the run names its trace (GetRun, vigil runs get)
    assert {s.trace_id for s in (screen_client, screen_server, run_span, attempt, *steps)} == trace
    assert start_span.kind == SERVER and start_span.parent_id == "" and start_span.service == "workflow"
    assert start_span.attributes["vigil.run_id"] == run.run_id  # the root span names its run
    assert start_span.trace_id == start_trace  # the id the client was given is this trace
    assert by_name[f"{WF}/GetRun"].trace_id == failed_trace
    assert screen_client.parent_id == start_span.span_id and screen_client.service == "workflow"
    assert screen_server.parent_id == screen_client.span_id and screen_server.service == "security"
    assert screen_server.kind == SERVER and screen_server.attributes["rpc.grpc.status_code"] == 0
    assert run_span.parent_id == start_span.span_id
    assert run_span.attributes["vigil.workflow"] == "example.pipeline"
    assert run_span.attributes["vigil.run_id"] == run.run_id
    assert attempt.parent_id == run_span.span_id and attempt.attributes["vigil.attempt"] == 1
    assert {s.name for s in steps} == {
        "workflow.step fetch",
        "workflow.step transform",
        "workflow.step summarize",
    }
    assert all(s.parent_id == attempt.span_id and s.attributes["vigil.run_id"] == run.run_id for s in steps)


async def test_console_exporter_prints_the_run_spans(spawn, tmp_path: Path) -> None:
    """OTEL_TRACES_EXPORTER=console: spans on stdout, no collector needed; the client still
    learns the trace id, and the StartRun span names the run."""
    token, entry = new_key("e2e", Level.AUTHENTICATED, n=1 << 4)
    sec_cfg = _write(
        tmp_path / "security.yaml",
        {
            "server": {"port": 0, "grace_period_s": 1},
            "auth": {"api_keys": [entry.model_dump(mode="json")]},
            "audit": {"db_path": str(tmp_path / "audit.db")},
        },
    )
    sec = spawn("-m", "services.security", "--config", str(sec_cfg))
    sec_port = await asyncio.to_thread(sec.wait_for_port)
    wf_cfg = _write(
        tmp_path / "workflow.yaml",
        {
            "server": {"port": 0, "grace_period_s": 1},
            "store_path": str(tmp_path / "runs.db"),
            "security_address": f"127.0.0.1:{sec_port}",
            "healthd_address": None,
            "load_entry_points": False,
        },
    )
    wf = spawn(
        "-m",
        "services.workflow",
        "--config",
        str(wf_cfg),
        env=python_env(OTEL_TRACES_EXPORTER="console", OTEL_TRACES_SAMPLER="always_on"),
    )
    wf_port = await asyncio.to_thread(wf.wait_for_port)
    async with WorkflowClient(f"127.0.0.1:{wf_port}", token=token) as client:
        run, _ = await client.start_run("echo", {"x": 1}, wait=True)
        trace_id = client.last_trace_id
    assert run.state == pb.RUN_STATE_SUCCEEDED and len(trace_id) == 32
    await asyncio.to_thread(_stop, wf)
    assert wf.popen.stdout is not None
    printed = wf.popen.stdout.read()
    spans: list[dict[str, Any]] = _json_objects(printed)  # type: ignore[assignment]
    start = next(s for s in spans if s["name"] == f"{WF}/StartRun")
    assert start["context"]["trace_id"] == "0x" + trace_id
    assert start["attributes"]["vigil.run_id"] == run.run_id
    assert any(s["name"] == "workflow.run" for s in spans)


def _json_objects(text: str) -> list[dict[str, object]]:
    """The JSON objects printed one after another (the console exporter pretty-prints spans)."""
    decoder, out, pos = json.JSONDecoder(), [], 0
    while (pos := text.find("{", pos)) != -1:
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out
