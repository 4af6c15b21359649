"""Assembly of the workflow service from its config: store, registry, executor, servers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.common import (
    SYSTEM_CLOCK,
    Clock,
    ConfigError,
    Instrumentation,
    Offload,
    VigilServer,
    every,
    publish_serving,
)
from services.security import KeyMaterialAuthenticator
from services.workflow._builtins import register_builtins
from services.workflow._config import WorkflowConfig
from services.workflow._degradation import DegradationGate, HealthdWatcher
from services.workflow._executor import Executor
from services.workflow._isolation import ProcessPool
from services.workflow._metrics import WorkflowCollector
from services.workflow._redaction import IdempotencyKeys
from services.workflow._registry import WorkflowRegistry
from services.workflow._runs import Operations, StartRequest
from services.workflow._schedule import ScheduleConfig, Scheduler, slot_key
from services.workflow._security_client import LocalCallers, SecurityClient
from services.workflow._service import WorkflowServicer
from services.workflow._store import RunStore
from services.workflow._store_factory import make_store
from vigil.workflow.v1 import workflow_pb2_grpc as _pb_grpc

__all__ = ["SERVICE_NAME", "WorkflowApp", "build", "build_app", "build_registry"]

SERVICE_NAME = "vigil.workflow.v1.WorkflowService"
_log = logging.getLogger(__name__)


def build_registry(cfg: WorkflowConfig) -> WorkflowRegistry:
    """Built-ins, then entry points, then config; fallbacks must name registered workflows."""
    registry = WorkflowRegistry()
    register_builtins(registry)
    try:
        if cfg.load_entry_points:
            registry.load_entry_points()
    except ValueError as exc:
        raise ConfigError("entry points (vigil.workflows)", "", str(exc)) from None
    for name, entry in cfg.workflows.items():
        try:
            registry.register_ref(name, entry.handler, entry.policy)
        except ValueError as exc:
            raise ConfigError("config", f"workflows.{name}.handler", str(exc), entry.handler) from None
    for wf in registry.all():
        for fb in wf.policy.fallback:
            if fb.workflow is not None and fb.workflow not in registry:
                raise ConfigError(
                    "config", f"workflows.{wf.name}.policy.fallback", "unknown workflow", fb.workflow
                )
    for s in cfg.schedules:
        if s.workflow not in registry:
            raise ConfigError("config", f"schedules.{s.name}.workflow", "unknown workflow", s.workflow)
    return registry


@dataclass
class WorkflowApp:
    """Everything one workflow service process runs (tests reach into it)."""

    config: WorkflowConfig
    server: VigilServer
    store: RunStore
    registry: WorkflowRegistry
    executor: Executor
    ops: Operations
    security: SecurityClient
    gate: DegradationGate
    pool: ProcessPool
    offload: Offload
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics_port: int | None = None

    async def close(self) -> None:
        """Stop background work and executions (runs stay resumable), then release resources."""
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.executor.stop()
        await self.pool.close()
        await self.security.close()
        self.offload.close()
        await self.store.close()


class TokenFile:
    """The service's own token, read when first needed and then kept.

    Read lazily because in the local stack the security service creates the dev token file
    while this service starts; a missing file only disables the features that need it.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._token: str | None = None

    def __call__(self) -> str | None:
        if self._token is None and self._path is not None:
            try:
                self._token = self._path.read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                _log.warning("service token file %s unreadable: %s", self._path, exc.strerror)
        return self._token


