"""The healing state machine, driven with an injected clock and seeded randomness."""

from __future__ import annotations

import random

import pytest

from healthd import HealingConfig, HealState
from healthd._healing import Action, HealEvent, HealMachine, backoff_delay, transition

POLICY = HealingConfig(
    action="restart", backoff_base_s=1, backoff_cap_s=8, backoff_jitter=0, max_attempts=4, window_s=100
)
E = HealEvent


class Driver:
    """Feeds events at explicit times and records actions."""

    def __init__(self, policy: HealingConfig = POLICY) -> None:
        self.m = HealMachine()
        self.policy = policy
        self.rng = random.Random(7)
        self.actions: list[Action] = []

    def __call__(self, event: HealEvent, now: float) -> HealState:
        self.m, acts = transition(self.m, event, now=now, policy=self.policy, rng=self.rng)
        self.actions += acts
        return self.m.state


def test_sample_failure_is_suspect_then_recovers() -> None:
    d = Driver()
    assert d(E.SAMPLE_FAILED, 0) is HealState.SUSPECT
    assert d(E.UP, 1) is HealState.HEALTHY
    assert d.actions == []


def test_first_heal_is_immediate_and_counts_as_started_only_after_checks() -> None:
    d = Driver()
    assert d(E.DOWN, 0) is HealState.HEALING
    assert d.actions == [Action.HEAL]
    assert d(E.UP, 0.1) is HealState.HEALING  # a heal in progress is not success
    assert d(E.HEAL_DONE, 0.5) is HealState.STARTING
    assert Action.RESET_CHECKS in d.actions
    assert d(E.DOWN, 0.6) is HealState.STARTING  # still booting; only the deadline or a death fails it
    assert d(E.UP, 1.0) is HealState.HEALTHY


def test_backoff_grows_then_fatal_escalates() -> None:
    d = Driver()
    t = 0.0
    delays = []
    d(E.DOWN, t)
    for _ in range(POLICY.max_attempts - 1):
        d(E.HEAL_DONE, t)
        t += 0.1
        assert d(E.DIED, t) is HealState.BACKOFF
        delays.append(d.m.until - t)
        assert d(E.TICK, d.m.until - 0.01) is HealState.BACKOFF  # not yet
        t = d.m.until
        assert d(E.TICK, t) is HealState.HEALING
    assert delays == [1, 2, 4]
    d(E.HEAL_DONE, t)
    assert d(E.DIED, t + 0.1) is HealState.FATAL
    assert d.actions.count(Action.HEAL) == POLICY.max_attempts
    assert d.actions[-1] is Action.ESCALATE and d.m.escalated
    assert d(E.DOWN, t + 5) is HealState.FATAL  # no more automatic heals


def test_backoff_is_capped_and_jittered_within_bounds() -> None:
    policy = HealingConfig(action="restart", backoff_base_s=1, backoff_cap_s=5, backoff_jitter=0.5)
    rng = random.Random(1)
    delays = [backoff_delay(n, policy, rng) for n in range(1, 12)]
    assert all(d <= 5 for d in delays)
    assert backoff_delay(0, policy, rng) == 0
    assert 0.5 <= backoff_delay(1, policy, rng) <= 1.5
    assert len({round(d, 6) for d in delays}) > 3  # jitter spreads them


def test_start_deadline_fails_the_heal() -> None:
    d = Driver()
    d(E.DOWN, 0)
    d(E.HEAL_DONE, 1)
    assert d(E.TICK, 1 + POLICY.start_timeout_s) is HealState.BACKOFF


def test_heal_action_error_backs_off() -> None:
    d = Driver()
    d(E.DOWN, 0)
    assert d(E.HEAL_ERROR, 0.1) is HealState.BACKOFF


def test_flapping_is_damped_by_the_window() -> None:
    d = Driver()
    t = 0.0
    for expected_delay in [0, 1, 2, 4]:
        state = d(E.DOWN, t)
        if expected_delay:
            assert state is HealState.BACKOFF and d.m.until - t == expected_delay
            t = d.m.until
            d(E.TICK, t)
        assert d.m.state is HealState.HEALING
        d(E.HEAL_DONE, t)
        t += 1
        assert d(E.UP, t) is HealState.HEALTHY  # each heal "works", yet it keeps failing
    assert d(E.DOWN, t + 1) is HealState.FATAL


def test_attempts_age_out_of_the_window() -> None:
    d = Driver()
    d(E.DOWN, 0)
    d(E.HEAL_DONE, 0)
    d(E.UP, 1)
    assert d(E.DOWN, 2) is HealState.BACKOFF
    d2 = Driver()
    d2(E.DOWN, 0)
    d2(E.HEAL_DONE, 0)
    d2(E.UP, 1)
    assert d2(E.DOWN, 200) is HealState.HEALING  # first attempt left the window: heal at once


