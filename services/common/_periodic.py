"""Periodic jobs for servers: run one every few seconds until told to stop, and publish health."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable

from grpc_health.v1.health_pb2 import HealthCheckResponse

from services.common._health import HealthServicer

__all__ = ["every", "publish_serving"]


async def every(stop: asyncio.Event, interval_s: float, job: Callable[[], object]) -> None:
    """Call ``job`` now and then every ``interval_s`` until ``stop`` is set; returns promptly on stop.

    ``job`` may be a coroutine function; its result is awaited before the next wait.
    """
    while not stop.is_set():
        result = job()
        if inspect.isawaitable(result):
            await result
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            continue


async def publish_serving(health: HealthServicer, names: Iterable[str], serving: bool) -> None:
    """Set each of ``names`` SERVING or NOT_SERVING where that changes it.

    Names not registered yet are left alone: a server marks its services SERVING when it
    starts, and a probe running before that must not announce a server that is not listening.
    """
    status = HealthCheckResponse.SERVING if serving else HealthCheckResponse.NOT_SERVING
    for name in names:
        current = health.get(name)
        if current is not None and current != status:
            await health.set(name, status)
