"""Hysteresis, dependency-aware aggregation, score and degradation levels (pure, injected time)."""

from __future__ import annotations

from healthd import Level, LevelDamper, Reason, Status, SystemStatus
from healthd._aggregate import (
    CheckState,
    apply_result,
    component_health,
    own_status,
    system_health,
    target_level,
)
from healthd._types import CheckResult
from tests.healthd_util import config, exec_check

OK = CheckResult(Status.SERVING)
BAD = CheckResult(Status.NOT_SERVING, message="refused")
DEAD = CheckResult(Status.NOT_SERVING, message="exited", decisive=True)
S, N, U = Status.SERVING, Status.NOT_SERVING, Status.UNKNOWN


def _fold(results: list[CheckResult], fail: int = 3, ok: int = 2) -> CheckState:
    state = CheckState()
    for r in results:
        state = apply_result(state, r, fail, ok)
    return state


def test_failure_threshold_gives_hysteresis() -> None:
    assert _fold([OK]).status is S
    assert _fold([OK, BAD, BAD]).status is S
    assert _fold([OK, BAD, BAD, BAD]).status is N
    assert _fold([OK, BAD, BAD, OK, BAD, BAD]).status is S  # the streak was broken


def test_success_threshold_after_failure() -> None:
    assert _fold([BAD, BAD, BAD, OK]).status is N
    assert _fold([BAD, BAD, BAD, OK, OK]).status is S


def test_decisive_event_bypasses_threshold() -> None:
    assert _fold([OK, DEAD]).status is N


def test_unknown_result_counts_as_failure_and_first_success_suffices() -> None:
    unknown = CheckResult(Status.UNKNOWN)
    assert _fold([OK, unknown, unknown, unknown]).status is N
    assert _fold([OK]).status is S  # from UNKNOWN, one success is enough


def test_own_status() -> None:
    assert own_status([CheckState(S), CheckState(S)]) is S
    assert own_status([CheckState(S), CheckState(U)]) is U
    assert own_status([CheckState(U), CheckState(N)]) is N


CFG = config(
    components=[
        {"name": "store", "checks": [exec_check()], "degrades_to": "READ_ONLY"},
        {"name": "api", "checks": [exec_check()], "depends_on": ["store"], "degrades_to": "OFFLINE"},
        {"name": "cache", "checks": [exec_check()], "critical": False},
        {"name": "web", "checks": [exec_check()], "depends_on": ["api"], "critical": False},
    ]
)


