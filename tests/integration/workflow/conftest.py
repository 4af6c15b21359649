"""Real workflow servers on port 0 (and, where a test needs it, the real security server)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import VigilServer
from services.workflow._app import WorkflowApp, build_app
from services.workflow._config import WorkflowConfig
from services.workflow.client import StartRetry, WorkflowClient, pb
from tests.integration.workflow import plugins

PLUGINS = "tests.integration.workflow.plugins"

TEST_WORKFLOWS: dict[str, Any] = {
    "counting": {"handler": f"{PLUGINS}:counting"},
    "privileged": {"handler": f"{PLUGINS}:privileged"},
    "sleeper": {"handler": f"{PLUGINS}:sleeper"},
    "leaky": {"handler": f"{PLUGINS}:leaky", "policy": {"retry": {"max_attempts": 1}}},
    "dependent": {
        "handler": f"{PLUGINS}:dependent",
        "policy": {
            "retry": {"max_attempts": 1},
            "breaker": {
                "window_s": 60,
                "min_calls": 3,
                "failure_rate": 0.5,
                "open_s": 0.5,
                "half_open_probes": 1,
            },
        },
    },
    "with_fallback": {
        "handler": f"{PLUGINS}:always_failing",
        "policy": {
            "retry": {"max_attempts": 2, "initial_backoff_s": 0.01, "max_backoff_s": 0.01},
            "fallback": [{"result": {"from": "cache"}}],
        },
    },
    "slow_retry": {
        "handler": f"{PLUGINS}:always_failing",
        "policy": {
            "retry": {"max_attempts": 100, "initial_backoff_s": 0.2, "max_backoff_s": 0.2, "multiplier": 1},
            # Only the deadline may end these retries: with the default breaker (10 calls) an
            # always-failing handler on a fast machine opens it first, a different stop.
            "breaker": {"min_calls": 1000},
        },
    },
    "narrow": {
        "handler": f"{PLUGINS}:sleeper",
        "policy": {"max_concurrency": 1, "max_queue": 0, "retry": {"max_attempts": 1}, "timeout_s": 600},
    },
}


async def check_latencies(channel: grpc.aio.Channel, busy: asyncio.Future[Any]) -> list[float]:
    """grpc.health.v1 Check latencies on ``channel``, one probe after another until ``busy``
    is done: what another caller of the server waits while ``busy`` runs."""
    health = health_pb2_grpc.HealthStub(channel)
    latencies = []
    while not busy.done():
        started = time.monotonic()
        await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        latencies.append(time.monotonic() - started)
    return latencies


def free_port() -> int:
    """A port nothing listens on (for 'security is down')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


StartWorkflow = Callable[..., Awaitable[WorkflowApp]]


@pytest.fixture
async def start_workflow(tmp_path: Path) -> AsyncIterator[StartWorkflow]:
    """Start real workflow servers on port 0; all are stopped at teardown."""
    apps: list[WorkflowApp] = []
    plugins.reset()

    async def start(security_address: str, **overrides: Any) -> WorkflowApp:
        data: dict[str, Any] = {
            "server": {"port": 0},
            "store_path": str(tmp_path / f"runs-{len(apps)}.db"),
            "store_synchronous": "NORMAL",
            "security_address": security_address,
            "healthd_address": None,
            "load_entry_points": False,
            "workflows": TEST_WORKFLOWS,
            "limits": {"max_params_bytes": 64 * 1024, "max_params_depth": 10, "poll_s": 0.2},
        }
        data.update(overrides)
        app = await build_app(WorkflowConfig.model_validate(data))
        await app.server.start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.server.stop(0)


@pytest.fixture
async def no_security_app(start_workflow: StartWorkflow) -> WorkflowApp:
    """A workflow server whose security service is down."""
    return await start_workflow(f"127.0.0.1:{free_port()}")


NO_RETRY = StartRetry(max_attempts=1)


def client(app: WorkflowApp, token: str | None, *, start_retry: StartRetry = NO_RETRY) -> WorkflowClient:
    """A typed client of ``app`` presenting ``token``; StartRun is not retried unless asked,
    so a test sees each refusal as the service gives it."""
    return WorkflowClient(app.server.address, token=token, timeout_s=10, start_retry=start_retry)


@dataclass
class SecurityEnv:
    """A real security server and the tokens it accepts."""

    address: str
    alice: str  # AUTHENTICATED
    admin: str  # ADMIN
    root_dir: Path  # the default path root (artifact.verify)
    server: VigilServer


# Tests use a tiny scrypt cost so each key verification takes microseconds.
FAST_SCRYPT_N = 1 << 4


async def start_security(
    tmp_path: Path, port: int = 0, tls: dict[str, str] | None = None, *, alice_rate: Any = None
) -> SecurityEnv:
    """A real security server; ``alice_rate`` is her key's own ``rate_limit`` (default: none)."""
    from services.security import Level, new_key
    from services.security._app import build as build_security
    from services.security._config import SecurityConfig

    alice_token, alice = new_key("alice", Level.AUTHENTICATED, n=FAST_SCRYPT_N)
    alice = alice.model_validate({**alice.model_dump(), "rate_limit": alice_rate})
    admin_token, admin = new_key("root", Level.ADMIN, n=FAST_SCRYPT_N)
    root_dir = tmp_path / "artifacts"
    root_dir.mkdir(exist_ok=True)
    cfg = SecurityConfig.model_validate(
        {
            "server": {"port": port, "tls": tls},
            "auth": {"api_keys": [alice.model_dump(), admin.model_dump()]},
            "roots": {"default": str(root_dir)},
            "audit": {"db_path": str(tmp_path / "audit.db")},
        }
    )
    server = await build_security(cfg)
    await server.start()
    return SecurityEnv(server.address, alice_token, admin_token, root_dir, server)


@pytest.fixture
async def security(tmp_path: Path) -> AsyncIterator[SecurityEnv]:
    env = await start_security(tmp_path)
    yield env
    await env.server.stop(0)


@pytest.fixture
async def app(start_workflow: StartWorkflow, security: SecurityEnv, tmp_path: Path) -> WorkflowApp:
    """A workflow server screened by the real security server (service token: admin)."""
    token_file = tmp_path / "service-token"
    token_file.write_text(security.admin)
    return await start_workflow(security.address, service_token_file=str(token_file))


async def has_state(c: WorkflowClient, run_id: str, state: int) -> bool:
    """Poll target: the run is in ``state``."""
    return (await c.get_run(run_id)).state == state


async def terminal_run(c: WorkflowClient, run_id: str) -> pb.Run | None:
    """Poll target: the run once it left PENDING/RUNNING, else None."""
    run = await c.get_run(run_id)
    return run if run.state not in (pb.RUN_STATE_PENDING, pb.RUN_STATE_RUNNING) else None
