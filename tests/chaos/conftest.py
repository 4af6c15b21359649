"""Chaos drill fixtures: a real local stack per drill (healthd supervising both services),
every process it started killed at teardown, and the drill table printed at the end."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bench import LocalStack
from tests.chaos.drill import PLUGIN, REPORTS, Drill, render
from tests.postgres import postgres_dsn, postgres_server

__all__ = ["FULL", "full", "postgres_dsn", "postgres_server"]

# `make chaos` sets VIGIL_CHAOS=full; `make test` runs only the drills not marked `full`.
FULL = os.environ.get("VIGIL_CHAOS") == "full"
full = pytest.mark.skipif(not FULL, reason="full drill: run with `make chaos`")


@pytest.fixture
async def drill_stack(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await make(name, **stack_kwargs) -> Drill`` on a started stack; all torn down after."""
    made: list[tuple[LocalStack, Drill]] = []

    async def make(
        name: str,
        *,
        concurrency: int = 4,
        delay_s: float = 0.1,
        start: bool = True,
        retry_unavailable: bool = False,
        **kw: Any,
    ) -> Drill:
        ledger = tmp_path / f"{name}.ledger"
        workflow = {"workflows": PLUGIN, **kw.pop("workflow", {})}
        stack = LocalStack(
            tmp_path / name, workflow=workflow, workflow_env={"CHAOS_LEDGER": str(ledger)}, **kw
        )
        drill = Drill(
            name, stack, ledger, concurrency=concurrency, delay_s=delay_s, retry_unavailable=retry_unavailable
        )
        made.append((stack, drill))
        if start:
            await stack.start()
        return drill

    yield make
    for stack, drill in made:
        await drill.close()
        stack.stop()
        for pid in stack.seen_pids:  # children orphaned by a killed healthd (or adopted ones)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORTS:
        terminalreporter.write_sep("=", "chaos drills")
        terminalreporter.write_line(render(REPORTS))
