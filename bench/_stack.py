"""The real local stack in a scratch directory, for benchmarks, chaos drills and soak.

healthd in supervisor mode starts the security and workflow services as its children
(as `make run` does), each on a free loopback port, with fresh keys, stores and audit
log under ``root``. Unsupervised mode starts the two services directly (for figures that
must not include healthd). Nothing here is a mock: every process is the real entry point.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench._procs import ServerProcess, python_env
from services.common import VigilError
from services.security import Level, new_key
from services.workflow.client import WorkflowClient
from vigil.healthd.v1 import healthd_pb2 as _dpb
from vigil.healthd.v1 import healthd_pb2_grpc as _dpb_grpc
from vigil.workflow.v1 import workflow_pb2 as _wpb

__all__ = ["SECURITY", "WORKFLOW", "LocalStack", "free_port", "wait_serving"]

WORKFLOW = "vigil.workflow.v1.WorkflowService"
SECURITY = "vigil.security.v1.SecurityService"
SERVING = hpb.HealthCheckResponse.SERVING


def free_port() -> int:
    """A loopback port free right now (the tiny race with other binders is acceptable here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def health_status(address: str, service: str = "", wait_s: float = 1.0) -> int | None:
    """The grpc.health.v1 status of ``service`` at ``address``; None if it cannot be asked."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await hpb_grpc.HealthStub(channel).Check(
                hpb.HealthCheckRequest(service=service), timeout=wait_s
            )
        except grpc.aio.AioRpcError:
            return None
    return int(reply.status)


async def wait_serving(address: str, service: str = "", wait_s: float = 30.0) -> float:
    """Poll until ``service`` at ``address`` is SERVING; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < wait_s:
        if await health_status(address, service, 1.0) == SERVING:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{service or 'server'} at {address} not SERVING within {wait_s} s")


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive free ports (replicas' private ports are base + i - 1)."""
    for _ in range(100):
        base = free_port()
        if base + n - 1 > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def _write(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))
    return path


class LocalStack:
    """healthd + security + workflow as real processes under ``root``.

    Args:
        root: Scratch directory for configs, stores, the audit log and logs.
        supervised: healthd starts and heals both services (else they are started directly).
        check_interval_s: Period of healthd's gRPC checks (its timeout is the same).
        workflow: Extra workflow config keys (merged over the defaults).
        security: Extra security config keys.
        workflow_env: Extra environment of the workflow process (e.g. a drill's ledger file).
        env: Extra environment of both services (e.g. ``OTEL_*`` to turn tracing on).
        security_address: Where the workflow service dials security (a fault proxy), when not direct.
        healing: Overrides of both components' healing settings.
        replicas: Replicas of each service (SO_REUSEPORT on one port, private health ports).
        keep: Run healthd under ``healthd keep`` with a ``run_dir``: its children outlive it,
            a killed healthd is restarted and adopts them.
        store_reserve_mb: Also check the workflow's SQLite store (free space against this
            reserve, as the local config does): the workflow component depends on it, so a
            full disk is not "healed" by restarts; the workflow service gets the same reserve.
    """

    def __init__(
        self,
        root: Path,
        *,
        supervised: bool = True,
        check_interval_s: float = 0.5,
        workflow: Mapping[str, Any] | None = None,
        security: Mapping[str, Any] | None = None,
        workflow_env: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        security_address: str | None = None,
        healing: Mapping[str, Any] | None = None,
        replicas: int = 1,
        keep: bool = False,
        store_reserve_mb: float | None = None,
    ) -> None:
        self.root = root
        self._store_reserve_mb = store_reserve_mb
        self.replicas = replicas
        self.keep = keep
        self.health_ports = {"workflow": free_ports(replicas), "security": free_ports(replicas)}
        self.supervised = supervised
        self.ports = {"healthd": free_port(), "workflow": free_port(), "security": free_port()}
        self.token, user = new_key("drill", Level.AUTHENTICATED)
        self.admin_token, admin = new_key("drill-admin", Level.ADMIN)
        self._keys = [user.model_dump(mode="json"), admin.model_dump(mode="json")]
        self._interval = check_interval_s
        self._workflow_extra = dict(workflow or {})
        self._security_extra = dict(security or {})
        self._security_env = {"PYTHONUNBUFFERED": "1", **(env or {})}
        self._workflow_env = {**self._security_env, **(workflow_env or {})}
        self.security_via = security_address or self.address("security")
        """Where the workflow service dials security (a drill's fault proxy, or direct)."""
        self._healing = {
            "action": "restart",
            "backoff_base_s": 0.2,
            "backoff_cap_s": 2.0,
            "max_attempts": 20,
            "window_s": 60,
            "start_timeout_s": 30,
            **(healing or {}),
        }
        self.procs: dict[str, ServerProcess] = {}
        self.seen_pids: set[int] = set()
        """Every child pid reported by healthd (drills kill leftovers if healthd itself died)."""

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    # --- configs ---------------------------------------------------------------------
    def security_config(self) -> Path:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        return _write(
            self.root / "security.yaml",
            {
                "server": {"port": self.ports["security"], "grace_period_s": 2},
                "auth": {"api_keys": self._keys},
                "audit": {"db_path": str(self.root / "audit.db")},
                "roots": {"default": str(self.root / "data")},
                **self._security_extra,
            },
        )

    def workflow_config(self) -> Path:
        token_file = self.root / "service-token"
        token_file.write_text(self.admin_token)
        token_file.chmod(0o600)
        return _write(
            self.root / "workflow.yaml",
            {
                "server": {"port": self.ports["workflow"], "grace_period_s": 2},
                "store_path": str(self.root / "runs.db"),
                "instance_id": "drill",
                "security_address": self.security_via,
                "service_token_file": str(token_file),
                # The security key material, as deploy/local gives it: reads verify callers here.
                "auth": {"api_keys": self._keys},
                "healthd_address": self.address("healthd") if self.supervised else None,
                "load_entry_points": False,
                "limits": {"poll_s": 0.2, "process_workers": 1},
                **self._store_space(),
                **self._workflow_extra,
            },
        )

    def store_path(self) -> Path:
        return Path(self._workflow_extra.get("store_path", self.root / "runs.db"))

    def _store_space(self) -> dict[str, Any]:
        if self._store_reserve_mb is None:
            return {}
        return {"store_space": {"reserve_mb": self._store_reserve_mb}}

    def _store_component(self) -> list[dict[str, Any]]:
        if self._store_reserve_mb is None:
            return []
        check = {
            "kind": "store",
            "path": str(self.store_path()),
            "reserve_mb": self._store_reserve_mb,
            "interval_s": self._interval,
            "timeout_s": self._interval,
            "failure_threshold": 1,
        }
        return [{"name": "workflow-store", "critical": True, "degrades_to": "READ_ONLY", "checks": [check]}]

    def _component(self, name: str, service: str, module: str, config: Path, env: Mapping[str, str]) -> dict:
        checks = [
            {
                "kind": "grpc",
                "address": self.address(name),
                "service": service,
                "interval_s": self._interval,
                "timeout_s": self._interval,
                "failure_threshold": 2,
            },
            {"kind": "process", "interval_s": 1, "failure_threshold": 1},
        ]
        process: dict[str, Any] = {
            "argv": ["{python}", "-m", module, "--config", str(config)],
            "env": dict(env),
            "grace_s": 3,
        }
        if self.replicas > 1:
            process |= {"env_prefix": f"VIGIL_{name.upper()}_", "health_port": self.health_ports[name]}
        return {
            "name": service,
            "critical": True,
            "depends_on": ["workflow-store"]
            if name == "workflow" and self._store_reserve_mb is not None
            else [],
            "replicas": self.replicas,
            "process": process,
            "checks": checks,
            "healing": self._healing,
        }

    def healthd_config(self, extra_components: list[dict] | None = None) -> Path:
        components = [
            *self._store_component(),
            self._component(
                "security", SECURITY, "services.security", self.security_config(), self._security_env
            ),
            self._component(
                "workflow", WORKFLOW, "services.workflow", self.workflow_config(), self._workflow_env
            ),
            *(extra_components or []),
        ]
        return _write(
            self.root / "healthd.yaml",
            {
                "server": {"port": self.ports["healthd"], "grace_period_s": 2},
                "http": {"port": 0},
                "mode": "supervisor",
                "auth": {"api_keys": self._keys},
                # Checks every 0.5 s on a loaded box flap now and then; a short hold keeps
                # such flaps from costing the drills seconds (a single recovery is never held).
                "level_recovery_s": 0.5,
                "components": components,
                "log_dir": str(self.root / "logs"),
                **({"run_dir": str(self.root / "run")} if self.keep else {}),
            },
        )

    # --- lifecycle -------------------------------------------------------------------
    async def start(self, wait_s: float = 60.0) -> None:
        """Start the stack and wait until both services (and healthd) are SERVING.

        Raises:
            TimeoutError: with the last log lines of every process, when it does not come up.
        """
        try:
            await self._start(wait_s)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- logs ---\n{self.log_tail()[-6000:]}") from None

    async def _start(self, wait_s: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.supervised:
            keep = ["keep"] if self.keep else []
            healthd = ServerProcess(
                ["-m", "healthd", *keep, "--config", str(self.healthd_config())], name="healthd"
            )
            self.procs["healthd"] = healthd
            await asyncio.to_thread(healthd.start, wait_s)
        else:
            sec_cfg, wf_cfg = self.security_config(), self.workflow_config()
            self.procs["security"] = ServerProcess(
                ["-m", "services.security", "--config", str(sec_cfg)],
                env=python_env(**self._security_env),
                name="security",
            )
            self.procs["workflow"] = ServerProcess(
                ["-m", "services.workflow", "--config", str(wf_cfg)],
                env=python_env(**self._workflow_env),
                name="workflow",
            )
            await asyncio.to_thread(self.procs["security"].start, wait_s)
            await asyncio.to_thread(self.procs["workflow"].start, wait_s)
        await wait_serving(self.address("security"), SECURITY, wait_s)
        await wait_serving(self.address("workflow"), WORKFLOW, wait_s)
        if self.supervised:
            await wait_serving(self.address("healthd"), WORKFLOW, wait_s)
        await self.wait_accepting(wait_s)

    async def wait_accepting(self, wait_s: float = 30.0) -> float:
        """Wait until an ``echo`` run succeeds end to end (the workflow service has left any
        degradation healthd published during start-up); returns the seconds it took."""
        start = time.monotonic()
        async with WorkflowClient(self.address("workflow"), token=self.token, timeout_s=5) as client:
            while True:
                try:
                    run, _ = await client.start_run("echo", {"message": "ready?"}, wait=True)
                    if run.state == _wpb.RUN_STATE_SUCCEEDED:
                        return time.monotonic() - start
                except VigilError:
                    pass  # shed, unavailable or degraded: not ready yet
                if time.monotonic() - start > wait_s:
                    raise TimeoutError(f"the stack did not accept runs within {wait_s} s")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM every process (healthd stops its children first), SIGKILL stragglers."""
        for proc in reversed(list(self.procs.values())):
            proc.stop(15)

    async def system_health(self) -> _dpb.SystemHealth:
        async with grpc.aio.insecure_channel(self.address("healthd")) as channel:
            stub = _dpb_grpc.HealthDaemonStub(channel)
            return (await stub.GetSystemHealth(_dpb.GetSystemHealthRequest(), timeout=5)).health

    async def pid(self, name: str) -> int:
        """Process id of ``security``, ``workflow`` or ``healthd`` (a supervised child's from healthd)."""
        if name in self.procs:
            return self.procs[name].pid
        service = {"security": SECURITY, "workflow": WORKFLOW}[name]
        for component in (await self.system_health()).components:
            if component.name == service and component.pid > 0:
                self.seen_pids.add(int(component.pid))
                return int(component.pid)
        raise LookupError(f"healthd reports no pid for {service}")

    async def replica_pids(self, name: str) -> list[int]:
        """Pids of every running replica of ``security`` or ``workflow``, replica order."""
        service = {"security": SECURITY, "workflow": WORKFLOW}[name]
        for component in (await self.system_health()).components:
            if component.name == service:
                pids = [int(r.pid) for r in component.replicas if r.pid > 0]
                self.seen_pids.update(pids)
                return pids
        return []

    def log_tail(self) -> str:
        return "".join(line for proc in self.procs.values() for line in proc.tail)
