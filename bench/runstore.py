"""Workflow scale-out: StartRun(wait) runs/s with one vs two workflow replicas sharing
PostgreSQL, and one replica on PostgreSQL beside the SQLite single node, in the same run.

Every variant is the real stack: the security service (Screen on each StartRun) and
workflow service processes, the built-in ``echo`` workflow (three store writes per run:
create, RUNNING, SUCCEEDED), driven by the same closed-loop client. PostgreSQL runs with
fsync on and SQLite with ``synchronous=FULL``: both durable, as deployed. With two cores
the load generator, PostgreSQL, security and the replicas share the CPU, so the
two-replica figure shows whether sharing the store costs anything more than whether a
second machine would double throughput.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import struct_pb2

from bench._load import load_figures, rotated_load
from bench._procs import ServerProcess, running
from bench._registry import Context, Skip, benchmark
from bench._report import Figure, Target
from services.security import Level, new_key
from tests.postgres import PostgresMissing, PostgresServer
from vigil.workflow.v1 import workflow_pb2 as _wpb
from vigil.workflow.v1 import workflow_pb2_grpc as _wpb_grpc

CONCURRENCY = 32


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _workflow(tmp: Path, name: str, security: str, store: dict[str, Any]) -> ServerProcess:
    cfg = _write(
        tmp / f"{name}.yaml",
        {
            "server": {"port": 0},
            "instance_id": name,
            "security_address": security,
            "healthd_address": None,
            "load_entry_points": False,
            **store,
        },
    )
    return ServerProcess(["-m", "services.workflow", "--config", str(cfg)], name=name)


def _start_run(stubs: list[_wpb_grpc.WorkflowServiceStub], token: str) -> Callable[[], Awaitable[Any]]:
    """One StartRun(wait) per call, round-robin over ``stubs`` (the replicas)."""
    params = struct_pb2.Struct()
    params.update({"message": "bench"})
    request = _wpb.StartRunRequest(workflow="echo", params=params, wait=True)
    metadata = (("authorization", f"Bearer {token}"),)
    turn = itertools.cycle(stubs)

    async def call() -> Any:
        return await next(turn).StartRun(request, metadata=metadata, timeout=30)

    return call


@benchmark(
    "workflow.replicas",
    "StartRun(wait) runs/s: 2 vs 1 workflow replicas on PostgreSQL, and PostgreSQL vs SQLite single node",
)
async def replicas(ctx: Context) -> list[Figure]:
    try:
        pg = PostgresServer(durable=True)
    except PostgresMissing as exc:
        raise Skip(str(exc)) from None
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    await asyncio.to_thread(pg.start)
    try:
        dsn = await asyncio.to_thread(pg.database)
        return await _measure(ctx, tmp, dsn)
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(tmp, ignore_errors=True)


async def _measure(ctx: Context, tmp: Path, dsn: str) -> list[Figure]:
    token, entry = new_key("bench", Level.AUTHENTICATED)
    security_cfg = _write(
        tmp / "security.yaml",
        {
            "server": {"port": 0},
            "auth": {"api_keys": [entry.model_dump(mode="json")]},
            "audit": {"db_path": str(tmp / "audit.db")},
            "rate_limit": {"enabled": False},
        },
    )
    security = ServerProcess(["-m", "services.security", "--config", str(security_cfg)], name="security")
    with running(security):
        postgres = {"store_backend": "postgres", "postgres": {"dsn": dsn}}
        procs = {
            "pg-a": _workflow(tmp, "pg-a", security.address, postgres),
            "pg-b": _workflow(tmp, "pg-b", security.address, postgres),
            "sqlite": _workflow(tmp, "sqlite", security.address, {"store_path": str(tmp / "runs.db")}),
        }
        with running(*procs.values()):
            channels = {n: grpc.aio.insecure_channel(p.address) for n, p in procs.items()}
            try:
                stub = {n: _wpb_grpc.WorkflowServiceStub(c) for n, c in channels.items()}
                samples = await rotated_load(
                    {
                        "pg2": _start_run([stub["pg-a"], stub["pg-b"]], token),
                        "pg1": _start_run([stub["pg-a"]], token),
                        "sqlite": _start_run([stub["sqlite"]], token),
                    },
                    concurrency=CONCURRENCY,
                    repeats=ctx.repeats,
                    duration_s=ctx.seconds(3.0),
                    warmup_s=0.5,
                )
            finally:
                for chan in channels.values():
                    await chan.close()
    ctx.log(", ".join(f"{n} {s[-1].throughput:.0f}" for n, s in samples.items()) + " runs/s")
    return [
        *load_figures(
            f"2 replicas on PostgreSQL, c{CONCURRENCY}",
            samples["pg2"],
            samples["pg1"],
            "1 replica on the same PostgreSQL, same client",
            # A second replica must not make the shared store slower (on 2 cores it cannot double).
            Target.ratio_at_least(1.0),
        ),
        *load_figures(
            f"1 replica on PostgreSQL, c{CONCURRENCY}",
            samples["pg1"],
            samples["sqlite"],
            "SQLite single node (WAL, synchronous=FULL), same client",
            None,
        ),
    ]
