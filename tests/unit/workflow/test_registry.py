from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

from services.common import NotFound
from services.workflow._builtins import register_builtins
from services.workflow._context import RunContext
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._registry import Workflow, WorkflowRegistry, resolve_ref, workflow


@workflow(timeout_s=7, prompt_fields=["prompt"], priority=5)
async def declared(ctx: RunContext) -> Any:
    return 1


async def plain(ctx: RunContext) -> Any:
    return 2


def sync_fn(params: dict[str, Any]) -> Any:
    return 3


PREBUILT = Workflow("prebuilt", WorkflowPolicy(priority=9), plain)


def test_builtins_are_registered() -> None:
    reg = WorkflowRegistry()
    register_builtins(reg)
    assert [w.name for w in reg.all()] == ["artifact.verify", "echo", "flaky", "sleep"]
    assert reg.get("artifact.verify").policy.path_fields == ["path"]


def test_decorated_policy_is_used() -> None:
    wf = WorkflowRegistry().register("d", declared)
    assert (wf.policy.timeout_s, wf.policy.prompt_fields, wf.policy.priority) == (7, ["prompt"], 5)


def test_register_ref_from_config_with_policy_override() -> None:
    reg = WorkflowRegistry()
    wf = reg.register_ref("x", f"{__name__}:declared", WorkflowPolicy(priority=-1))
    assert wf.policy.priority == -1 and wf.handler is declared
    assert reg.register_ref("p", f"{__name__}:PREBUILT").policy.priority == 9


def test_process_isolation_keeps_the_reference() -> None:
    wf = WorkflowRegistry().register_ref("s", f"{__name__}:sync_fn", WorkflowPolicy(isolation="process"))
    assert wf.ref == f"{__name__}:sync_fn" and wf.handler is None


@pytest.mark.parametrize(
    ("ref", "policy", "message"),
    [
        ("nocolon", None, "module:attr"),
        ("no.such.module:x", None, "cannot load"),
        (f"{__name__}:missing", None, "cannot load"),
        (f"{__name__}:sync_fn", None, "must be async"),
        (f"{__name__}:plain", WorkflowPolicy(isolation="process"), "synchronous"),
        (f"{__name__}:plain", WorkflowPolicy(input_schema={"type": "nonsense"}), "invalid input_schema"),
    ],
)
def test_bad_registrations_name_the_problem(ref: str, policy: WorkflowPolicy | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkflowRegistry().register_ref("w", ref, policy)


def test_entry_points_are_loaded() -> None:
    ep = importlib.metadata.EntryPoint(name="from-ep", value=f"{__name__}:declared", group="vigil.workflows")
    reg = WorkflowRegistry()
    assert reg.load_entry_points([ep]) == ["from-ep"]
    assert reg.get("from-ep").handler is declared


def test_unknown_workflow_is_not_found() -> None:
    with pytest.raises(NotFound, match="'nope'"):
        WorkflowRegistry().get("nope")


def test_resolve_dotted_attribute() -> None:
    assert resolve_ref("os:path.join") is __import__("os").path.join