async def build_app(cfg: WorkflowConfig, *, clock: Clock = SYSTEM_CLOCK) -> WorkflowApp:
    """Open the store, resume unfinished runs and register the servicer (not yet listening).

    ``clock`` is every reading of time the app makes: wall time for what is stored (runs,
    leases, schedules), monotonic for breakers and caches, its sleep for waits.
    """
    registry = build_registry(cfg)
    token = TokenFile(cfg.service_token_file)
    # Before any channel is made: client interceptors exist only once tracing is set up.
    telemetry = Instrumentation("workflow", cfg.server)
    store = make_store(cfg, clock.time)
    await store.open()
    offload = Offload(name="vigil-convert")  # large params: converted and checked off the loop
    security = SecurityClient(
        cfg.security_address,
        timeout_s=cfg.security_timeout_s,
        service_token=token,
        stream=cfg.security_stream,
        monotonic=clock.monotonic,
        tls=cfg.security_tls,
        offload=offload,
    )
    pool = ProcessPool(cfg.limits.process_workers)
    executor = Executor(
        store=store,
        registry=registry,
        owner=cfg.lease_owner,
        clock=clock.time,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        deps=security,
        pool=pool,
        lease_s=cfg.limits.lease_s,
        poll_s=cfg.limits.poll_s,
        max_result_bytes=cfg.limits.max_result_bytes,
    )
    gate = DegradationGate()
    readers = LocalCallers(KeyMaterialAuthenticator(cfg.auth)) if cfg.auth is not None else None
    ops = Operations(
        executor=executor,
        security=security,
        gate=gate,
        limits=cfg.limits,
        clock=clock.time,
        readers=readers,
        idempotency=IdempotencyKeys.from_config(cfg),
        offload=offload,
    )
    server = VigilServer(cfg.server, "workflow", interceptors=telemetry.server_interceptors)
    server.add_servicer(
        _pb_grpc.add_WorkflowServiceServicer_to_server,
        WorkflowServicer(ops, cfg.server.max_message_bytes, offload),
        SERVICE_NAME,
    )
    app = WorkflowApp(cfg, server, store, registry, executor, ops, security, gate, pool, offload)
    await executor.start()
    if cfg.healthd_address:
        app.tasks.append(
            asyncio.create_task(
                HealthdWatcher(
                    cfg.healthd_address, gate, tls=cfg.healthd_tls, component=cfg.healthd_component
                ).run(),
                name="healthd-watch",
            )
        )
    if cfg.schedules:
        app.tasks.append(
            asyncio.create_task(_scheduler(cfg.schedules, ops, token, clock).run(), name="scheduler")
        )
    # Stopped by cancellation in app.close, like the other background tasks.
    probe = _store_health(server, store, cfg.health_probe_timeout_s)
    app.tasks.append(
        asyncio.create_task(every(asyncio.Event(), cfg.health_probe_s, probe), name="store-probe")
    )
    server.on_shutdown(app.close)
    # One /metrics per process: RPC metrics and the executor's own (after app.close, so the
    # spans of the runs it stops are flushed too).
    telemetry.attach(server, collectors=[WorkflowCollector(executor, gate, {"security": security.breaker})])
    if telemetry.metrics_server is not None:
        app.metrics_port = telemetry.metrics_server.port
    return app


def _store_health(server: VigilServer, store: RunStore, timeout_s: float) -> Callable[[], Awaitable[None]]:
    """A job publishing NOT_SERVING ("" and the service) while the run store cannot take a
    write (StartRun would answer UNAVAILABLE), and SERVING again once it can."""
    healthy = [True]

    async def job() -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await store.probe()
            ok = True
        except Exception as exc:  # whatever the store raises, it cannot serve: never end the job
            ok = False
            if healthy[0]:
                _log.warning("run store probe failed: %s; NOT_SERVING", exc or type(exc).__name__)
        if ok and not healthy[0]:
            _log.info("run store probe succeeded again; SERVING")
        healthy[0] = ok
        await publish_serving(server.health, ("", SERVICE_NAME), ok)

    return job


def _scheduler(schedules: list[ScheduleConfig], ops: Operations, token: TokenFile, clock: Clock) -> Scheduler:
    async def start_slot(s: ScheduleConfig, slot: float) -> None:
        service_token = token()
        if service_token is None:
            _log.warning("schedule %s: no service token (service_token_file); slot skipped", s.name)
            return
        request = StartRequest(
            workflow=s.workflow,
            params=s.params,
            idempotency_key=slot_key(s.name, slot),
            not_before=slot,
            priority=s.priority,
            schedule=s.name,
        )
        await ops.start(request, token=service_token, remaining_s=None)

    return Scheduler(schedules, start_slot, clock.time, clock.sleep)


async def build(cfg: WorkflowConfig) -> VigilServer:
    """`run_main` entry: the configured, not yet started server."""
    return (await build_app(cfg)).server
