"""Breakers count failures, not verdicts (issue 12): one caller's runs on missing artifacts
(NOT_FOUND from the real security service) never refuse another caller's good runs."""

from __future__ import annotations

import asyncio

from services.workflow._app import WorkflowApp
from services.workflow._policies import BreakerState
from services.workflow.client import pb
from tests.integration.workflow.conftest import SecurityEnv, client


async def test_missing_artifacts_never_open_a_breaker_for_other_callers(
    app: WorkflowApp, security: SecurityEnv
) -> None:
    missing = {"path": "no-such-model.bin", "sha256": "0" * 64}
    refused: list[str] = []
    async with client(app, security.alice) as bad, client(app, security.admin) as good:

        async def good_run(i: int) -> pb.Run | None:
            try:
                run, _ = await good.start_run("echo", {"i": i}, wait=True)
            except Exception as exc:  # every refusal is the finding; keep going to count them all
                refused.append(repr(exc))
                return None
            return run

        results = []
        for i in range(40):  # interleaved: one missing-artifact run, then one good run
            verdict, _ = await bad.start_run("artifact.verify", missing, wait=True)
            results.append((verdict, await good_run(i)))

    assert refused == []
    for verdict, run in results:
        assert verdict.state == pb.RUN_STATE_FAILED, verdict
        assert "no such file" in verdict.error.message
        assert verdict.attempts == 1  # an answer is not retried
        assert run is not None and run.state == pb.RUN_STATE_SUCCEEDED
    assert app.security.breaker.state is BreakerState.CLOSED
    assert app.executor.breaker(app.registry.get("artifact.verify")).state is BreakerState.CLOSED


async def test_an_unreachable_security_service_still_opens_its_breaker(
    app: WorkflowApp, security: SecurityEnv
) -> None:
    await security.server.stop(0)
    async with client(app, security.admin) as c:
        for _ in range(8):
            await asyncio.gather(*(c.start_run("echo", {}) for _ in range(2)), return_exceptions=True)
    assert app.security.breaker.state is not BreakerState.CLOSED
