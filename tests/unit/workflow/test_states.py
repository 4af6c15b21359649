from __future__ import annotations

import pytest

from services.workflow._states import (
    TERMINAL_STATES,
    InvalidTransition,
    RunState,
    allowed_sources,
    allowed_targets,
    transition,
)


def test_terminal_states_have_no_exits() -> None:
    for state in TERMINAL_STATES:
        assert allowed_targets(state) == frozenset()
        for target in RunState:
            with pytest.raises(InvalidTransition):
                transition(state, target)


def test_pending_can_start_or_end_early() -> None:
    assert allowed_targets(RunState.PENDING) == {
        RunState.RUNNING,
        RunState.CANCELLED,
        RunState.FAILED,
        RunState.TIMED_OUT,
    }


def test_running_reaches_every_terminal_state_and_retries() -> None:
    assert allowed_targets(RunState.RUNNING) == TERMINAL_STATES | {RunState.RUNNING}


def test_nothing_goes_back_to_pending() -> None:
    for state in RunState:
        assert RunState.PENDING not in allowed_targets(state)


def test_invalid_transition_is_failed_precondition_naming_both_states() -> None:
    with pytest.raises(InvalidTransition, match=r"SUCCEEDED.*RUNNING"):
        transition(RunState.SUCCEEDED, RunState.RUNNING)
    assert InvalidTransition(RunState.SUCCEEDED, RunState.RUNNING).code.name == "FAILED_PRECONDITION"


def test_allowed_sources_mirror_allowed_targets() -> None:
    for target in RunState:
        assert allowed_sources(target) == {s for s in RunState if target in allowed_targets(s)}
