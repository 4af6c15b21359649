"""Assembly of the security service from its config: core, servicer, background jobs, server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from services.common import (
    Instrumentation,
    Unavailable,
    VigilServer,
    every,
    publish_serving,
)
from services.security._config import SecurityConfig
from services.security._core import SecurityCore
from services.security._operations import SecurityOperations
from services.security._service import SecurityServicer
from services.security._stream import METHOD as STREAM_METHOD
from vigil.security.v1 import security_pb2_grpc as _pb_grpc

__all__ = ["SERVICE_NAME", "build"]

SERVICE_NAME = "vigil.security.v1.SecurityService"
_ANCHOR_EVERY_S = 60.0


def _audit_health(server: VigilServer, core: SecurityCore) -> Callable[[], Awaitable[None]]:
    """A job publishing NOT_SERVING while audit records cannot be written (every decision would be
    refused), and SERVING again once they can (only on a started server); it also logs the
    audit chain head now and then as an external anchor, and writes the summary of failed
    authentications that were not recorded one by one."""

    last_anchor = [time.monotonic()]

    async def job() -> None:
        if time.monotonic() - last_anchor[0] >= _ANCHOR_EVERY_S:
            last_anchor[0] = time.monotonic()
            core.audit.log_anchor()
        with contextlib.suppress(Unavailable):  # counts are kept; the probe below turns NOT_SERVING
            await core.gate.flush_failures()
        await publish_serving(server.health, ("", SERVICE_NAME), await asyncio.to_thread(core.audit.probe))

    return job


async def build(config: SecurityConfig) -> VigilServer:
    """Build the security server: domain core, servicer, policy reload (SIGHUP + file watch)."""
    core = SecurityCore.from_config(config)
    # Each screening on a ScreenStream is traced on its own, from the context it carries.
    telemetry = Instrumentation("security", config.server, untraced=(STREAM_METHOD,))
    server = VigilServer(config.server, "security", interceptors=telemetry.server_interceptors)
    servicer = SecurityServicer(
        SecurityOperations(core), stream_max_in_flight=config.screen_stream_max_in_flight
    )
    server.add_servicer(_pb_grpc.add_SecurityServiceServicer_to_server, servicer, SERVICE_NAME)
    policy = core.gate.policy
    loop = asyncio.get_running_loop()
    sighup = policy.install_sighup(loop)
    stop = asyncio.Event()
    watcher = asyncio.create_task(policy.watch(stop, config.policy_poll_s))
    prober = asyncio.create_task(every(stop, config.audit.health_probe_s, _audit_health(server, core)))

    async def shutdown() -> None:
        stop.set()
        await asyncio.gather(watcher, prober)
        if sighup:
            policy.remove_sighup(loop)
        with contextlib.suppress(Unavailable):  # logged by the audit log; nothing more to do at exit
            await core.gate.flush_failures(force=True)
        core.close()

    server.on_shutdown(shutdown)
    telemetry.attach(server)  # /metrics; spans flushed after the core has closed
    return server