def test_maintenance_pauses_everything_and_clears_escalation() -> None:
    d = Driver(HealingConfig(action="restart", max_attempts=1, backoff_jitter=0))
    d(E.DOWN, 0)
    d(E.HEAL_DONE, 0)
    assert d(E.DIED, 1) is HealState.FATAL
    assert d(E.MAINTENANCE_ON, 2) is HealState.MAINTENANCE
    assert d.actions[-1] is Action.CLEAR_ESCALATION and not d.m.escalated
    for event in (E.DOWN, E.DIED, E.TICK, E.UP, E.SAMPLE_FAILED):
        assert d(event, 3) is HealState.MAINTENANCE
    assert d(E.MAINTENANCE_OFF, 4) is HealState.HEALTHY
    assert d.m.attempts == ()
    assert d(E.DOWN, 5) is HealState.HEALING


def test_manual_heal_clears_fatal_without_counting() -> None:
    d = Driver(HealingConfig(action="restart", max_attempts=1, backoff_jitter=0))
    d(E.DOWN, 0)
    d(E.HEAL_DONE, 0)
    d(E.DIED, 1)
    assert d(E.MANUAL_HEAL, 2) is HealState.HEALING
    assert d.actions[-2:] == [Action.HEAL, Action.CLEAR_ESCALATION]
    assert d.m.attempts == ()


def test_no_healing_configured_stays_suspect() -> None:
    d = Driver(HealingConfig())
    assert d(E.DOWN, 0) is HealState.SUSPECT
    assert d.actions == []


def test_fatal_recovers_when_checks_pass_again() -> None:
    d = Driver(HealingConfig(action="restart", max_attempts=1, backoff_jitter=0))
    d(E.DOWN, 0)
    d(E.HEAL_ERROR, 0)
    assert d.m.state is HealState.FATAL
    assert d(E.UP, 5) is HealState.HEALTHY
    assert d.actions[-1] is Action.CLEAR_ESCALATION


@pytest.mark.parametrize("state", list(HealState))
def test_every_state_handles_every_event_without_error(state: HealState) -> None:
    for event in HealEvent:
        m, _ = transition(HealMachine(state=state), event, now=1.0, policy=POLICY, rng=random.Random(0))
        assert isinstance(m.state, HealState)


def test_a_heal_skipped_for_a_down_dependency_returns_to_suspect_uncounted() -> None:
    d = Driver()
    assert d(E.DOWN, 0) is HealState.HEALING and len(d.m.attempts) == 1
    assert d(E.DEPENDENCY_DOWN, 0.1) is HealState.SUSPECT and d.m.attempts == ()
    assert d(E.SAMPLE_FAILED, 0.2) is HealState.SUSPECT  # the dependency is down: no heal meanwhile
    assert d(E.UP, 5) is HealState.HEALTHY
    assert d.actions == [Action.HEAL]  # only the one heal that was then skipped


def test_after_its_dependency_recovers_a_component_gets_its_start_timeout_to_follow() -> None:
    d = Driver()
    assert d(E.SAMPLE_FAILED, 0) is HealState.SUSPECT  # dependency down
    assert d(E.DEPENDENCY_UP, 1) is HealState.STARTING and d.m.deadline == 1 + POLICY.start_timeout_s
    assert d(E.DOWN, 2) is HealState.STARTING  # its own probe lags: not healed yet
    assert d(E.UP, 3) is HealState.HEALTHY and Action.HEAL not in d.actions


def test_permanent_start_up_error_is_fatal_at_once() -> None:
    d = Driver()
    d(E.STARTED, 0)
    assert d(E.PERMANENT, 1) is HealState.FATAL
    assert d.m.escalated and d.actions == [Action.ESCALATE]
    assert d(E.DIED, 2) is HealState.FATAL and d.actions == [Action.ESCALATE]  # no heal


def test_operator_stop_is_not_healed_and_start_clears_fatal() -> None:
    d = Driver()
    assert d(E.STOP, 0) is HealState.STOPPED
    for event in (E.DOWN, E.DIED, E.SAMPLE_FAILED, E.TICK, E.UP):
        assert d(event, 1) is HealState.STOPPED
    assert d.actions == []
    assert d(E.START, 2) is HealState.STARTING and d.m.deadline == 2 + POLICY.start_timeout_s
    assert d.actions == [Action.RESET_CHECKS]
    d(E.PERMANENT, 3)
    assert d(E.START, 4) is HealState.STARTING
    assert not d.m.escalated and d.m.attempts == ()
    assert Action.CLEAR_ESCALATION in d.actions
    assert d(E.START, 5) is HealState.STARTING  # already starting: no-op
