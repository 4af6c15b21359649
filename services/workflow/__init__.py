"""Vigil workflow service: durable, screened, resilient execution of named workflows.

Plugin authors need `workflow` (declare a policy) and `RunContext` (what a handler gets).
"""

from services.workflow._bulkhead import Bulkhead
from services.workflow._config import LimitsConfig, WorkflowConfig, WorkflowEntry
from services.workflow._context import RunContext
from services.workflow._degradation import DegradationGate, Level
from services.workflow._executor import Executor
from services.workflow._model import (
    ErrorCategory,
    NewRun,
    Run,
    RunChange,
    RunError,
    RunPage,
    RunQuery,
    StepRecord,
)
from services.workflow._policies import BreakerOpen, BreakerState, CircuitBreaker, RetryPolicy
from services.workflow._policy_config import BreakerSettings, FallbackSettings, RetrySettings, WorkflowPolicy
from services.workflow._registry import Workflow, WorkflowRegistry, workflow
from services.workflow._schedule import ScheduleConfig, Scheduler
from services.workflow._sqlite_store import SQLiteRunStore
from services.workflow._states import TERMINAL_STATES, InvalidTransition, RunState, transition
from services.workflow._store import RunStore

__all__ = [
    "TERMINAL_STATES",
    "BreakerOpen",
    "BreakerSettings",
    "BreakerState",
    "Bulkhead",
    "CircuitBreaker",
    "DegradationGate",
    "ErrorCategory",
    "Executor",
    "FallbackSettings",
    "InvalidTransition",
    "Level",
    "LimitsConfig",
    "NewRun",
    "RetryPolicy",
    "RetrySettings",
    "Run",
    "RunChange",
    "RunContext",
    "RunError",
    "RunPage",
    "RunQuery",
    "RunState",
    "RunStore",
    "SQLiteRunStore",
    "ScheduleConfig",
    "Scheduler",
    "StepRecord",
    "Workflow",
    "WorkflowConfig",
    "WorkflowEntry",
    "WorkflowPolicy",
    "WorkflowRegistry",
    "transition",
    "workflow",
]
