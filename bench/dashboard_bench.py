"""healthd's dashboard: how fast one change reaches 100 open dashboards (SSE clients),
beside the same change reaching a single dashboard.

healthd runs in its own process with one component whose check is slow (no spontaneous
pushes). This process holds 100 ``/events`` streams open, then flips the component's
maintenance through ``POST /api/control`` (an ADMIN token) and times, per client, from just
before the POST to the arrival of the first ``state`` message showing the new maintenance
flag. One sample per change is the p95 over the clients; changes alternate on/off.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import yaml

from bench._procs import ServerProcess, running
from bench._registry import Context, benchmark
from bench._report import Figure, Target, percentile
from bench._stack import free_port
from bench.services import scratch
from services.security import Level, new_key

CLIENTS = 100
COMPONENT = "disk"


def _healthd(root: Path, http_port: int, entry: dict[str, object]) -> ServerProcess:
    cfg = {
        "server": {"port": 0, "grace_period_s": 1},
        "http": {"port": http_port},
        "mode": "sidecar",
        "auth": {"api_keys": [entry]},
        "alerts": {"rules": []},
        "components": [
            {"name": COMPONENT, "checks": [{"kind": "exec", "argv": ["true"], "interval_s": 3600}]}
        ],
    }
    path = root / "healthd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return ServerProcess(["-m", "healthd", "--config", str(path)], name="healthd-dashboard")


class _Stream:
    """One open dashboard: the arrival time of each ``state`` message and whether it showed
    the component in maintenance."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, bool]] = []
        self.ready = asyncio.Event()
        self._message = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            event = ""
            async for raw in resp.content:
                line = raw.decode()
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "state":
                    self.seen.append((time.perf_counter(), '"maintenance":true' in line))
                    self.ready.set()
                    self._message.set()

    async def next_arrival(self, after: float, maintenance: bool) -> float:
        """When the first message after ``after`` showing ``maintenance`` arrived (the time
        is taken on arrival, so waiting for it here does not bias it)."""
        while True:
            found = next((t for t, m in self.seen if t >= after and m is maintenance), None)
            if found is not None:
                return found
            self._message.clear()
            await self._message.wait()


async def _p95_ms(base: str, token: str, clients: int, changes: int, on: list[bool]) -> list[float]:
    samples: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        streams = [_Stream() for _ in range(clients)]
        tasks = [asyncio.create_task(s.run(session, base + "/events")) for s in streams]
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(s.ready.wait() for s in streams))
            await asyncio.sleep(0.5)  # let the initial pushes settle
            for _ in range(changes):
                on[0] = not on[0]
                action = "maintenance_on" if on[0] else "maintenance_off"
                start = time.perf_counter()
                async with session.post(
                    base + "/api/control",
                    json={"component": COMPONENT, "action": action},
                    headers={"Authorization": f"Bearer {token}"},
                ) as resp:
                    resp.raise_for_status()

                async with asyncio.timeout(10):
                    arrived = [await s.next_arrival(start, on[0]) for s in streams]
                lat = [(t - start) * 1000 for t in arrived]
                samples.append(percentile(lat, 95))
                await asyncio.sleep(0.2)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return samples


async def _wait_up(base: str) -> None:
    """The dashboard binds just after healthd's gRPC port announces itself."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(30):
        while True:
            try:
                async with session.get(base + "/api/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


@benchmark(
    "dashboard.sse", "one change reaching 100 open dashboards (SSE): p95 delivery latency vs 1 dashboard"
)
async def sse_fanout(ctx: Context) -> list[Figure]:
    token, entry = new_key("bench", Level.ADMIN, n=1 << 4)
    changes = 3 if ctx.quick else 5
    many: list[float] = []
    one: list[float] = []
    state = [False]
    with scratch() as root:
        http_port = free_port()
        with running(_healthd(root, http_port, entry.model_dump(mode="json"))):
            base = f"http://127.0.0.1:{http_port}"
            await _wait_up(base)
            for _ in range(ctx.repeats):
                many += await _p95_ms(base, token, CLIENTS, changes, state)
                one += await _p95_ms(base, token, 1, changes, state)
    note = (
        f"{CLIENTS} aiohttp SSE streams in the bench process; a change is a maintenance flip over "
        "POST /api/control; includes the dashboard's 50 ms burst coalescing"
    )
    return [
        Figure(
            f"change -> {CLIENTS} dashboards, p95",
            "ms",
            many,
            one,
            "the same change reaching 1 dashboard",
            Target.at_most(200),
            note,
        )
    ]
