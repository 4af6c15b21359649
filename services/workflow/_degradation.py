"""Graceful degradation: the level healthd publishes, combined with our own dependency state.

Levels (ARCHITECTURE.md, Health model). What each level admits is
`services.common.new_run_refusal`, the rule healthd's ``readiness`` follows too: NORMAL and
DEGRADED accept all work (DEGRADED is recorded on runs); RESTRICTED sheds new work of
non-privileged callers and low-priority work (RESOURCE_EXHAUSTED); READ_ONLY and OFFLINE
refuse new runs with UNAVAILABLE and a retry delay (reads work). healthd unreachable means
NORMAL: healthd is advisory, security is what fails closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from services.common import (
    ClientTLSConfig,
    DegradationLevel,
    Unavailable,
    new_run_refusal,
    open_client_channel,
)
from vigil.healthd.v1 import healthd_pb2 as _hpb
from vigil.healthd.v1 import healthd_pb2_grpc as _hpb_grpc

__all__ = ["DegradationGate", "HealthdWatcher", "Level"]

_log = logging.getLogger(__name__)


Level = DegradationLevel
"""The degradation level (`services.common.DegradationLevel`, with its proto converters)."""


class DegradationGate:
    """Decides whether a new run may be accepted at the current level.

    ``published`` comes from healthd; ``set_dependency`` records our own view of a
    dependency (e.g. the store failing puts us READ_ONLY). The effective level is the
    most severe of both.
    """

    def __init__(self, retry_after_s: float = 1.0) -> None:
        self.published = DegradationLevel.NORMAL
        self._own: dict[str, DegradationLevel] = {}
        self.retry_after_s = retry_after_s

    @property
    def level(self) -> DegradationLevel:
        return max([self.published, *self._own.values()])

    def set_dependency(self, name: str, level: DegradationLevel | None) -> None:
        """Our own degradation because of dependency ``name``; None when it is healthy."""
        if level is None:
            self._own.pop(name, None)
        else:
            self._own[name] = level

    def check_writable(self) -> None:
        """Before anything else in StartRun: refuse what no caller could start now
        (READ_ONLY/OFFLINE), without spending a Screen on it."""
        refusal = new_run_refusal(self.level, privileged=True, retry_after_s=self.retry_after_s)
        if refusal is not None:
            raise refusal

    def admit(self, *, priority: int, privileged: bool) -> DegradationLevel | None:
        """Admit a screened start; returns the level to record on the run (None when NORMAL)."""
        level = self.level
        refusal = new_run_refusal(
            level, privileged=privileged, priority=priority, retry_after_s=self.retry_after_s
        )
        if refusal is not None:
            raise refusal
        return None if level is DegradationLevel.NORMAL else level

    def retryable(self, exc: Unavailable) -> Unavailable:
        """``exc``, given a retry delay unless it has one: a StartRun refused because a dependency is down
        (security, the store) always tells the caller when to try again."""
        if exc.retry_after_s is None:
            exc.retry_after_s = self.retry_after_s
        return exc


class HealthdWatcher:
    """Follows healthd's WatchSystemHealth stream into a `DegradationGate`.

    Reconnects with capped backoff; while healthd is unreachable the published level is NORMAL.
    The level obeyed leaves out this process's own component being down (a restarted replica
    is up, whatever healthd's last check of it said).
    """

    def __init__(
        self,
        address: str,
        gate: DegradationGate,
        *,
        max_backoff_s: float = 10.0,
        on_change: Callable[[DegradationLevel], None] | None = None,
        tls: ClientTLSConfig | None = None,
        component: str = "",
    ) -> None:
        self._address, self._gate, self._max_backoff = address, gate, max_backoff_s
        # healthd's name for the component this process is a replica of: its own failure
        # does not gate it (SystemHealth.level_without).
        self._component = component
        self._tls = tls
        self._on_change = on_change
        self.connected = asyncio.Event()

    def _publish(self, level: DegradationLevel) -> None:
        if level is not self._gate.published:
            _log.info("degradation level from healthd: %s", level.name)
            self._gate.published = level
            if self._on_change is not None:
                self._on_change(level)

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with open_client_channel(self._address, self._tls) as channel:
                    stub = _hpb_grpc.HealthDaemonStub(channel)
                    async for msg in stub.WatchSystemHealth(_hpb.WatchSystemHealthRequest()):
                        self.connected.set()
                        backoff = 0.5
                        health = msg.health
                        level = health.level_without.get(self._component, health.degradation_level)
                        self._publish(DegradationLevel.from_proto(level))  # never raises
            except grpc.aio.AioRpcError as exc:
                _log.debug("healthd watch ended: %s", exc.code().name)
            self.connected.clear()
            self._publish(DegradationLevel.NORMAL)  # unreachable healthd: assume NORMAL
            await asyncio.sleep(backoff)
            backoff = min(self._max_backoff, backoff * 2)
