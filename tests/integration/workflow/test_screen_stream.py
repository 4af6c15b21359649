"""The workflow service's Screen over ScreenStream against the real security service: each
call gets its own outcome, a killed security process fails pending calls UNAVAILABLE and the
next call after a restart succeeds, deadlines are kept locally, and an older security
service without ScreenStream is screened unary."""

from __future__ import annotations

import asyncio
import copy
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from services.common import (
    InvalidArgument,
    PermissionDenied,
    PooledStub,
    Unauthenticated,
    Unavailable,
    pooled_channels,
)
from services.security import Level, new_key
from services.security._service import SecurityServicer
from services.workflow._app import WorkflowApp
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._screen_stream import ScreenStreams
from services.workflow._security_client import SECURITY_SERVICE_CONFIG, Screened, SecurityClient
from tests.conftest import Proc, eventually
from tests.integration.workflow.conftest import (
    FAST_SCRYPT_N,
    SecurityEnv,
    client,
    free_port,
    start_security,
)
from vigil.security.v1 import security_pb2 as _spb
from vigil.security.v1 import security_pb2_grpc as _spb_grpc
from vigil.workflow.v1 import workflow_pb2 as pb

OPEN = WorkflowPolicy()
SCHEMA = WorkflowPolicy(input_schema={"type": "object", "properties": {"n": {"type": "integer"}}})
PRIVILEGED = WorkflowPolicy(required_level="PRIVILEGED")


@pytest.fixture
async def security_client() -> AsyncIterator[Callable[..., SecurityClient]]:
    made: list[SecurityClient] = []

    def make(address: str, **kw: Any) -> SecurityClient:
        made.append(SecurityClient(address, **kw))
        return made[-1]

    yield make
    for c in made:
        await c.close()


async def screen(c: SecurityClient, token: str, params: dict[str, Any], **kw: Any) -> Screened:
    kw.setdefault("policy", OPEN)
    kw.setdefault("request_id", "t")
    return await c.screen(token=token, workflow="echo", params=params, **kw)


async def test_interleaved_calls_each_get_their_own_outcome(
    security: SecurityEnv, security_client: Callable[..., SecurityClient]
) -> None:
    c = security_client(security.address, timeout_s=20)
    await screen(c, security.alice, {})  # verified once (scrypt), cached from now on

    async def one(i: int) -> object:
        kind = i % 4
        try:
            if kind == 0:
                return await screen(
                    c, security.alice, {"n": i, "mail": f"u{i}@example.com"}, request_id=f"r{i}"
                )
            if kind == 1:
                return await screen(c, "vgl_000000000000_not-a-real-secret", {"n": i})
            if kind == 2:
                return await screen(c, security.alice, {"n": "not a number"}, policy=SCHEMA)
            return await screen(c, security.alice, {"n": i}, policy=PRIVILEGED)
        except Exception as exc:
            return exc

    outcomes = await asyncio.gather(*(one(i) for i in range(200)))
    audit_ids = set()
    for i, got in enumerate(outcomes):
        kind = i % 4
        if kind == 0:
            assert isinstance(got, Screened), got
            assert got.subject == "alice" and got.params["n"] == i, "an answer reached the wrong caller"
            assert got.params["mail"] == "[REDACTED:email]" and got.redactions == {"email": 1}
            audit_ids.add(got.audit_id)
        elif kind == 1:
            assert isinstance(got, Unauthenticated), got
        elif kind == 2:
            assert isinstance(got, InvalidArgument) and got.violations, got
            assert any(v.field == "params.n" for v in got.violations)
        else:
            assert isinstance(got, PermissionDenied) and "PRIVILEGED" in got.message, got
    assert len(audit_ids) == 50
    assert c._screens is not None and c._screens.streaming and 1 <= c._screens.opened <= 4
    assert c._screens.in_flight == 0
    assert c.breaker.state.name == "CLOSED", "refusals must not count as security failures"


async def test_start_run_is_screened_on_the_stream(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as wc:
        runs = await asyncio.gather(*(wc.start_run("echo", {"i": i}, wait=True) for i in range(20)))
    assert all(run.state == pb.RUN_STATE_SUCCEEDED for run, _ in runs)
    assert app.security._screens is not None and app.security._screens.opened >= 1


async def test_stream_can_be_switched_off(start_workflow: Any, security: SecurityEnv) -> None:
    app = await start_workflow(security.address, security_stream=False)
    async with client(app, security.alice) as wc:
        run, _ = await wc.start_run("echo", {"i": 1}, wait=True)
    assert run.state == pb.RUN_STATE_SUCCEEDED and app.security._screens is None


class OldSecurityServicer(SecurityServicer):
    """A security service from before ScreenStream: the generated base answers UNIMPLEMENTED."""

    ScreenStream = _spb_grpc.SecurityServiceServicer.ScreenStream  # type: ignore[assignment]


async def test_unimplemented_falls_back_to_unary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security_client: Callable[..., SecurityClient]
) -> None:
    monkeypatch.setattr("services.security._app.SecurityServicer", OldSecurityServicer)
    env = await start_security(tmp_path)
    try:
        c = security_client(env.address)
        first = await asyncio.gather(*(screen(c, env.alice, {"n": i}) for i in range(5)))
        assert [s.params["n"] for s in first] == [0, 1, 2, 3, 4]
        assert c._screens is not None and not c._screens.streaming
        opened = c._screens.opened
        with pytest.raises(Unauthenticated):
            await screen(c, "garbage", {})
        assert (await screen(c, env.alice, {"n": 9})).params["n"] == 9
        assert c._screens.opened == opened, "unary until RETRY_STREAM_S has passed"
    finally:
        await env.server.stop(0)


