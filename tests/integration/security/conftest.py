"""A real security server on port 0 with test keys, policy, roots and a test CA."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from services.common import VigilServer
from services.security import Level, SecurityConfig
from services.security._app import build
from tests.unit.security._support import CertFiles, fast_key, make_ca_and_cert
from vigil.security.v1 import security_pb2_grpc as _pb_grpc

POLICY = """
rules:
  - {match: "workflow.start:admin-*", min_level: ADMIN}
  - {match: "workflow.start:*", min_level: AUTHENTICATED}
  - {match: "health.*", min_level: ADMIN}
"""


@dataclass
class Stack:
    server: VigilServer
    stub: _pb_grpc.SecurityServiceStub
    channel: grpc.aio.Channel
    config: SecurityConfig
    tokens: dict[str, str]
    tmp: Path

    def auth(self, who: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[who]}")]


def make_config(tmp: Path, **overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
    tokens: dict[str, str] = {}
    entries = []
    for who, level in (("user", Level.AUTHENTICATED), ("ops", Level.PRIVILEGED), ("admin", Level.ADMIN)):
        token, entry = fast_key(who, level)
        tokens[who] = token
        entries.append(entry.model_dump(mode="json"))
    (tmp / "policy.yaml").write_text(POLICY)
    for d in ("data", "artifacts"):
        (tmp / d).mkdir(exist_ok=True)
    raw: dict[str, Any] = {
        "server": {"port": 0, "grace_period_s": 0.5},
        "auth": {"api_keys": entries},
        "policy_file": str(tmp / "policy.yaml"),
        "policy_poll_s": 0.05,
        "roots": {"default": str(tmp / "data")},
        "artifact_root": str(tmp / "artifacts"),
        "audit": {"db_path": str(tmp / "audit.db")},
        "rate_limit": {"rate_per_s": 1000, "burst": 1000},
    }
    raw.update(overrides)
    return raw, tokens


@pytest.fixture
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_ca_and_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def start_stack(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Stack] = []

    async def start(credentials: grpc.ChannelCredentials | None = None, **overrides: Any) -> Stack:
        raw, tokens = make_config(tmp_path, **overrides)
        (tmp_path / "security.yaml").write_text(yaml.safe_dump(raw))
        cfg = SecurityConfig.model_validate(raw)
        server = await build(cfg)
        port = await server.start()
        target = f"localhost:{port}"
        channel = (
            grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
        )
        stack = Stack(server, _pb_grpc.SecurityServiceStub(channel), channel, cfg, tokens, tmp_path)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        await stack.channel.close()
        await stack.server.stop(0)


@pytest.fixture
async def stack(start_stack: Callable[..., Any]) -> Stack:
    return await start_stack()
