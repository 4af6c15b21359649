"""Thin servicers: grpc.health.v1 fed from the engine, and vigil.healthd.v1.HealthDaemon.

Reads (GetSystemHealth, WatchSystemHealth, ListEvents, grpc.health.v1) are open; CheckNow,
Heal, SetMaintenance, ControlComponent and TailLog need an ADMIN bearer token that healthd
verifies itself with the security service's `Authenticator` over the same key material, so
operators can act while the security service is down. Every mutating action is written to
healthd's log as an ``audit:`` line (who, what). Component names may be short (`_names`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2 as _hpb

from healthd._config import HealthdConfig
from healthd._control import Control, Controller
from healthd._convert import component_pb, event_pb, event_type, system_pb, timestamp
from healthd._engine import HealthEngine
from healthd._names import resolve
from healthd._output import Tagged
from healthd._snapshot import Snapshot
from healthd._text import operator_text
from healthd._types import Status
from services.common import (
    FailedPrecondition,
    FieldViolation,
    HealthServicer,
    InvalidArgument,
    PermissionDenied,
    bearer_token,
    get_logger,
)
from services.security import AuditLog, AuthConfig, KeyMaterialAuthenticator, Level, Principal
from vigil.healthd.v1 import healthd_pb2 as _pb
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc

_HEALTH = {
    Status.SERVING: _hpb.HealthCheckResponse.SERVING,
    Status.NOT_SERVING: _hpb.HealthCheckResponse.NOT_SERVING,
    Status.UNKNOWN: _hpb.HealthCheckResponse.UNKNOWN,
}
DEFAULT_PAGE = 100
MAX_PAGE = 1000
DEFAULT_TAIL = 50
MAX_TAIL = 10_000

_log = get_logger("vigil.healthd")


def audit(principal: Principal, action: str, component: str, detail: str = "") -> None:
    """One log line per operator action: who did what to which component."""
    _log.info(
        "audit: %s %s %s%s",
        principal.subject,
        action,
        component,
        f" ({detail})" if detail else "",
        extra={"audit": True, "subject": principal.subject, "action": action, "component": component},
    )


class TokenAuthenticator(Protocol):
    """Bearer token -> principal, raising `Unauthenticated` (services.security.Authenticator)."""

    def authenticate(self, token: str) -> Principal: ...


class AdminGate:
    """Verifies ADMIN tokens from the security service's key material
    (`services.security.KeyMaterialAuthenticator`: reloaded when the keys file changes)."""

    def __init__(self, config: AuthConfig) -> None:
        self._auth: TokenAuthenticator = KeyMaterialAuthenticator(config)

    def require_admin(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal:
        """The ADMIN principal behind the call's bearer token.

        Raises:
            Unauthenticated: no or invalid token.
            PermissionDenied: a valid token below ADMIN.
        """
        principal = self._auth.authenticate(bearer_token(metadata))
        if principal.level < Level.ADMIN:
            raise PermissionDenied(f"ADMIN required; '{principal.subject}' is {principal.level.name}")
        return principal


class HealthBridge:
    """Mirrors the engine's statuses into the grpc.health.v1 servicer, in order."""

    def __init__(self, engine: HealthEngine, health: HealthServicer) -> None:
        self._engine = engine
        self._health = health
        self._pushed: dict[str, Status] = {}
        self._queue: asyncio.Queue[dict[str, Status]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        engine.add_listener(self._changed)

    async def start(self) -> None:
        """Publish the current statuses (before the server starts), then follow changes."""
        await self._apply(self._engine.statuses())
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _changed(self, _snap: Snapshot) -> None:
        # Called synchronously by the engine; the queue keeps order, one consumer applies.
        self._queue.put_nowait(self._engine.statuses())

    async def _follow(self) -> None:
        while True:
            await self._apply(await self._queue.get())

    async def _apply(self, statuses: dict[str, Status]) -> None:
        for name, status in statuses.items():
            if self._pushed.get(name) is not status:
                self._pushed[name] = status
                await self._health.set(name, _HEALTH[status])


def _page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE
    if not 1 <= requested <= MAX_PAGE:
        violation = FieldViolation("page_size", f"must be between 1 and {MAX_PAGE} (0 means {DEFAULT_PAGE})")
        raise InvalidArgument(f"page_size {requested} out of range", [violation])
    return requested


# Tokens are event sequence numbers rendered in ASCII decimal. str.isdigit alone admits
# "²" (int() rejects it) and "٣" (int() reads it as 3); an unbounded length lets int()
# fail past 4300 digits. 18 digits hold any sequence number an event log will reach.
_MAX_TOKEN_DIGITS = 18


def _page_token(token: str) -> int | None:
    if not token:
        return None
    if not (token.isascii() and token.isdigit() and len(token) <= _MAX_TOKEN_DIGITS):
        raise InvalidArgument(
            "page_token is not one this server issued",
            [FieldViolation("page_token", "must be a next_page_token from an earlier ListEvents reply")],
        )
    return int(token)


class Operator:
    """Operator actions, each recorded *before* it is done: one definition for the
    HealthDaemon RPCs and the dashboard's ``/api/control``.

    Args:
        engine: The engine acted on.
        audit_log: healthd's keyed audit chain, or None (log lines only).
    """

    def __init__(self, engine: HealthEngine, audit_log: AuditLog | None = None) -> None:
        self.engine = engine
        self.controller = Controller(engine)
        self._audit_log = audit_log

    async def audit(self, principal: Principal, action: str, component: str, detail: str = "") -> None:
        """A log line, and a record in the keyed audit chain when one is configured; if that
        cannot be written the action is refused (`Unavailable`) and not done; so is every
        action once healthd's shutdown began."""
        self.engine.refuse_if_shutting_down()
        audit(principal, action, component, detail)
        if self._audit_log is not None:
            await self._audit_log.append_async(
                action=f"healthd.{action.replace(' ', '.')}", decision="ALLOW", subject=principal.subject,
                resource=component, reason=detail,
            )  # fmt: skip

    async def heal(self, principal: Principal, component: str, reason: str) -> tuple[bool, str]:
        """A manual heal (clears FATAL); the event names who asked."""
        reason = operator_text(reason, "reason")
        await self.audit(principal, "heal", component, reason)
        why = f"manual heal by {principal.subject}" + (f": {reason}" if reason else "")
        return self.engine.heal(component, why)

    async def maintenance(self, principal: Principal, component: str, on: bool, reason: str) -> None:
        reason = operator_text(reason, "reason")
        await self.audit(principal, "maintenance on" if on else "maintenance off", component, reason)
        self.engine.set_maintenance(
            component, on, f"{principal.subject}: {reason}" if reason else principal.subject
        )

    async def control(self, principal: Principal, component: str, action: Control, replica: int) -> None:
        """Start/stop/restart one replica or (0) all; validated before the audit record."""
        self.controller.targets(component, replica)
        await self.audit(
            principal, action.value, component, f"replica {replica}" if replica else "all replicas"
        )
        await self.controller.control(component, action, replica, f"{action.value} by {principal.subject}")


class HealthDaemonService(_pb_grpc.HealthDaemonServicer):
    """vigil.healthd.v1.HealthDaemon over a `HealthEngine`."""

    def __init__(
        self, engine: HealthEngine, config: HealthdConfig, gate: AdminGate, audit_log: AuditLog | None = None
    ) -> None:
        self._engine = engine
        self._config = config
        self._gate = gate
        self.operator = Operator(engine, audit_log)
        self._audit = self.operator.audit

    def _component(self, name: str) -> _pb.ComponentHealth:
        snap = self._engine.snapshot()
        view = next(v for v in snap.components if v.health.name == name)
        return component_pb(view, self._config, time.time())

    def _resolve(self, name: str) -> str:
        return resolve(name, [c.name for c in self._config.components])

    async def GetSystemHealth(
        self, request: _pb.GetSystemHealthRequest, context: grpc.aio.ServicerContext
    ) -> _pb.GetSystemHealthResponse:
        return _pb.GetSystemHealthResponse(health=system_pb(self._engine.snapshot(), self._config))

    async def WatchSystemHealth(
        self, request: _pb.WatchSystemHealthRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[_pb.WatchSystemHealthResponse]:
        # Subscribe before the first snapshot so no change between them is lost.
        with self._engine.subscribe(maxsize=1000) as sub:
            yield _pb.WatchSystemHealthResponse(health=system_pb(self._engine.snapshot(), self._config))
            async for event in sub:
                batch = [event, *sub.drain()]
                yield _pb.WatchSystemHealthResponse(
                    health=system_pb(self._engine.snapshot(), self._config),
                    events=[event_pb(e) for e in batch],
                )

    async def ListEvents(
        self, request: _pb.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> _pb.ListEventsResponse:
        size = _page_size(request.page_size)
        before = _page_token(request.page_token)
        types = set(request.types)
        events = [
            e
            for e in reversed(self._engine.events.since(0, request.component, limit=0))
            if (before is None or e.seq < before) and (not types or event_type(e) in types)
        ]
        page = events[:size]
        token = str(page[-1].seq) if len(events) > size else ""
        return _pb.ListEventsResponse(events=[event_pb(e) for e in page], next_page_token=token)

    async def CheckNow(
        self, request: _pb.CheckNowRequest, context: grpc.aio.ServicerContext
    ) -> _pb.CheckNowResponse:
        principal = self._gate.require_admin(context.invocation_metadata())
        name = self._resolve(request.component)
        await self._audit(principal, "check now", name)
        await self._engine.check_now(name)
        return _pb.CheckNowResponse(component=self._component(name))

    async def Heal(self, request: _pb.HealRequest, context: grpc.aio.ServicerContext) -> _pb.HealResponse:
        principal = self._gate.require_admin(context.invocation_metadata())
        name = self._resolve(request.component)
        started, message = await self.operator.heal(principal, name, request.reason)
        return _pb.HealResponse(component=self._component(name), started=started, message=message)

    async def SetMaintenance(
        self, request: _pb.SetMaintenanceRequest, context: grpc.aio.ServicerContext
    ) -> _pb.SetMaintenanceResponse:
        principal = self._gate.require_admin(context.invocation_metadata())
        name = self._resolve(request.component)
        await self.operator.maintenance(principal, name, request.enabled, request.reason)
        return _pb.SetMaintenanceResponse(component=self._component(name))

    async def ControlComponent(
        self, request: _pb.ControlComponentRequest, context: grpc.aio.ServicerContext
    ) -> _pb.ControlComponentResponse:
        principal = self._gate.require_admin(context.invocation_metadata())
        name = self._resolve(request.component)
        action = _ACTIONS.get(request.action)
        if action is None:
            raise InvalidArgument(
                "action is required", [FieldViolation("action", "must be START, STOP or RESTART")]
            )
        await self.operator.control(principal, name, action, request.replica)
        return _pb.ControlComponentResponse(component=self._component(name))

    async def TailLog(
        self, request: _pb.TailLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[_pb.TailLogResponse]:
        self._gate.require_admin(context.invocation_metadata())
        name = self._resolve(request.component)
        children = self._engine.children_of(name)
        if not children:
            raise FailedPrecondition(f"component '{name}' has no supervised process")
        if not 0 <= request.lines <= MAX_TAIL:
            violation = FieldViolation("lines", f"must be between 0 and {MAX_TAIL} (0 means {DEFAULT_TAIL})")
            raise InvalidArgument(f"lines {request.lines} out of range", [violation])
        wanted = request.lines or DEFAULT_TAIL
        queue: asyncio.Queue[Tagged | None] = asyncio.Queue(maxsize=10_000)
        with contextlib.ExitStack() as stack:
            # Subscribing and copying the history happen without an await in between, so no
            # line is read in between: none is lost or sent twice.
            if request.follow:
                for child in children:
                    stack.enter_context(child.output.subscribe(queue, child.replica))
            history = sorted(
                (at, child.replica, line) for child in children for at, line in child.output.lines
            )[-wanted:]
            for at, replica, line in history:
                yield _tail_pb(name, replica, line, at)
            while request.follow:
                item = await queue.get()
                if item is None:
                    return  # healthd is stopping
                yield _tail_pb(name, item[1], item[2], item[0])


_ACTIONS = {
    _pb.CONTROL_ACTION_START: Control.START,
    _pb.CONTROL_ACTION_STOP: Control.STOP,
    _pb.CONTROL_ACTION_RESTART: Control.RESTART,
}


def _tail_pb(component: str, replica: int, line: str, at: float) -> _pb.TailLogResponse:
    return _pb.TailLogResponse(component=component, replica=replica, line=line, time=timestamp(at))
