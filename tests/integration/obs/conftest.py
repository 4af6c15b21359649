"""Shared by the observability tests: a real webhook receiver on port 0, and tracing on in this
process, exported to a real OTLP receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from services.common import shutdown_tracing
from tests.obs_support import OtlpReceiver


class Receiver:
    """A webhook receiver on port 0 that answers 503 to its first request."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.attempts = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts == 1:
            return web.Response(status=503, text="try later")
        self.bodies.append(await request.json())
        self.authorizations.append(request.headers.get("authorization"))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def notices(self) -> list[tuple[str, str, str]]:
        """(status, notice kind, severity) of each delivered payload."""
        out = []
        for b in self.bodies:
            (alert,) = b["alerts"]
            out.append((b["status"], alert["annotations"]["notice"], alert["labels"]["severity"]))
        return out


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    await rx.start()
    yield rx
    await rx.stop()


@pytest.fixture
async def otlp(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OtlpReceiver]:
    """A real OTLP receiver; servers and channels built after this export every span to it."""
    rx = OtlpReceiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", await rx.start())
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")  # every call traced, not one in ten
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    yield rx
    await shutdown_tracing()
    await rx.stop()
