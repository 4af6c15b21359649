"""The dashboard's runs view: recent runs of the workflow service, read with the caller's token.

healthd holds no credentials of its own for this: the browser sends the bearer token the
operator typed (kept in the tab's sessionStorage), healthd forwards it as ``authorization``
metadata on ListRuns / GetRun, so the workflow service applies its usual authentication and
per-principal visibility. Nothing of the token is stored or logged here.

    overview(token)      recent runs (newest first), state counts, per-minute throughput and
                         failure rate, computed over the ``runs_window`` newest runs
    run(token, run_id)   one run (GetRun, GetRunHistory): its steps, its history events, and
                         ``trace_link`` when a trace UI template is configured
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from healthd._channels import open_channel
from healthd._config import DashboardConfig
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc as wpb_grpc

__all__ = ["BUCKETS", "BUCKET_S", "RunsReader", "series"]

BUCKET_S = 60  # throughput/failure-rate resolution
BUCKETS = 30  # minutes of history shown
SHOWN = 50  # runs listed in the table
_PAGE = 100
_TIMEOUT_S = 5.0
_FAILED = frozenset({wpb.RUN_STATE_FAILED, wpb.RUN_STATE_TIMED_OUT})
_TERMINAL = _FAILED | {wpb.RUN_STATE_SUCCEEDED, wpb.RUN_STATE_CANCELLED}


def _ts(stamp: Any) -> float:
    return stamp.seconds + stamp.nanos / 1e9 if stamp.seconds or stamp.nanos else 0.0


def _state(run: wpb.Run) -> str:
    return wpb.RunState.Name(run.state).removeprefix("RUN_STATE_")


def series(runs: list[wpb.Run], now: float) -> list[dict[str, float]]:
    """Per-minute buckets (oldest first) of runs started, finished and failed, and the
    failure rate of the runs that finished in each bucket (0 when none did)."""
    first = (int(now) // BUCKET_S - BUCKETS + 1) * BUCKET_S
    rows: list[dict[str, float]] = [
        {"t": first + i * BUCKET_S, "started": 0, "finished": 0, "failed": 0} for i in range(BUCKETS)
    ]

    def bucket(ts: float) -> dict[str, float] | None:
        i = int((ts - first) // BUCKET_S)
        return rows[i] if ts and 0 <= i < BUCKETS else None

    for run in runs:
        if (row := bucket(_ts(run.created_at))) is not None:
            row["started"] += 1
        if run.state in _TERMINAL and (row := bucket(_ts(run.finished_at))) is not None:
            row["finished"] += 1
            row["failed"] += run.state in _FAILED
    return [{**r, "failure_rate": r["failed"] / r["finished"] if r["finished"] else 0.0} for r in rows]


def _event(e: wpb.HistoryEvent) -> dict[str, Any]:
    """One history line: what happened, when, and its details as the proto names them."""
    detail = MessageToDict(e, preserving_proto_field_name=True)
    return {
        "type": wpb.HistoryEventType.Name(e.type).removeprefix("HISTORY_EVENT_TYPE_"),
        "at": _ts(e.time),
        "step": e.step,
        "attempt": e.attempt,
        "duration_s": e.duration.ToTimedelta().total_seconds() if e.HasField("duration") else None,
        "error": e.error.message if e.HasField("error") else "",
        "detail": detail,
    }


def _summary(run: wpb.Run) -> dict[str, Any]:
    created, finished = _ts(run.created_at), _ts(run.finished_at)
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "state": _state(run),
        "attempts": run.attempts,
        "created_at": created,
        "duration_s": round(finished - (_ts(run.started_at) or created), 3) if finished else None,
        "error": run.error.message if run.HasField("error") else "",
        "principal": run.principal,
    }


class RunsReader:
    """ListRuns / GetRun against one workflow service, on a channel kept for the process."""

    def __init__(self, config: DashboardConfig) -> None:
        assert config.workflow_address is not None
        self._config = config
        self._channel: grpc.aio.Channel | None = None
        self._stub: wpb_grpc.WorkflowServiceStub | None = None

    def _rpc(self) -> wpb_grpc.WorkflowServiceStub:
        if self._stub is None:  # created on first use: a grpc.aio channel binds the running loop
            self._channel = open_channel(self._config.workflow_address or "", self._config.workflow_tls)
            self._stub = wpb_grpc.WorkflowServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def overview(self, authorization: str, *, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        meta = (("authorization", authorization),)
        runs: list[wpb.Run] = []
        token = ""
        while len(runs) < self._config.runs_window:
            size = min(_PAGE, self._config.runs_window - len(runs))
            req = wpb.ListRunsRequest(page_size=size, page_token=token)
            resp = await self._rpc().ListRuns(req, timeout=_TIMEOUT_S, metadata=meta)
            runs.extend(resp.runs)
            token = resp.next_page_token
            if not token:
                break
        return {
            "runs": [_summary(r) for r in runs[:SHOWN]],
            "counts": dict(Counter(_state(r) for r in runs)),
            "window": len(runs),
            "bucket_s": BUCKET_S,
            "series": series(runs, now),
        }

    async def run(self, authorization: str, run_id: str) -> dict[str, Any]:
        meta = (("authorization", authorization),)
        stub = self._rpc()
        got, hist = await asyncio.gather(  # the run with its steps, and its history
            stub.GetRun(wpb.GetRunRequest(run_id=run_id), timeout=_TIMEOUT_S, metadata=meta),
            stub.GetRunHistory(wpb.GetRunHistoryRequest(run_id=run_id), timeout=_TIMEOUT_S, metadata=meta),
        )
        out: dict[str, Any] = {
            **_summary(got.run),
            "run": MessageToDict(got.run, preserving_proto_field_name=True),
            "history": [_event(e) for e in hist.events],
        }
        trace_id = got.run.trace_id
        template = self._config.trace_url
        out["trace_id"] = trace_id
        out["trace_link"] = template.replace("{trace_id}", trace_id) if template and trace_id else ""
        return out