# -- a real security process, stopped and killed ------------------------------------------


class SecurityProcess:
    """`python -m services.security` on a fixed port, restartable on it."""

    def __init__(self, spawn: Callable[..., Proc], tmp: Path) -> None:
        self.spawn, self.port = spawn, free_port()
        self.token, entry = new_key("alice", Level.AUTHENTICATED, n=FAST_SCRYPT_N)
        self.config = tmp / "security.yaml"
        raw = {
            "server": {"port": self.port, "host": "127.0.0.1", "grace_period_s": 0.5, "reuse_port": True},
            "auth": {"api_keys": [entry.model_dump(mode="json")]},
            "audit": {"db_path": str(tmp / "audit.db")},
        }
        self.config.write_text(yaml.safe_dump(raw))
        self.proc: Proc | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = self.spawn("-m", "services.security", "--config", str(self.config))
        assert self.proc.wait_for_port() == self.port

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.popen.send_signal(sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.popen.kill()
        self.proc.popen.wait(10)


@pytest.fixture
def security_process(spawn: Callable[..., Proc], tmp_path: Path) -> SecurityProcess:
    proc = SecurityProcess(spawn, tmp_path)
    proc.start()
    return proc


OnStream = tuple[SecurityProcess, SecurityClient, ScreenStreams]


@pytest.fixture
async def on_stream(
    security_process: SecurityProcess, security_client: Callable[..., SecurityClient]
) -> OnStream:
    """The security process, a client of it and the client's streams, one screened already."""
    c = security_client(security_process.address, timeout_s=30)
    assert (await screen(c, security_process.token, {"n": 0})).subject == "alice"
    assert c._screens is not None
    return security_process, c, c._screens


async def test_killed_mid_stream_pending_calls_fail_unavailable_then_recover(on_stream: OnStream) -> None:
    sec, c, streams = on_stream
    opened = streams.opened
    sec.signal(signal.SIGSTOP)  # the calls below reach the stream and wait there
    pending = [asyncio.create_task(screen(c, sec.token, {"n": i}, remaining_s=30)) for i in range(8)]
    await eventually(lambda: streams.in_flight == 8)
    sec.kill()
    done = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 15)
    assert all(isinstance(e, Unavailable) for e in done), done
    sec.start()

    async def screened() -> bool:
        try:
            return (await screen(c, sec.token, {"n": 1}, remaining_s=2)).params["n"] == 1
        except Unavailable:
            return False  # reconnecting, or the breaker still open after the failures

    await eventually(screened, timeout=20)
    assert streams.opened > opened, "the broken stream is replaced by a new one"
    assert streams.streaming


async def test_deadline_is_kept_locally_and_the_late_answer_dropped(on_stream: OnStream) -> None:
    sec, c, streams = on_stream
    (stream,) = [s for s in streams._streams if s is not None]
    sec.signal(signal.SIGSTOP)
    try:
        with pytest.raises(Unavailable, match="DEADLINE_EXCEEDED"):
            await asyncio.wait_for(screen(c, sec.token, {"n": 1}, remaining_s=0.3), 10)
        assert streams.in_flight == 0
    finally:
        sec.signal(signal.SIGCONT)
    # The stream survives: the late answer is dropped and the next calls are answered on it.
    results = await asyncio.gather(*(screen(c, sec.token, {"n": i}, remaining_s=10) for i in range(2, 6)))
    assert [r.params["n"] for r in results] == [2, 3, 4, 5]
    assert stream.broken is None and stream in streams._streams


async def test_a_killed_replica_costs_a_retry_on_another_not_a_failed_call(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """Two replicas on one SO_REUSEPORT port (one audit log, as under healthd). Calls stuck on
    streams to a stopped replica are screened by the other once it is killed."""
    a = SecurityProcess(spawn, tmp_path)
    a.start()
    b = copy.copy(a)  # the same config: keys, audit log and port
    b.start()
    # 16 connections: the kernel spreads them over both replicas (all on one: 2 ** -15).
    channels = pooled_channels(a.address, 16, SECURITY_SERVICE_CONFIG)
    unary = PooledStub(_spb_grpc.SecurityServiceStub, channels)
    streams = ScreenStreams(channels, unary.Screen)
    request = _spb.ScreenRequest(token=a.token, workflow="echo", request_id="t")
    try:
        for _ in range(64):  # streams opened on every connection
            await streams.Screen(request, timeout=10)
        await eventually(lambda: all(c.get_state() is grpc.ChannelConnectivity.READY for c in channels))
        for _ in range(16):
            await streams.Screen(request, timeout=10)
        a.signal(signal.SIGSTOP)
        calls = [asyncio.create_task(streams.Screen(request, timeout=20)) for _ in range(32)]
        await eventually(
            lambda: streams.in_flight > 0 and sum(t.done() for t in calls) == 32 - streams.in_flight
        )
        stuck = streams.in_flight
        a.kill()
        answered = await asyncio.wait_for(asyncio.gather(*calls), 20)
        assert all(r.principal.subject == "alice" for r in answered)
        assert stuck > 0, "no connection reached the stopped replica: nothing was tested"
    finally:
        await streams.close()
        await unary.close()