def _system(own: dict[str, Status], maint: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
    comps = component_health(CFG, own, set(maint))
    return system_health(CFG, comps, target_level(CFG, comps)), {c.name: c for c in comps}


def test_all_serving_is_healthy_normal_100() -> None:
    system, _ = _system({"store": S, "api": S, "cache": S, "web": S})
    assert (system.status, system.score, system.level, system.ready) == (
        SystemStatus.HEALTHY,
        100,
        Level.NORMAL,
        True,
    )


def test_non_critical_failure_is_degraded() -> None:
    system, comps = _system({"store": S, "api": S, "cache": N, "web": S})
    assert system.status is SystemStatus.DEGRADED
    assert system.level is Level.DEGRADED
    assert system.ready
    assert comps["cache"].reason is Reason.FAILING
    assert system.score == round(100 * 7 / 8)  # weights 3+3+1+1, cache (1) lost


def test_dependency_down_is_reported_as_such_transitively() -> None:
    system, comps = _system({"store": N, "api": N, "cache": S, "web": N})
    assert comps["store"].reason is Reason.FAILING
    assert (comps["api"].reason, comps["api"].cause, comps["api"].own) == (Reason.DEPENDENCY_DOWN, "store", N)
    assert (comps["web"].reason, comps["web"].cause) == (Reason.DEPENDENCY_DOWN, "store")
    assert system.status is SystemStatus.UNHEALTHY
    assert system.level is Level.OFFLINE  # every critical component is down
    assert not system.ready


def test_dependent_that_itself_serves_is_still_down_when_dependency_is() -> None:
    _, comps = _system({"store": N, "api": S, "cache": S, "web": S})
    assert comps["api"].status is N and comps["api"].own is S


def test_level_is_worst_of_down_components() -> None:
    system, _ = _system({"store": S, "api": N, "cache": N, "web": S})
    assert system.level is Level.OFFLINE  # api declares OFFLINE
    system, _ = _system({"store": S, "api": S, "cache": N, "web": N})
    assert system.level is Level.DEGRADED


def test_unknown_is_degraded_and_half_credit() -> None:
    system, comps = _system({"store": U, "api": S, "cache": S, "web": S})
    assert system.status is SystemStatus.DEGRADED
    assert comps["store"].reason is Reason.PENDING
    assert system.score == round(100 * (1.5 + 3 + 1 + 1) / 8)
    assert not system.ready


def test_maintenance_is_excluded_and_does_not_blame_dependents() -> None:
    system, comps = _system({"store": N, "api": S, "cache": S, "web": S}, frozenset({"store"}))
    assert comps["store"].reason is Reason.MAINTENANCE
    assert comps["api"].reason is Reason.OK
    assert system.status is SystemStatus.HEALTHY and system.score == 100


def test_readiness_counts_a_paused_critical_component_by_its_own_checks() -> None:
    """Maintenance or an operator's stop pauses healing and blame, not the truth: a critical
    component that is down refuses StartRuns, so readiness is NOT_SERVING while it is."""
    down, _ = _system({"store": N, "api": S, "cache": S, "web": S}, frozenset({"store"}))
    assert not down.ready
    stopped = component_health(CFG, {"store": N, "api": S, "cache": S, "web": S}, set(), frozenset({"store"}))
    assert not system_health(CFG, stopped, target_level(CFG, stopped)).ready
    still_up, _ = _system({"store": S, "api": S, "cache": S, "web": S}, frozenset({"store"}))
    assert still_up.ready


def test_a_held_level_is_never_healthy() -> None:
    comps = component_health(CFG, {"store": S, "api": S, "cache": S, "web": S}, set())
    system = system_health(CFG, comps, Level.OFFLINE)  # the damper still holds OFFLINE
    assert system.status is SystemStatus.DEGRADED
    assert not system.ready  # readiness follows what the level admits, not only the components


def test_level_damper_worsens_at_once_and_a_single_recovery_applies_at_once() -> None:
    d = LevelDamper()
    d = d.step(Level.OFFLINE, now=0.0, hold_s=5)
    assert d.level is Level.OFFLINE
    d = d.step(Level.NORMAL, now=0.5, hold_s=5)
    assert d.level is Level.NORMAL and not d.holding  # no hold after one recovery


def _flap(d: LevelDamper, times: list[float], hold_s: float = 5) -> LevelDamper:
    for t in times:
        d = d.step(Level.OFFLINE, now=t, hold_s=hold_s, flap_count=3, flap_window_s=60)
        d = d.step(Level.NORMAL, now=t + 0.1, hold_s=hold_s, flap_count=3, flap_window_s=60)
    return d


def test_level_damper_holds_only_while_flapping() -> None:
    d = _flap(LevelDamper(), [0.0, 10.0, 20.0])
    assert d.level is Level.NORMAL  # three recoveries in the window: each applied at once
    kw = {"hold_s": 5, "flap_count": 3, "flap_window_s": 60}
    d = d.step(Level.OFFLINE, now=30.0, **kw)
    d = d.step(Level.READ_ONLY, now=31.0, **kw)
    assert d.level is Level.OFFLINE and d.holding  # the fourth within 60 s is held
    d = d.step(Level.NORMAL, now=33.0, **kw)
    assert d.level is Level.OFFLINE
    d = d.step(Level.NORMAL, now=36.0, **kw)
    assert d.level is Level.READ_ONLY  # worst level seen while holding
    d = d.step(Level.NORMAL, now=37.0, **kw)
    assert d.level is Level.READ_ONLY
    d = d.step(Level.NORMAL, now=42.0, **kw)
    assert d.level is Level.NORMAL


def test_level_damper_forgets_recoveries_outside_the_window() -> None:
    d = _flap(LevelDamper(), [0.0, 10.0, 20.0])
    kw = {"hold_s": 5, "flap_count": 3, "flap_window_s": 60}
    d = d.step(Level.OFFLINE, now=100.0, **kw)
    d = d.step(Level.NORMAL, now=100.5, **kw)
    assert d.level is Level.NORMAL  # the old flaps left the window: a single recovery again


def test_level_damper_flap_resets_hold() -> None:
    kw = {"hold_s": 5, "flap_count": 1, "flap_window_s": 60}
    d = LevelDamper().step(Level.RESTRICTED, now=-10.0, **kw)
    d = d.step(Level.NORMAL, now=-9.0, **kw)  # the one recovery allowed unheld
    d = d.step(Level.RESTRICTED, now=0.0, **kw)
    d = d.step(Level.NORMAL, now=1.0, **kw)
    d = d.step(Level.RESTRICTED, now=4.0, **kw)  # flapped back: hold restarts
    d = d.step(Level.NORMAL, now=5.0, **kw)
    d = d.step(Level.NORMAL, now=9.0, **kw)
    assert d.level is Level.RESTRICTED
    d = d.step(Level.NORMAL, now=10.0, **kw)
    assert d.level is Level.NORMAL


def test_level_without_leaves_out_a_components_own_failure_and_what_it_blocks() -> None:
    # api down by its own failure (OFFLINE), web down because of api: without api, NORMAL.
    system, _ = _system({"store": S, "api": N, "cache": S, "web": S})
    assert system.level is Level.OFFLINE
    assert system.level_without == {"api": Level.NORMAL}
    # cache down too: api's processes still obey cache's failure.
    system, _ = _system({"store": S, "api": N, "cache": N, "web": S})
    assert system.level_without == {"api": Level.DEGRADED}
    # api blocked by the store is not its own failure: no entry for api; the store's own
    # processes (were it a service) would not obey their own READ_ONLY.
    system, _ = _system({"store": N, "api": S, "cache": S, "web": S})
    assert system.level is Level.OFFLINE and system.level_without == {"store": Level.NORMAL}
    # a failure that does not make the level worse gets no entry
    system, _ = _system({"store": S, "api": S, "cache": N, "web": N})
    assert system.level is Level.DEGRADED and system.level_without == {}


CHAIN = config(
    components=[
        {"name": "api", "checks": [exec_check()], "degrades_to": "OFFLINE"},
        {"name": "sec", "checks": [exec_check()]},
        {"name": "cache", "checks": [exec_check()], "critical": False},
        {
            "name": "gw",
            "checks": [exec_check()],
            "depends_on": ["api", "cache"],
            "critical": False,
            "degrades_to": "READ_ONLY",
        },
    ]
)


def _without(own: dict[str, Status]) -> dict[str, Level]:
    comps = component_health(CHAIN, own, set())
    return dict(system_health(CHAIN, comps, target_level(CHAIN, comps)).level_without)


def test_level_without_keeps_what_a_dependent_is_down_for_besides_that_component() -> None:
    # gw is reported DEPENDENCY_DOWN naming api (its first down dependency), but with api
    # serving it is still down: because of cache (READ_ONLY, gw's level) ...
    assert _without({"api": N, "sec": S, "cache": N, "gw": S}) == {"api": Level.READ_ONLY}
    # ... or by its own checks: api's processes must not read NORMAL while gw is down.
    assert _without({"api": N, "sec": S, "cache": S, "gw": N}) == {"api": Level.READ_ONLY}


def test_level_without_counts_a_replicated_component_partial() -> None:
    # Every replica down, one restarted: it alone serves, so the level is at least DEGRADED.
    cfg = config(
        components=[
            {
                "name": "api",
                "checks": [exec_check()],
                "degrades_to": "OFFLINE",
                "replicas": 2,
                "process": {"argv": ["true"], "health_port": 1, "env_prefix": "X_"},
            },
            {"name": "sec", "checks": [exec_check()]},
        ]
    )
    comps = component_health(cfg, {"api": N, "sec": S}, set())
    assert system_health(cfg, comps, target_level(cfg, comps)).level_without == {"api": Level.DEGRADED}
