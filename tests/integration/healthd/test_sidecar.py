"""Sidecar mode: heal by command or admin RPC; escalate via liveness when healing keeps failing."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from healthd import EventKind, HealState, HealthEngine
from tests.healthd_util import config, eventually, flag_check

PY = sys.executable


def _flag_check(flag: Path) -> dict[str, Any]:
    return flag_check(flag, failure_threshold=2)


@pytest.fixture
async def engines() -> AsyncIterator[list[HealthEngine]]:
    made: list[HealthEngine] = []
    yield made
    for engine in made:
        await engine.stop()


async def _start(engines: list[HealthEngine], component: dict[str, Any]) -> HealthEngine:
    engine = HealthEngine(config(mode="sidecar", components=[component]))
    engines.append(engine)
    await engine.start()
    return engine


async def test_heal_by_command(engines: list[HealthEngine], tmp_path: Path) -> None:
    flag = tmp_path / "up"
    flag.touch()
    fix = [PY, "-c", f"open({str(flag)!r}, 'w').close()"]
    engine = await _start(
        engines,
        {"name": "svc", "checks": [_flag_check(flag)], "healing": {"action": "command", "command": fix}},
    )
    await eventually(lambda: engine.statuses()["svc"].value == "SERVING")
    flag.unlink()
    await eventually(lambda: any(e.kind is EventKind.HEAL_RESULT for e in engine.events.since()), 5)
    await eventually(
        lambda: engine.snapshot().components[0].heal_state is HealState.HEALTHY and flag.exists(), 5
    )
    result = next(e for e in engine.events.since() if e.kind is EventKind.HEAL_RESULT)
    assert result.new == "ok" and "exit 0" in result.message


async def test_failing_heal_command_backs_off_then_escalates(
    engines: list[HealthEngine], tmp_path: Path
) -> None:
    healing = {
        "action": "command",
        "command": [PY, "-c", "raise SystemExit('cannot fix')"],
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
        "max_attempts": 3,
        "start_timeout_s": 0.3,  # start-up grace: failures before it are not yet failures
    }
    engine = await _start(
        engines, {"name": "svc", "checks": [_flag_check(tmp_path / "never")], "healing": healing}
    )
    await eventually(lambda: engine.statuses()["liveness"].value == "NOT_SERVING", 10)
    failures = [e for e in engine.events.since() if e.kind is EventKind.HEAL_RESULT]
    assert [e.new for e in failures] == ["failed"] * 3 and "cannot fix" in failures[0].message


async def test_heal_by_admin_rpc_with_token(engines: list[HealthEngine], tmp_path: Path) -> None:
    flag = tmp_path / "up"
    flag.touch()
    token_file = tmp_path / "token"
    token_file.write_text("vgl_abc_secret\n")
    calls: list[str] = []

    def reset(_request: bytes, context: grpc.ServicerContext) -> bytes:
        calls.append(dict(context.invocation_metadata()).get("authorization", ""))
        flag.touch()
        return b""

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(reset)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.v1.Admin", {"Reset": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        rpc = {
            "address": f"127.0.0.1:{port}",
            "method": "/test.v1.Admin/Reset",
            "token_file": str(token_file),
        }
        engine = await _start(
            engines,
            {
                "name": "svc",
                "checks": [_flag_check(flag)],
                "healing": {"action": "admin_rpc", "admin_rpc": rpc},
            },
        )
        await eventually(lambda: engine.statuses()["svc"].value == "SERVING")
        flag.unlink()
        await eventually(lambda: calls, 5)
        assert calls == ["Bearer vgl_abc_secret"]
        await eventually(lambda: engine.snapshot().components[0].heal_state is HealState.HEALTHY, 5)
    finally:
        await server.stop(0)


@pytest.mark.parametrize(
    ("token_file", "expected"),
    [(None, "UNAVAILABLE"), ("missing", "cannot read token file")],
)
async def test_admin_rpc_failures_are_failed_heals(
    engines: list[HealthEngine], tmp_path: Path, token_file: str | None, expected: str
) -> None:
    rpc = {"address": "127.0.0.1:1", "method": "/test.v1.Admin/Reset"}
    if token_file is not None:
        rpc["token_file"] = str(tmp_path / token_file)
    healing = {"action": "admin_rpc", "admin_rpc": rpc, "backoff_base_s": 5, "start_timeout_s": 0.3}
    engine = await _start(
        engines, {"name": "svc", "checks": [_flag_check(tmp_path / "x")], "healing": healing}
    )
    await eventually(lambda: engine.snapshot().components[0].heal_state is HealState.BACKOFF, 15)
    result = next(e for e in engine.events.since() if e.kind is EventKind.HEAL_RESULT)
    assert result.new == "failed" and expected in result.message
