"""Built-in workflows: echo, sleep, flaky (drills) and artifact.verify (security service)."""

from __future__ import annotations

import asyncio
from typing import Any

from services.common import FailedPrecondition, Unavailable
from services.workflow._context import RunContext
from services.workflow._policy_config import RetrySettings
from services.workflow._registry import WorkflowRegistry, workflow

__all__ = ["FlakyFailure", "register_builtins"]


class FlakyFailure(RuntimeError):
    """The injected failure of the ``flaky`` workflow (retryable, counts for the breaker)."""


@workflow(description="Returns its params unchanged.", required_level="AUTHENTICATED", timeout_s=5)
async def echo(ctx: RunContext) -> Any:
    return ctx.params


@workflow(
    description="Sleeps for `seconds` (cancellable).",
    input_schema={
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 3600}},
        "required": ["seconds"],
        "additionalProperties": False,
    },
    timeout_s=3600,
    run_timeout_s=3600,
    retry=RetrySettings(max_attempts=1),
)
async def sleep(ctx: RunContext) -> Any:
    seconds = float(ctx.params["seconds"])
    await asyncio.sleep(seconds)
    return {"slept_s": seconds}


@workflow(
    description="Fails the first `failures` attempts of a run, then succeeds (attempts are counted "
    "durably, so a restart does not reset it). For resilience drills.",
    input_schema={
        "type": "object",
        "properties": {"failures": {"type": "integer", "minimum": 0, "maximum": 1000}},
        "required": ["failures"],
        "additionalProperties": False,
    },
    retry=RetrySettings(max_attempts=5, initial_backoff_s=0.01, max_backoff_s=0.2),
)
async def flaky(ctx: RunContext) -> Any:
    failures = int(ctx.params["failures"])
    if ctx.attempt <= failures:
        raise FlakyFailure(f"injected failure {ctx.attempt} of {failures}")
    return {"attempts": ctx.attempt}


@workflow(
    description="Verifies a file's SHA-256 through the security service's VerifyArtifact.",
    input_schema={
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "maxLength": 4096},
            "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        },
        "required": ["path", "sha256"],
        "additionalProperties": False,
    },
    path_fields=["path"],
    timeout_s=60,
)
async def artifact_verify(ctx: RunContext) -> Any:
    if ctx.deps is None:
        raise Unavailable("no security service client is configured")
    outcome = await ctx.deps.verify_artifact(str(ctx.params["path"]), str(ctx.params["sha256"]))
    if not outcome.get("match"):
        # A decision, not a fault: FailedPrecondition is not retried.
        raise FailedPrecondition(f"artifact digest mismatch: {outcome.get('message') or outcome}")
    return outcome


def register_builtins(registry: WorkflowRegistry) -> None:
    registry.register("echo", echo)
    registry.register("sleep", sleep)
    registry.register("flaky", flaky)
    registry.register("artifact.verify", artifact_verify)
