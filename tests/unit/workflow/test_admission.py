"""StartRun's bulkhead reservation is released exactly once on every path (`Admission`)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from services.common import PermissionDenied, ResourceExhausted, Unavailable
from services.workflow._admission import Admission, Load
from services.workflow._builtins import register_builtins
from services.workflow._bulkhead import Bulkhead
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._registry import WorkflowRegistry
from services.workflow._runs import Operations, StartRequest
from services.workflow._states import RunState
from tests.conftest import eventually
from tests.unit.workflow.conftest import Screening


class Counted:
    """Counts reservations and releases of every bulkhead."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reserves = self.releases = 0
        reserve, release = Bulkhead.reserve, Bulkhead.release

        def counted_reserve(bh: Bulkhead, *, force: bool = False) -> None:
            reserve(bh, force=force)
            self.reserves += 1

        def counted_release(bh: Bulkhead) -> None:
            self.releases += 1
            release(bh)

        monkeypatch.setattr(Bulkhead, "reserve", counted_reserve)
        monkeypatch.setattr(Bulkhead, "release", counted_release)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    return Counted(monkeypatch)


def load(ops: Operations, workflow: str = "echo") -> Load:
    return ops.executor.admission.load(ops.registry.get(workflow))


async def test_accepted_and_finished(ops: Operations, counted: Counted) -> None:
    result = await ops.start(StartRequest(workflow="echo", wait=True), token="t", remaining_s=10)
    assert result.created and result.run.state is RunState.SUCCEEDED
    await eventually(lambda: counted.releases == 1)
    assert counted.reserves == 1 and load(ops) == Load(0, 0)


async def test_refused_by_security_reserves_nothing(
    ops: Operations, counted: Counted, screening: Screening
) -> None:
    screening.refuse = PermissionDenied("no")
    with pytest.raises(PermissionDenied):
        await ops.start(StartRequest(workflow="echo"), token="t", remaining_s=10)
    assert (counted.reserves, counted.releases) == (0, 0) and load(ops) == Load(0, 0)


async def test_store_failure_releases_once(
    ops: Operations, counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(new: Any) -> Any:
        raise Unavailable("run store down")

    monkeypatch.setattr(ops.store, "create_run", broken)
    with pytest.raises(Unavailable):
        await ops.start(StartRequest(workflow="echo"), token="t", remaining_s=10)
    assert (counted.reserves, counted.releases) == (1, 1) and load(ops) == Load(0, 0)


@pytest.mark.parametrize("wait", [False, True])
async def test_idempotent_replay_releases_once(ops: Operations, counted: Counted, wait: bool) -> None:
    req = StartRequest(workflow="sleep", params={"seconds": 0.2}, idempotency_key="k")
    first = await ops.start(req, token="t", remaining_s=10)
    again = await ops.start(dataclasses.replace(req, wait=wait), token="t", remaining_s=10)
    assert first.created and not again.created and again.run.run_id == first.run.run_id
    await eventually(lambda: counted.releases == 2)  # the replay's at once, the run's when it ends
    await ops.executor.wait_terminal(first.run.run_id, within_s=10)
    assert counted.reserves == 2 and load(ops, "sleep") == Load(0, 0)


async def test_scheduled_run_reserves_when_due(ops: Operations, counted: Counted) -> None:
    req = StartRequest(workflow="echo", not_before=time.time() + 0.3, wait=True)
    result = await ops.start(req, token="t", remaining_s=10)
    assert result.run.state is RunState.SUCCEEDED
    await eventually(lambda: counted.releases == 1)
    assert counted.reserves == 1 and load(ops) == Load(0, 0)


async def test_full_bulkhead_sheds_with_retry_delay(ops: Operations, counted: Counted) -> None:
    ops.registry.register("narrow", _idle, WorkflowPolicy(max_concurrency=1, max_queue=0))
    held = ops.executor.admission.admit(ops.registry.get("narrow"))
    with pytest.raises(ResourceExhausted, match="capacity") as info:
        await ops.start(StartRequest(workflow="narrow"), token="t", remaining_s=10)
    assert info.value.retry_after_s > 0
    assert ops.executor.stats_of("narrow").errors_by_category["resource"] == 1
    held.release()
    assert (counted.reserves, counted.releases) == (1, 1) and load(ops, "narrow") == Load(0, 0)


async def _idle(ctx: Any) -> None:
    return None


def test_ticket_releases_once_and_hands_over() -> None:
    admission = Admission()
    registry = WorkflowRegistry()
    register_builtins(registry)
    echo = registry.get("echo")
    with admission.admit(echo) as ticket:
        taken = ticket.hand_over()
        assert not ticket.held and taken.held
    assert admission.load(echo).queued == 1  # the handed-over reservation outlives the block
    taken.release()
    taken.release()
    assert admission.load(echo) == Load(0, 0)
    assert not admission.admit(echo, defer=True).held  # a scheduled run reserves when due
