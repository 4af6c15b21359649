"""healthd's HTTP port: the dashboard, its live feed, exports and ``/metrics``.

    GET /              the dashboard page (static HTML/CSS/JS shipped in the package)
    GET /static/...    its assets
    GET /events        Server-Sent Events: a ``state`` message on connect and after each change
    GET /api/health    the same state as JSON (export)
    GET /report        a self-contained HTML report of the current state (export, printable)
    GET /metrics       Prometheus exposition of this process
    /api/runs, /api/control   runs view and component controls (see ``_api``)

Every path but ``/metrics`` answers only the configured Host names (421 otherwise): a
DNS-rebinding page (evil.example resolving to 127.0.0.1) cannot read or act on it.

aiohttp rather than a hand-written asyncio server: SSE needs a streaming response with
correct chunking and client-disconnect detection, static files need safe path handling
(no traversal), and both are well-tested there; it runs on healthd's own event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from healthd._config import DashboardConfig
from healthd.dashboard._api import DashboardApi
from healthd.dashboard._model import DashboardModel
from healthd.dashboard._report import render_report
from services.common import get_logger

__all__ = ["DashboardServer"]

STATIC = Path(__file__).parent / "static"
_log = get_logger("vigil.healthd.dashboard")
_KEEPALIVE_S = 15.0  # SSE comment line so proxies and browsers keep the stream open
_COALESCE_S = 0.05  # bursts of changes (a restart is several events) become one push
_HOST_EXEMPT = frozenset({"/metrics"})  # scraped by IP (pod IP on Kubernetes); no secrets

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
}


class DashboardServer:
    """Serves the dashboard on ``host:port`` (0 picks a free port; see ``port`` after start)."""

    def __init__(
        self,
        model: DashboardModel,
        host: str,
        port: int,
        *,
        api: DashboardApi | None = None,
        allowed_hosts: Callable[[int], frozenset[str]] | None = None,
        sample_s: float = 1.0,
    ) -> None:
        self.model = model
        self.host, self.port = host, port
        self._sample_s = sample_s
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._allowed_for = allowed_hosts or DashboardConfig().hosts
        self.allowed_hosts: frozenset[str] = frozenset()  # set at start (needs the bound port)
        self._api = api
        self._sse_cache: tuple[int, bytes] = (-1, b"")
        app = web.Application(middlewares=[self._check_host, _security_headers])
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/health", self._json)
        app.router.add_get("/report", self._report)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        if api is not None:
            api.add_routes(app)
        self.app = app

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "[::]") else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.allowed_hosts = self._allowed_for(self.port)
        self._sampler = asyncio.create_task(self._sample_loop(), name="dashboard-sampler")
        _log.info("dashboard on %s", self.url, extra={"http_port": self.port})
        return self.port

    async def stop(self) -> None:
        """End live streams, then stop listening."""
        self._closing.set()
        self.model.notify()  # wakes every SSE handler so it sees _closing
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._api is not None:
            await self._api.close()

    async def _sample_loop(self) -> None:
        # Latency history grows with every check, which does not always change the snapshot.
        while True:
            await asyncio.sleep(self._sample_s)
            if self.model.sample():
                self.model.notify()

    # --- handlers ---------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _json(self, request: web.Request) -> web.Response:
        body = json.dumps(self.model.state(), indent=2)
        headers = {"Cache-Control": "no-store"}
        if request.query.get("download"):
            headers["Content-Disposition"] = 'attachment; filename="vigil-health.json"'
        return web.Response(text=body, content_type="application/json", headers=headers)

    async def _report(self, request: web.Request) -> web.Response:
        return web.Response(text=render_report(self.model.state()), content_type="text/html")

    async def _metrics(self, request: web.Request) -> web.Response:
        data = await asyncio.to_thread(generate_latest, REGISTRY)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        changed = self.model.subscribe()
        try:
            await resp.write(b"retry: 1000\n\n")
            while not self._closing.is_set():
                await resp.write(self._sse_state())
                try:
                    await asyncio.wait_for(changed.wait(), _KEEPALIVE_S)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                await asyncio.sleep(_COALESCE_S)
                changed.clear()
        except ConnectionResetError:
            pass  # the browser went away: nothing to clean up but the waiter
        finally:
            self.model.unsubscribe(changed)
        return resp

    def _sse_state(self) -> bytes:
        # Built once per model version and shared: with many dashboards open, a change costs
        # one state() and one JSON encoding, not one per client.
        version = self.model.version
        if self._sse_cache[0] != version:
            self._sse_cache = (version, _sse("state", self.model.state()))
        return self._sse_cache[1]

    @web.middleware
    async def _check_host(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in _HOST_EXEMPT or host_allowed(request.headers.get("Host", ""), self.allowed_hosts):
            return await handler(request)
        return web.Response(
            status=421, text="misdirected request: this Host is not one the dashboard answers\n"
        )


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header matches an allowed ``name:port`` exactly or an allowed bare ``name``."""
    host = host.strip().lower()
    if not host:
        return False
    if host in allowed:
        return True
    name = host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.partition(":")[0]
    return name != host and name in allowed


def _sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@web.middleware
async def _security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    resp = await handler(request)
    if not resp.prepared:
        for key, value in _HEADERS.items():
            resp.headers.setdefault(key, value)
    return resp
