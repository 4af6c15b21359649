"""The health engine: checks -> hysteresis -> aggregation -> healing, without any gRPC.

All state changes happen on the event loop in plain (non-async) methods, so no lock is needed:
a re-evaluation runs to completion before anything else sees the state. Heal actions run in
their own tasks and report back through `transition`. The read API for servers and dashboards
is `snapshot()` (a frozen value), `statuses()` and `subscribe()` (live events).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from healthd._actions import Healer, HealFailed, build_healer
from healthd._aggregate import (
    CheckState,
    ComponentHealth,
    LevelDamper,
    Reason,
    SystemStatus,
    apply_result,
    component_health,
    own_status,
    system_health,
    target_level,
)
from healthd._checks import GrpcHealthCheck, build_check
from healthd._config import HealthdConfig, Mode, dependency_order
from healthd._events import EventKind, EventLog, Subscription
from healthd._healing import Action, HealEvent, HealMachine, HealState, transition
from healthd._scheduler import Scheduler
from healthd._snapshot import CheckView, ComponentView, Snapshot
from healthd._supervisor import Child, LineSink, Supervisor, describe_exit, stderr_sink
from healthd._telemetry import heal_span, healer_kind
from healthd._types import CheckResult, Status
from services.common import SYSTEM_CLOCK, Clock, FailedPrecondition, NotFound, get_logger

_log = get_logger("vigil.healthd")

LIVENESS = "liveness"
READINESS = "readiness"
OVERALL = ""


class HealthEngine:
    """Runs checks, aggregates, heals; publishes snapshots and events."""

    def __init__(
        self,
        config: HealthdConfig,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        sink: LineSink | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._rng = rng or random.Random()
        self.events = EventLog(config.event_history)
        self.supervisor = Supervisor()
        self._maint: set[str] = set()
        self._checks: dict[str, list[CheckState]] = {}
        self._heal: dict[str, HealMachine] = {}
        self._healers: dict[str, Healer | None] = {}
        self._damper = LevelDamper()
        self._last_check: dict[str, tuple[float, float]] = {}  # name -> (wall time, latency)
        self._watchdog_reason = ""
        self._shutting_down = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[Snapshot], None]] = []
        self.scheduler = Scheduler(
            self.clock, self._on_result, paused=self._maint.__contains__, rng=self._rng
        )
        for name in dependency_order(config):
            comp = config.component(name)
            child = None
            if comp.process is not None and config.mode is Mode.SUPERVISOR:
                child = Child(name, comp.process, sink=sink or stderr_sink, on_exit=self._on_exit)
                self.supervisor.add(child)
            self._checks[name] = [CheckState() for _ in comp.checks]
            self._heal[name] = HealMachine(since=self.clock.monotonic())
            self._healers[name] = build_healer(comp, child)
            for index, check_cfg in enumerate(comp.checks):
                check = build_check(check_cfg, child)
                self.scheduler.add(name, index, check, check_cfg)
                if isinstance(check, GrpcHealthCheck) and getattr(check_cfg, "watch", False):
                    self.scheduler.add_stream(name, index, check.watch)
        self._last = self._compute()

    # ---- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start children (dependency order), the scheduler and the watchdog."""
        # STARTING before the children run, so a child dying at once is a failed start.
        for name in self._heal:
            self._drive(name, HealEvent.STARTED)
        await self.supervisor.start_all()
        for child in self.supervisor.children.values():
            self.events.publish(EventKind.PROCESS, child.name, f"started (pid {child.pid})", new="started")
        self.scheduler.start()
        self._spawn(self._watchdog())

    async def stop(self) -> None:
        """Shut down: overall NOT_SERVING, stop checks, stop children (dependents first)."""
        self._shutting_down = True
        self._reevaluate()
        await self.scheduler.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.supervisor.stop_all()
        self.events.close_all()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- read API -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current consistent view."""
        return self._last

    def statuses(self) -> dict[str, Status]:
        """grpc.health.v1 names -> status: ``""``, ``liveness``, ``readiness``, each component."""
        snap = self._last
        overall_ok = not snap.shutting_down and snap.system.status is not SystemStatus.UNHEALTHY
        out = {
            OVERALL: Status.SERVING if overall_ok else Status.NOT_SERVING,
            LIVENESS: snap.liveness,
            READINESS: snap.readiness,
        }
        for view in snap.components:
            out[view.health.name] = view.health.status
        return out

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """Live events (a slow subscriber loses its oldest events, never blocks healthd)."""
        return self.events.subscribe(maxsize)

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
        """Call ``fn(snapshot)`` synchronously after every re-evaluation that changed something."""
        self._listeners.append(fn)

    # ---- operator actions -------------------------------------------------------------

    def _known(self, name: str) -> None:
        if name not in self._heal:
            raise NotFound(f"unknown component '{name}'")

    async def check_now(self, name: str) -> list[CheckResult]:
        """Run all of a component's checks now; results fold in unless in maintenance."""
        self._known(name)
        return await self.scheduler.check_now(name)

    def heal(self, name: str, reason: str = "manual heal") -> tuple[bool, str]:
        """Start a heal now (clears FATAL); returns (started, why not).

        Raises:
            NotFound: unknown component.
            FailedPrecondition: in maintenance, or no healing action configured.
        """
        self._known(name)
        if name in self._maint:
            raise FailedPrecondition(f"component '{name}' is in maintenance")
        if self._healers[name] is None:
            raise FailedPrecondition(f"component '{name}' has no healing action configured")
        if self._heal[name].state is HealState.HEALING:
            return False, "a heal is already running"
        self._drive(name, HealEvent.MANUAL_HEAL, reason)
        self._reevaluate()
        return True, "heal started"

    def set_maintenance(self, name: str, on: bool, reason: str = "") -> None:
        """Pause (on) or resume (off) checks and healing of a component."""
        self._known(name)
        if on == (name in self._maint):
            return
        if on:
            self._maint.add(name)
        else:
            self._maint.discard(name)
        state = "on" if on else "off"
        self.events.publish(EventKind.MAINTENANCE, name, reason or state, new=state)
        self._drive(name, HealEvent.MAINTENANCE_ON if on else HealEvent.MAINTENANCE_OFF, reason)
        self._reevaluate()
        if not on:
            self._spawn(self.scheduler.check_now(name))

    # ---- inputs -------------------------------------------------------------------------

    def _on_result(self, name: str, index: int, result: CheckResult) -> None:
        if name in self._maint or self._shutting_down:
            return
        cfg = self.config.component(name).checks[index]
        states = self._checks[name]
        states[index] = apply_result(states[index], result, cfg.failure_threshold, cfg.success_threshold)
        self._last_check[name] = (time.time(), result.latency_s)
        self._reevaluate()

    def _on_exit(self, name: str, code: int) -> None:
        if self._shutting_down:
            return
        message = describe_exit(code)
        self.events.publish(EventKind.PROCESS, name, message, new="exited")
        comp = self.config.component(name)
        for index, cfg in enumerate(comp.checks):
            if cfg.kind == "process":
                self._on_result(name, index, CheckResult(Status.NOT_SERVING, 0.0, message, decisive=True))
        if name not in self._maint:
            self._drive(name, HealEvent.DIED, message)
            self._reevaluate()

    # ---- healing ------------------------------------------------------------------------

    def _drive(self, name: str, event: HealEvent, reason: str = "") -> None:
        old = self._heal[name]
        policy = self.config.component(name).healing
        now = self.clock.monotonic()
        new, actions = transition(old, event, now=now, policy=policy, rng=self._rng, reason=reason)
        self._heal[name] = new
        if new.state is not old.state:
            self.events.publish(EventKind.HEAL_STATE, name, new.reason, old.state.value, new.state.value)
            if new.state is HealState.BACKOFF:
                self._spawn(self._tick_at(name, new.until))
            elif new.state is HealState.STARTING:
                self._spawn(self._tick_at(name, new.deadline))
        for action in actions:
            self._perform(name, action, new)

    def _perform(self, name: str, action: Action, machine: HealMachine) -> None:
        if action is Action.HEAL:
            self._spawn(self._run_heal(name))
        elif action is Action.RESET_CHECKS:
            # Keep each check's status (no UNKNOWN flicker on Watch) but restart its streaks,
            # so the fresh start must prove itself with success_threshold successes.
            self._checks[name] = [CheckState(status=c.status) for c in self._checks[name]]
        elif action is Action.ESCALATE:
            self.events.publish(EventKind.ESCALATION, name, f"FATAL: {machine.reason}", new="escalated")
        elif action is Action.CLEAR_ESCALATION:
            self.events.publish(EventKind.ESCALATION, name, "escalation cleared", old="escalated")

    async def _run_heal(self, name: str) -> None:
        healer = self._healers[name]
        assert healer is not None  # HEAL is only emitted for components with an action
        machine = self._heal[name]
        # Manual heals clear the window, so an empty one means an operator asked.
        attempt = f"attempt {len(machine.attempts)}" if machine.attempts else "manual"
        self.events.publish(EventKind.HEAL_ATTEMPT, name, f"{attempt}: {machine.reason}")
        try:
            with heal_span(name, healer_kind(healer), len(machine.attempts)):
                message = await healer.heal()
        except Exception as exc:  # logged and counted as a failed heal: a healer bug must not wedge HEALING
            why = str(exc) if isinstance(exc, HealFailed) else f"heal action crashed: {exc!r}"
            if not isinstance(exc, HealFailed):
                _log.exception("heal action of %s crashed", name)
            self.events.publish(EventKind.HEAL_RESULT, name, why, new="failed")
            self._drive(name, HealEvent.HEAL_ERROR, why)
        else:
            self.events.publish(EventKind.HEAL_RESULT, name, message, new="ok")
            child = self.supervisor.children.get(name)
            if child is not None:
                self.events.publish(EventKind.PROCESS, name, f"started (pid {child.pid})", new="started")
            self._drive(name, HealEvent.HEAL_DONE, message)
            self._spawn(self.scheduler.check_now(name))
        self._reevaluate()

    async def _tick_at(self, name: str, at: float) -> None:
        await self.clock.sleep_until(at)
        self._drive(name, HealEvent.TICK)
        self._reevaluate()

    # ---- aggregation --------------------------------------------------------------------

    def _feed_healing(self, comps: tuple[ComponentHealth, ...]) -> None:
        for comp in comps:
            if comp.reason is Reason.MAINTENANCE:
                continue
            if comp.reason is Reason.DEPENDENCY_DOWN:
                self._drive(comp.name, HealEvent.SAMPLE_FAILED, f"dependency '{comp.cause}' is down")
            elif comp.own is Status.NOT_SERVING:
                self._drive(comp.name, HealEvent.DOWN, self._why(comp.name))
            elif comp.own is Status.SERVING and all(c.successes for c in self._checks[comp.name]):
                # UP needs a success on every check since the last reset: a restarted component
                # counts as started only once it has passed its checks itself.
                self._drive(comp.name, HealEvent.UP)
            elif any(s.last is not None and not s.last.ok for s in self._checks[comp.name]):
                self._drive(comp.name, HealEvent.SAMPLE_FAILED, self._why(comp.name))

    def _why(self, name: str) -> str:
        for state in self._checks[name]:
            if state.last is not None and not state.last.ok:
                return state.last.message
        return ""

    def _compute(self) -> Snapshot:
        own = {name: own_status(states) for name, states in self._checks.items()}
        comps = component_health(self.config, own, self._maint)
        target = target_level(self.config, comps)
        cfg = self.config
        self._damper = self._damper.step(
            target,
            self.clock.monotonic(),
            cfg.level_recovery_s,
            flap_count=cfg.level_flap_count,
            flap_window_s=cfg.level_flap_window_s,
        )
        system = system_health(self.config, comps, self._damper.level)
        escalated = [n for n, m in self._heal.items() if m.escalated]
        if escalated:
            liveness, why = Status.NOT_SERVING, f"FATAL: {', '.join(escalated)}"
        elif self._watchdog_reason:
            liveness, why = Status.NOT_SERVING, f"scheduler stalled: {self._watchdog_reason}"
        else:
            liveness, why = Status.SERVING, ""
        ready = system.ready and not self._shutting_down  # the admission rule (SystemHealth.ready)
        views = tuple(self._view(c) for c in comps)
        readiness = Status.SERVING if ready else Status.NOT_SERVING
        return Snapshot(system, views, liveness, why, readiness, self._shutting_down)

    def _view(self, health: ComponentHealth) -> ComponentView:
        machine = self._heal[health.name]
        child = self.supervisor.children.get(health.name)
        cfgs = self.config.component(health.name).checks
        checks = tuple(
            CheckView(cfg.kind, st.status, st.last.message, st.last.latency_s)
            if st.last is not None
            else CheckView(cfg.kind, st.status, "", 0.0)
            for cfg, st in zip(cfgs, self._checks[health.name], strict=True)
        )
        states = self._checks[health.name]
        backoff = machine.state is HealState.BACKOFF
        return ComponentView(
            health,
            machine.state,
            machine.reason,
            len(machine.attempts),
            machine.last_delay if backoff else 0.0,
            max(0.0, machine.until - self.clock.monotonic()) if backoff else 0.0,
            health.name in self._maint,
            child.pid if child is not None else None,
            child.restarts if child is not None else 0,
            checks,
            max(s.failures for s in states),
            min(s.successes for s in states),
            *self._last_check.get(health.name, (0.0, 0.0)),
        )

    def _reevaluate(self) -> None:
        """Recompute, feed healing, publish what changed. Never awaits (state stays consistent)."""
        snap = self._compute()
        self._feed_healing(snap.system.components)
        snap = self._compute()  # healing may have reset checks or escalated
        old = self._last
        self._last = snap
        self._publish_changes(old, snap)
        if snap != old:
            for fn in self._listeners:
                fn(snap)

    def _publish_changes(self, old: Snapshot, new: Snapshot) -> None:
        for before, after in zip(old.components, new.components, strict=True):
            a, b = before.health, after.health
            if (a.status, a.reason) != (b.status, b.reason):
                why = (b.cause and f"dependency '{b.cause}' is down") or self._why(b.name) or b.reason.value
                self.events.publish(EventKind.STATUS, b.name, why, a.status.value, b.status.value)
        o, n = old.system, new.system
        if (o.status, o.level) != (n.status, n.level):
            message = f"{n.status.value} score={n.score} level={n.level.name}"
            self.events.publish(EventKind.SYSTEM, "", message, f"{o.status.value}/{o.level.name}", message)
        if old.liveness is not new.liveness:
            self.events.publish(
                EventKind.LIVENESS, "", new.liveness_reason or "ok", old.liveness, new.liveness
            )

    # ---- watchdog -----------------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Heartbeat: measures loop lag and scheduler lateness; drives time-based damping."""
        wd = self.config.watchdog
        expected = self.clock.monotonic() + wd.interval_s
        while True:
            await self.clock.sleep_until(expected)
            now = self.clock.monotonic()
            lag = now - expected
            reason = self.scheduler.stalled(now, wd.stall_after_s) or ""
            if not reason and lag > wd.stall_after_s:
                reason = f"event loop lagged {lag:.1f}s"
            self._watchdog_reason = reason
            for name in self._heal:
                self._drive(name, HealEvent.TICK)
            self._reevaluate()
            expected = now + wd.interval_s
