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
from dataclasses import replace
from typing import Any

from healthd._actions import Healer, build_healer
from healthd._aggregate import (
    CheckState,
    ComponentHealth,
    LevelDamper,
    SystemStatus,
    apply_result,
    component_health,
    own_status,
    system_health,
    target_level,
)
from healthd._channels import SharedChannels
from healthd._checks import GrpcHealthCheck, build_check
from healthd._config import HealthdConfig, Level
from healthd._events import EventKind, EventLog, Subscription
from healthd._heal_driver import HealDriver
from healthd._healing import HealEvent, HealMachine
from healthd._operator import OperatorActions
from healthd._pidfile import RunDir
from healthd._replicas import Unit, build_units, combine, replica_check
from healthd._scheduler import Scheduler
from healthd._snapshot import ComponentView, Snapshot
from healthd._supervisor import LineSink, Supervisor, describe_exit, stderr_sink
from healthd._types import CheckResult, Status
from healthd._views import component_view
from services.common import SYSTEM_CLOCK, Clock, get_logger

_log = get_logger("vigil.healthd")

LIVENESS = "liveness"
READINESS = "readiness"
OVERALL = ""
EXIT_USAGE = 2
"""The config/usage exit code (run_main): before serving, restarting cannot help."""


class HealthEngine(HealDriver, OperatorActions):
    """Runs checks, aggregates, heals; publishes snapshots and events.

    Healing is driven by `HealDriver`, operator actions by `OperatorActions`; HealDriver comes
    first so its ``_drive`` is the one OperatorActions' declaration resolves to.
    """

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
        self.supervisor = Supervisor(RunDir(config.run_dir) if config.run_dir is not None else None)
        self._maint: set[str] = set()
        # Units last seen DEPENDENCY_DOWN: when the dependency recovers first they get their
        # start timeout to follow before they count as down themselves.
        self._dependency_was_down: set[str] = set()
        self._stopped: set[str] = set()
        """Units stopped by an operator."""
        self.units: dict[str, Unit] = {}
        self._units_of: dict[str, list[str]] = {}
        self._checks: dict[str, list[CheckState]] = {}
        self._heal: dict[str, HealMachine] = {}
        self._heal_changes = 0  # bumped by every change healing makes that a snapshot shows
        self._healers: dict[str, Healer | None] = {}
        self._damper = LevelDamper()
        self._last_check: dict[str, tuple[float, float]] = {}  # unit -> (wall time, latency)
        self._watchdog_reason = ""
        self._shutting_down = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[Snapshot], None]] = []
        self.scheduler = Scheduler(self.clock, self._on_result, paused=self._paused, rng=self._rng)
        channels = SharedChannels()  # one per target for all gRPC checks (closed with the last)
        for unit in build_units(config, self.supervisor, sink or stderr_sink, self._on_exit):
            comp = config.component(unit.component)
            self.units[unit.name] = unit
            self._units_of.setdefault(unit.component, []).append(unit.name)
            self._checks[unit.name] = [CheckState() for _ in comp.checks]
            self._heal[unit.name] = HealMachine(since=self.clock.monotonic())
            self._healers[unit.name] = build_healer(comp, unit.child)
            for index, base_cfg in enumerate(comp.checks):
                check_cfg = replica_check(base_cfg, unit.health_port)
                check = build_check(check_cfg, unit.child, channels)
                self.scheduler.add(unit.name, index, check, check_cfg)
                if isinstance(check, GrpcHealthCheck) and getattr(check_cfg, "watch", False):
                    self.scheduler.add_stream(unit.name, index, check.watch)
        self._last = self._compute()

    # ---- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt or start children (dependency order), then the scheduler and the watchdog."""
        # STARTING before the children run, so a child dying at once is a failed start.
        for unit in self._heal:
            self._drive(unit, HealEvent.STARTED)
        adopted = await self.supervisor.start_all()
        for child in self.supervisor.children.values():
            how = "adopted" if child in adopted else "started"
            self._publish(EventKind.PROCESS, child.name, f"{how} (pid {child.pid})", new="started")
        self.scheduler.start()
        if adopted:
            # A restarted healthd over running children: no start-up to wait for, so every check
            # runs now rather than after its initial delay (the system is known again at once).
            for name in self._units_of:
                self._spawn(self.check_now(name))
        self._spawn(self._watchdog())

    async def stop(self) -> None:
        """Shut down: overall NOT_SERVING, stop checks, stop children (dependents first)."""
        # Before any await: from here no operator action is accepted, no task is spawned and no
        # child process started, so nothing outlives the stop_all below.
        self._shutting_down = True
        self.supervisor.retire()
        self._reevaluate()
        await self.scheduler.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.supervisor.stop_all()
        self.events.close_all()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._shutting_down:
            coro.close()  # stop() has cancelled the tasks it knows; a later one would leak
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _paused(self, unit: str) -> bool:
        return self.units[unit].component in self._maint or unit in self._stopped

    def _publish(self, kind: EventKind, unit: str, message: str, old: str = "", new: str = "") -> None:
        """An event of a unit, under its component's name (``replica 2: ...`` when replicated)."""
        u = self.units[unit]
        prefix = f"replica {u.replica}: " if len(self._units_of[u.component]) > 1 else ""
        self.events.publish(kind, u.component, prefix + message, old, new)

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

    # ---- inputs -------------------------------------------------------------------------

    def _on_result(self, unit: str, index: int, result: CheckResult) -> None:
        if self._paused(unit) or self._shutting_down:
            return
        cfg = self.config.component(self.units[unit].component).checks[index]
        states = self._checks[unit]
        before = states[index]
        states[index] = apply_result(before, result, cfg.failure_threshold, cfg.success_threshold)
        self._last_check[unit] = (time.time(), result.latency_s)
        if states[index].status is before.status:
            self._refresh(self.units[unit].component)
        else:
            self._reevaluate()

    def _on_exit(self, unit: str, code: int | None) -> None:
        if self._shutting_down:
            return
        message = describe_exit(code)
        self._publish(EventKind.PROCESS, unit, message, new="exited")
        u = self.units[unit]
        if not self._paused(unit):
            # The verdict first: folding the process check in below would start a heal.
            child = u.child
            if code == EXIT_USAGE and child is not None and not child.served:
                last = next((line for line in reversed(child.output.tail()) if line.strip()), "")
                why = f"{message} before serving (config/usage error; restarting cannot help)"
                self._drive(unit, HealEvent.PERMANENT, f"{why}: {last}" if last else why)
            else:
                self._drive(unit, HealEvent.DIED, message)
        for index, cfg in enumerate(self.config.component(u.component).checks):
            if cfg.kind == "process":
                self._on_result(unit, index, CheckResult(Status.NOT_SERVING, 0.0, message, decisive=True))
        self._reevaluate()

    # ---- aggregation --------------------------------------------------------------------

    def _compute(self) -> Snapshot:
        unit_own = {u: own_status(states) for u, states in self._checks.items()}
        own: dict[str, Status] = {}
        stopped: set[str] = set()
        partial: set[str] = set()
        for name, units in self._units_of.items():
            active = [unit_own[u] for u in units if u not in self._stopped]
            if not active:
                stopped.add(name)
            own[name] = combine(active)
            if 0 < sum(s is Status.SERVING for s in active) < len(active):
                partial.add(name)
        comps = component_health(self.config, own, self._maint, frozenset(stopped), frozenset(partial))
        target = target_level(self.config, comps)
        cfg, before, at = self.config, self._damper, self.clock.monotonic()

        def step(to: Level) -> LevelDamper:
            count, window = cfg.level_flap_count, cfg.level_flap_window_s
            return before.step(to, at, cfg.level_recovery_s, flap_count=count, flap_window_s=window)

        self._damper = step(target)
        # level_without is damped like the level: a hold while flapping holds there too.
        system = system_health(self.config, comps, self._damper.level, damp=lambda to: step(to).level)
        escalated = sorted({self.units[u].component for u, m in self._heal.items() if m.escalated})
        if escalated:
            liveness, why = Status.NOT_SERVING, f"FATAL: {', '.join(escalated)}"
        elif self._watchdog_reason:
            liveness, why = Status.NOT_SERVING, f"scheduler stalled: {self._watchdog_reason}"
        else:
            liveness, why = Status.SERVING, ""
        ready = system.ready and not self._shutting_down  # the admission rule (SystemHealth.ready)
        now = self.clock.monotonic()
        views = tuple(self._view(c, now) for c in comps)
        readiness = Status.SERVING if ready else Status.NOT_SERVING
        return Snapshot(system, views, liveness, why, readiness, self._shutting_down)

    def _view(self, c: ComponentHealth, now: float) -> ComponentView:
        units = self._units_of[c.name]
        return component_view(
            c,
            self.config.component(c.name),
            [self.units[u] for u in units],
            {u: self._heal[u] for u in units},
            {u: self._checks[u] for u in units},
            self._last_check,
            c.name in self._maint,
            now,
        )

    def _refresh(self, name: str) -> None:
        """After a check result that left every check's status as it was (most results: one
        more success of a serving check). No status changed, so no aggregate did: feed the
        healing of this component's units and rebuild its view alone, not all of them (with
        100 components a full `_reevaluate` per result cost healthd 70% of a core). If healing
        moved, everything is re-evaluated; the watchdog's periodic `_reevaluate` still feeds
        every unit and steps time-based damping."""
        old = self._last
        i = next((k for k, v in enumerate(old.components) if v.health.name == name), None)
        if i is None:
            self._reevaluate()
            return
        health = old.components[i].health
        changes = self._heal_changes
        self._feed_healing((health,))
        if self._heal_changes != changes:
            self._reevaluate()
            return
        view = self._view(health, self.clock.monotonic())
        if view == old.components[i]:
            return
        self._last = snap = replace(old, components=(*old.components[:i], view, *old.components[i + 1 :]))
        for fn in self._listeners:
            fn(snap)

    def _reevaluate(self) -> None:
        """Recompute, feed healing, publish what changed. Never awaits (state stays consistent)."""
        snap = self._compute()
        changes = self._heal_changes
        self._feed_healing(snap.system.components)
        if self._heal_changes != changes:  # healing moved a machine or reset checks: show it
            snap = self._compute()
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
                units = self._units_of[b.name]
                own_why = next((w for u in units if (w := self._why(u))), "")
                why = (b.cause and f"dependency '{b.cause}' is down") or own_why or b.reason.value
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
            for unit in self._heal:
                self._drive(unit, HealEvent.TICK)
            self._reevaluate()
            expected = now + wd.interval_s
