"""Vigil workflow service: durable, screened, resilient execution of named workflows.

This package is the plugin API: what a workflow author imports. `workflow` declares a
handler's policy (its keyword arguments are the fields of `WorkflowPolicy`; retry, breaker and
fallback settings may be given as dicts or as the settings types below) and `RunContext` is
what an inline handler receives. Everything else (executor, stores, config, policies) is
internal to the service and imported from its private module.
"""

from services.workflow._context import RunContext
from services.workflow._policy_config import BreakerSettings, FallbackSettings, RetrySettings, WorkflowPolicy
from services.workflow._registry import workflow

__all__ = [
    "BreakerSettings",
    "FallbackSettings",
    "RetrySettings",
    "RunContext",
    "WorkflowPolicy",
    "workflow",
]
