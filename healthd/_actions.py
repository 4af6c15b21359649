"""Heal actions: restart a supervised child, run a command, or call an admin RPC.

``heal()`` returns a message on success and raises `HealFailed` when the action itself failed.
Whether the component then comes back is judged by its checks, not by the action.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from healthd._channels import open_channel
from healthd._checks import run_command
from healthd._config import AdminRpcConfig, ComponentConfig
from healthd._supervisor import Child, ShuttingDown

ADMIN_RPC_TIMEOUT_S = 10.0


class HealFailed(Exception):
    """The heal action could not be carried out."""


class Healer(Protocol):
    """One way to heal a component."""

    async def heal(self) -> str:
        """Carry out the action; return what was done or raise `HealFailed`."""
        ...


class RestartHealer:
    """SIGTERM, grace, SIGKILL, start again."""

    def __init__(self, child: Child) -> None:
        self._child = child

    async def heal(self) -> str:
        old = self._child.pid
        try:
            await self._child.restart()
        except OSError as exc:
            raise HealFailed(f"cannot start {self._child.name}: {exc.strerror or exc}") from exc
        except ShuttingDown as exc:
            raise HealFailed(str(exc)) from exc
        return f"restarted (pid {old} -> {self._child.pid})"


class CommandHealer:
    """Runs a command; exit code 0 is success."""

    def __init__(self, argv: list[str], timeout_s: float) -> None:
        self._argv = argv
        self._timeout_s = timeout_s

    async def heal(self) -> str:
        code, _, message = await run_command(self._argv, self._timeout_s)
        if code != 0:
            raise HealFailed(f"command {self._argv[0]}: {message}")
        return f"command {self._argv[0]}: {message}"


class AdminRpcHealer:
    """Calls a unary admin RPC with an empty request; OK is success."""

    def __init__(self, cfg: AdminRpcConfig) -> None:
        self._cfg = cfg

    async def heal(self) -> str:
        metadata: list[tuple[str, str]] = []
        if self._cfg.token_file is not None:
            try:
                token = self._cfg.token_file.read_text().strip()
            except OSError as exc:
                raise HealFailed(f"cannot read token file {self._cfg.token_file}: {exc.strerror}") from exc
            metadata.append(("authorization", f"Bearer {token}"))
        async with open_channel(self._cfg.address, self._cfg.tls) as channel:
            call = channel.unary_unary(self._cfg.method, request_serializer=None, response_deserializer=None)
            try:
                await call(b"", timeout=ADMIN_RPC_TIMEOUT_S, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                raise HealFailed(f"{self._cfg.method}: {exc.code().name}: {exc.details()}") from exc
        return f"{self._cfg.method}: OK"


def build_healer(comp: ComponentConfig, child: Child | None) -> Healer | None:
    """The healer for a component's config (None for ``action: none``)."""
    healing = comp.healing
    if healing.action == "restart":
        if child is None:
            raise ValueError(f"component '{comp.name}': restart needs a supervised child")
        return RestartHealer(child)
    if healing.action == "command":
        assert healing.command is not None  # guaranteed by HealingConfig validation
        return CommandHealer(healing.command, healing.command_timeout_s)
    if healing.action == "admin_rpc":
        assert healing.admin_rpc is not None  # guaranteed by HealingConfig validation
        return AdminRpcHealer(healing.admin_rpc)
    return None
