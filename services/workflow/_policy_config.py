"""Declared policy of a workflow: validated, frozen, documented (from code or from config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from services.common import ConfigModel

__all__ = ["BreakerSettings", "FallbackSettings", "RetrySettings", "WorkflowPolicy"]

SecurityLevelName = Literal["PUBLIC", "AUTHENTICATED", "PRIVILEGED", "ADMIN"]


class RetrySettings(ConfigModel):
    """Exponential backoff with full jitter (see `RetryPolicy`)."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    """Attempts including the first."""
    initial_backoff_s: float = Field(default=0.1, gt=0, le=3600)
    """Cap of the first backoff."""
    max_backoff_s: float = Field(default=5.0, gt=0, le=3600)
    """Largest backoff cap."""
    multiplier: float = Field(default=2.0, ge=1, le=10)
    """Growth of the backoff cap per attempt."""


class BreakerSettings(ConfigModel):
    """Failure-rate circuit breaker over a sliding window (see `CircuitBreaker`)."""

    window_s: float = Field(default=30.0, gt=0, le=3600)
    """Sliding window length."""
    min_calls: int = Field(default=10, ge=1, le=100_000)
    """Calls in the window before the failure rate is judged."""
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    """Failure fraction that opens the breaker."""
    open_s: float = Field(default=10.0, gt=0, le=3600)
    """Time open before half-open probes."""
    half_open_probes: int = Field(default=1, ge=1, le=100)
    """Concurrent probes in half-open; that many successes close it."""


class FallbackSettings(ConfigModel):
    """One entry of a fallback chain: another workflow, or a static result."""

    workflow: str | None = None
    """Workflow to run with the same params (its own fallbacks are not followed)."""
    result: Any = None
    """Static result used when ``workflow`` is unset."""

    @property
    def label(self) -> str:
        return self.workflow if self.workflow is not None else "static"


class WorkflowPolicy(ConfigModel):
    """Everything the service needs to know to screen, run and protect a workflow."""

    description: str = ""
    """What it does (ListWorkflows)."""
    input_schema: dict[str, Any] | None = None
    """JSON Schema (2020-12) of the params, checked by the security service; None: any object."""
    prompt_fields: list[str] = []
    """Top-level params keys screened as prompts."""
    path_fields: list[str] = []
    """Top-level params keys screened as file paths."""
    trajectory_fields: list[str] = []
    """Top-level params keys screened as trajectories."""
    required_level: SecurityLevelName = "AUTHENTICATED"
    """Minimum caller level (the security policy may require more)."""
    timeout_s: float = Field(default=30.0, gt=0, le=86_400)
    """Per-attempt timeout."""
    run_timeout_s: float = Field(default=300.0, gt=0, le=7 * 86_400)
    """Deadline of the whole run from acceptance, retries included (a waiting caller's may be sooner)."""
    retry: RetrySettings = RetrySettings()
    """Retries of failed attempts."""
    breaker: BreakerSettings = BreakerSettings()
    """Circuit breaker around the handler."""
    fallback: list[FallbackSettings] = []
    """Tried in order when the run fails (not when cancelled or timed out)."""
    max_concurrency: int = Field(default=64, ge=1, le=10_000)
    """Bulkhead: runs executing at once."""
    max_queue: int = Field(default=1000, ge=0, le=1_000_000)
    """Accepted runs waiting for a slot; beyond it StartRun is shed with RESOURCE_EXHAUSTED."""
    priority: int = Field(default=0, ge=-100, le=100)
    """Default priority; runs below 0 are low priority and shed first under RESTRICTED."""
    isolation: Literal["inline", "process"] = "inline"
    """inline: async handler on the event loop; process: sync handler in a limited worker process."""
    cpu_time_s: int = Field(default=30, ge=1, le=86_400)
    """CPU-seconds limit of one attempt (process isolation)."""
    memory_mb: int = Field(default=512, ge=16, le=1 << 20)
    """Address-space limit of one attempt beyond the worker's baseline (process isolation)."""

    @model_validator(mode="after")
    def _check(self) -> WorkflowPolicy:
        if self.retry.initial_backoff_s > self.retry.max_backoff_s:
            raise ValueError("retry.initial_backoff_s must not exceed retry.max_backoff_s")
        return self
