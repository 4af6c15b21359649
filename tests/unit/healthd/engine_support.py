"""Helpers of the engine tests (`test_engine*.py`): components, and engines started for a test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from healthd import EventKind, HealthEngine
from tests.healthd_util import config, flag_check, proc_check

PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(120)"]
CRASHER = [PY, "-c", "raise SystemExit(3)"]


def slow_flag_check(flag: Path) -> dict[str, Any]:
    return flag_check(flag, timeout_s=2)


def restart_healing(**kw: Any) -> dict[str, Any]:
    return {"action": "restart", "backoff_base_s": 0.1, "backoff_cap_s": 0.4, "backoff_jitter": 0, **kw}


def healed_sleeper(name: str = "svc", **extra: Any) -> dict[str, Any]:
    """A component whose child sleeps, with a process check and restart healing."""
    return {
        "name": name,
        "process": {"argv": SLEEPER},
        "checks": [proc_check()],
        "healing": restart_healing(),
        **extra,
    }


def crashy(**healing: Any) -> dict[str, Any]:
    """A component whose child always exits at once."""
    return {
        "name": "crashy",
        "process": {"argv": CRASHER},
        "checks": [proc_check()],
        "healing": restart_healing(**healing),
    }


async def start_engine(engines: list[HealthEngine], **data: Any) -> HealthEngine:
    engine = HealthEngine(config(**data), sink=lambda _line: None)
    engines.append(engine)
    await engine.start()
    return engine


def event_kinds(engine: HealthEngine, component: str) -> list[EventKind]:
    return [e.kind for e in engine.events.since(component=component)]
