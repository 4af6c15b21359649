"""What the service says about a workflow: its declaration and its live state on this replica.

One definition read by ListWorkflows and by ``/metrics`` (`Executor.catalogue` builds it), so
the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.workflow._admission import Load
from services.workflow._events import WorkflowStats
from services.workflow._policies import BreakerState
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._registry import Workflow

__all__ = ["CatalogueEntry"]


@dataclass(frozen=True)
class CatalogueEntry:
    workflow: Workflow
    breaker: BreakerState
    stats: WorkflowStats
    load: Load

    @property
    def name(self) -> str:
        return self.workflow.name

    @property
    def policy(self) -> WorkflowPolicy:
        """Description, input schema, limits, retry, fallbacks: everything declared."""
        return self.workflow.policy
