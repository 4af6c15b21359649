"""Workflows as plugins: a handler plus its declared policy, found by name.

Sources, later ones overriding earlier ones by name: the built-ins, the ``vigil.workflows``
entry-point group (``name = "module:attr"``), and the service config (``name: module:attr``).
The attribute is a `Workflow`, or a callable decorated with `@workflow(...)` (its policy), or
a plain callable (default policy).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import jsonschema

from services.common import NotFound
from services.workflow._context import RunContext
from services.workflow._policy_config import WorkflowPolicy

__all__ = ["ENTRY_POINT_GROUP", "Handler", "Workflow", "WorkflowRegistry", "resolve_ref", "workflow"]

ENTRY_POINT_GROUP = "vigil.workflows"
Handler = Callable[[RunContext], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Any])
_POLICY_ATTR = "__vigil_policy__"


@dataclass(frozen=True)
class Workflow:
    """A registered workflow.

    ``handler`` is ``async def (ctx) -> JSON`` for inline isolation. For process isolation
    ``ref`` (``module:attr``) names a synchronous ``def (params) -> JSON`` that the worker
    process imports itself; ``handler`` is then unused.
    """

    name: str
    policy: WorkflowPolicy
    handler: Handler | None = None
    ref: str | None = None


def workflow(**policy: Any) -> Callable[[F], F]:
    """Declare a handler's policy: ``@workflow(timeout_s=5, prompt_fields=["prompt"])``."""
    declared = WorkflowPolicy(**policy)

    def mark(fn: F) -> F:
        setattr(fn, _POLICY_ATTR, declared)
        return fn

    return mark


def resolve_ref(ref: str) -> Any:
    """Import ``module:attr`` (attr may be dotted); ValueError naming the reference on failure."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{ref!r} is not of the form module:attr")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {ref!r}: {exc}") from None
    return obj


def _build(name: str, obj: Any, ref: str | None, policy: WorkflowPolicy | None) -> Workflow:
    if isinstance(obj, Workflow):
        return Workflow(name, policy or obj.policy, obj.handler, obj.ref)
    if not callable(obj):
        raise ValueError(f"workflow {name!r}: {obj!r} is neither a Workflow nor callable")
    chosen = policy or getattr(obj, _POLICY_ATTR, None) or WorkflowPolicy()
    if chosen.input_schema is not None:
        try:  # a broken schema is a start-up error, not a failure of every run
            jsonschema.Draft202012Validator.check_schema(chosen.input_schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"workflow {name!r}: invalid input_schema: {exc.message}") from None
    if chosen.isolation == "process":
        if ref is None or inspect.iscoroutinefunction(obj):
            raise ValueError(f"workflow {name!r}: process isolation needs a synchronous module:attr handler")
        return Workflow(name, chosen, None, ref)
    if not inspect.iscoroutinefunction(obj):
        raise ValueError(f"workflow {name!r}: inline handlers must be async functions")
    return Workflow(name, chosen, obj, ref)


class WorkflowRegistry:
    """Workflows by name. Filled at start-up, read-only while serving."""

    def __init__(self) -> None:
        self._by_name: dict[str, Workflow] = {}

    def add(self, wf: Workflow) -> None:
        self._by_name[wf.name] = wf

    def register(
        self, name: str, handler: Callable[..., Any], policy: WorkflowPolicy | None = None
    ) -> Workflow:
        """Register an in-process callable (ref is derived for process isolation)."""
        ref = f"{handler.__module__}:{handler.__qualname__}"
        wf = _build(name, handler, ref, policy)
        self.add(wf)
        return wf

    def register_ref(self, name: str, ref: str, policy: WorkflowPolicy | None = None) -> Workflow:
        """Register ``module:attr`` (config and entry points)."""
        wf = _build(name, resolve_ref(ref), ref, policy)
        self.add(wf)
        return wf

    def load_entry_points(
        self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
    ) -> list[str]:
        """Register every ``vigil.workflows`` entry point; returns the names added."""
        eps = (
            entry_points
            if entry_points is not None
            else importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        )
        added = []
        for ep in eps:
            self.register_ref(ep.name, ep.value)
            added.append(ep.name)
        return added

    def get(self, name: str) -> Workflow:
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._by_name, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise NotFound(f"workflow {name!r} is not registered{hint} (ListWorkflows lists them)") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def all(self) -> list[Workflow]:
        return [self._by_name[n] for n in sorted(self._by_name)]
