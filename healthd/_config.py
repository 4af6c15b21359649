"""healthd configuration: components, their checks, healing and supervised processes.

The check kinds are in `healthd._check_config` (re-exported here, so ``from healthd._config
import GrpcCheckConfig`` keeps working).

Loaded once at start-up with `services.common.load_config(HealthdConfig, path,
env_prefix="VIGIL_HEALTHD_")`. Cross-field rules (unique names, known dependencies, no
dependency cycles, restart needs a supervised process, sidecar mode supervises nothing)
are validated here so a bad file fails at start-up with the field named.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, PrivateAttr, model_validator

from healthd._check_config import CheckConfig, ClientTLS
from healthd._check_config import ExecCheckConfig as ExecCheckConfig
from healthd._check_config import GrpcCheckConfig as GrpcCheckConfig
from healthd._check_config import HttpCheckConfig as HttpCheckConfig
from healthd._check_config import ProcessCheckConfig as ProcessCheckConfig
from healthd._check_config import StoreCheckConfig as StoreCheckConfig
from healthd._check_config import TcpCheckConfig as TcpCheckConfig
from healthd._names import unit_key
from healthd.alerts._config import AlertsConfig
from services.common import ConfigModel, DegradationLevel, DegradationLevelName, ServerConfig
from services.security import AuditConfig, AuthConfig


class Mode(StrEnum):
    """How healthd relates to the services it watches."""

    SUPERVISOR = "supervisor"
    """healthd starts the services as child processes and restarts them (local, VM)."""
    SIDECAR = "sidecar"
    """healthd only checks; it heals by command or admin RPC and escalates via `liveness` (Kubernetes)."""


Level = DegradationLevel
"""The degradation level (`services.common.DegradationLevel`; config files name it)."""


class ProcessConfig(ConfigModel):
    """A child process healthd supervises (supervisor mode)."""

    argv: list[str] = Field(min_length=1)
    """Program and arguments (no shell); ``{python}`` stands for healthd's own interpreter."""
    env: dict[str, str] = Field(default_factory=dict)
    """Variables added to healthd's own environment for the child."""
    cwd: Path | None = None
    """Working directory; healthd's when unset."""
    grace_s: float = Field(default=5.0, ge=0, le=600)
    """Time between SIGTERM and SIGKILL when stopping the child."""
    env_prefix: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*_$")
    """The child's config env prefix (``VIGIL_WORKFLOW_``): healthd tells each replica its
    private ports through ``<prefix>SERVER__*`` variables (see `healthd._replicas`)."""
    health_port: int | None = Field(default=None, ge=1, le=65535)
    """Base of the replicas' private grpc.health.v1 ports: replica i (1-based) serves health on
    ``health_port + i - 1`` and healthd's grpc checks of the component go there, one per replica."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Base of the replicas' ``/metrics`` ports (replica i: ``metrics_port + i - 1``); unset
    leaves the child's own ``server.metrics_port`` setting alone."""


class AdminRpcConfig(ConfigModel):
    """A unary RPC healthd calls to heal a component (empty request message)."""

    address: str = Field(min_length=1)
    """``host:port`` of the server."""
    method: str = Field(pattern=r"^/[\w.]+/\w+$")
    """Full method path, e.g. ``/vigil.workflow.v1.WorkflowService/ResetBreakers``."""
    tls: ClientTLS | None = None
    """TLS to the server; plaintext when unset."""
    token_file: Path | None = None
    """File holding a bearer token sent as ``authorization`` metadata."""


class HealingConfig(ConfigModel):
    """How a failed component is healed, and how hard healthd tries."""

    action: Literal["none", "restart", "command", "admin_rpc"] = "none"
    """``restart`` the supervised child, run ``command``, call ``admin_rpc``, or ``none`` (observe only)."""
    command: list[str] | None = None
    """Program and arguments for ``action: command``; success is exit code 0."""
    command_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """A healing command running longer is killed and counts as a failed heal."""
    admin_rpc: AdminRpcConfig | None = None
    """The RPC for ``action: admin_rpc``."""
    backoff_base_s: float = Field(default=0.5, ge=0, le=3600)
    """Delay before the second heal in a window; doubles for each further heal."""
    backoff_cap_s: float = Field(default=30.0, ge=0, le=3600)
    """Largest delay between heals."""
    backoff_jitter: float = Field(default=0.2, ge=0, le=1)
    """Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]."""
    max_attempts: int = Field(default=5, ge=1, le=1000)
    """Heals allowed within ``window_s``; one more failure then means FATAL."""
    window_s: float = Field(default=300.0, gt=0, le=86400)
    """Sliding window over which heal attempts are counted (flap damping)."""
    start_timeout_s: float = Field(default=15.0, gt=0, le=3600)
    """A healed component must pass its checks within this time or the heal failed."""

    @model_validator(mode="after")
    def _action_has_target(self) -> Self:
        if self.action == "command" and not self.command:
            raise ValueError("action 'command' needs 'command' (program and arguments)")
        if self.action == "admin_rpc" and self.admin_rpc is None:
            raise ValueError("action 'admin_rpc' needs an 'admin_rpc' section")
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be at least backoff_base_s")
        return self


class ComponentConfig(ConfigModel):
    """One thing healthd watches: a service, a dependency, a store."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w.\-/]+$")
    """Name served on grpc.health.v1 (the local config uses full gRPC service names)."""
    critical: bool = True
    """A failing critical component makes the system UNHEALTHY; others only DEGRADED."""
    depends_on: list[str] = Field(default_factory=list)
    """Hard dependencies: when one is down, this component is reported DEPENDENCY_DOWN and not healed."""
    degrades_to: DegradationLevelName | None = None
    """Degradation level while this component is down; default RESTRICTED if critical else DEGRADED."""
    checks: list[CheckConfig] = Field(min_length=1)
    """At least one check; the component is SERVING when all of them are."""
    healing: HealingConfig = Field(default_factory=HealingConfig)
    """What to do when the component fails."""
    process: ProcessConfig | None = None
    """Child process to supervise (supervisor mode only)."""
    replicas: int = Field(default=1, ge=1, le=16)
    """Copies of the process, sharing its port (SO_REUSEPORT), each checked on its own health
    port and restarted independently; the component serves while one replica does."""

    def check_names(self) -> list[str]:
        """Display names of the checks, unique within the component."""
        names: list[str] = []
        for i, check in enumerate(self.checks):
            name = check.name or check.kind
            names.append(name if name not in names else f"{name}-{i + 1}")
        return names

    @property
    def level_when_down(self) -> Level:
        """The degradation level this component imposes while it is down."""
        if self.degrades_to is not None:
            return self.degrades_to
        return Level.RESTRICTED if self.critical else Level.DEGRADED


class HttpConfig(ConfigModel):
    """The HTTP port for the dashboard, ``/metrics`` and JSON export."""

    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = Field(default=8050, ge=0, le=65535)
    """TCP port; 0 picks a free port."""


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class DashboardConfig(ConfigModel):
    """What the dashboard answers, where it reads runs from, and where traces are shown."""

    allowed_hosts: list[str] = Field(default_factory=list, max_length=100)
    """Host header values the dashboard answers (``name`` for any port, ``name:port`` for one;
    IPv6 literals in brackets). Others get 421, so a page whose DNS name is rebound to
    127.0.0.1 cannot read it. Empty: ``localhost``, ``127.0.0.1`` and ``[::1]`` with the bound
    port. ``/metrics`` is exempt (Prometheus scrapes by pod IP)."""
    workflow_address: str | None = None
    """``host:port`` of the workflow service for the runs view: healthd calls its ListRuns and
    GetRun with the bearer token the browser sends (never stored); unset turns the view off."""
    workflow_tls: ClientTLS | None = None
    """TLS to the workflow service; plaintext when unset."""
    trace_url: str = ""
    """Link from a run to its trace, e.g. ``http://jaeger:16686/trace/{trace_id}``; empty: no link."""
    runs_window: int = Field(default=200, ge=10, le=1000)
    """Most recent runs the runs view reads (state counts, throughput, failure rate)."""

    @model_validator(mode="after")
    def _valid(self) -> Self:
        for h in self.allowed_hosts:
            if not h or h != h.strip() or any(c in h for c in "/@ \t"):
                raise ValueError(f"allowed_hosts: '{h}' is not a host name or host:port")
        url = self.trace_url
        if url and (not url.startswith(("http://", "https://")) or "{trace_id}" not in url):
            raise ValueError("trace_url must be an http(s) URL containing '{trace_id}'")
        return self

    def hosts(self, port: int) -> frozenset[str]:
        """Lower-cased Host values answered on ``port``."""
        names = self.allowed_hosts or [f"{n}:{port}" for n in _LOOPBACK_NAMES]
        return frozenset(h.lower() for h in names)


class WatchdogConfig(ConfigModel):
    """healthd's own honesty: `liveness` turns NOT_SERVING when its scheduler stalls."""

    interval_s: float = Field(default=0.5, gt=0, le=60)
    """Heartbeat period of the watchdog."""
    stall_after_s: float = Field(default=5.0, gt=0, le=3600)
    """Event-loop lag (or check lateness) beyond which the scheduler counts as stalled."""


class HealthdConfig(ConfigModel):
    """Root configuration of the health daemon."""

    server: ServerConfig = Field(default_factory=lambda: ServerConfig(port=50050))
    """gRPC server (grpc.health.v1 and vigil.healthd.v1.HealthDaemon); default port 50050."""
    http: HttpConfig = Field(default_factory=HttpConfig)
    """HTTP dashboard / metrics port (default 8050)."""
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    """Dashboard: allowed Host names, the runs view's workflow service, trace links."""
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    """Alert rules and webhook receivers (shown on the dashboard either way)."""
    mode: Mode = Mode.SUPERVISOR
    """``supervisor`` starts and restarts children; ``sidecar`` only checks and escalates."""
    components: list[ComponentConfig] = Field(default_factory=list)
    """Everything healthd watches."""
    _by_name: tuple[list[ComponentConfig], dict[str, ComponentConfig]] | None = PrivateAttr(default=None)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    """The security service's key material (API key hashes, keys file, JWT settings): healthd
    verifies ADMIN tokens on mutating RPCs itself, so they work while that service is down."""
    audit: AuditConfig | None = None
    """Keyed, anchored audit log of the mutating RPCs (CheckNow, Heal, SetMaintenance); unset:
    not audited. Same format as the security service's; pointed at the same SQLite file, key
    and head file (supervisor mode) or PostgreSQL database, healthd appends to its chain."""
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    """Self-check of the scheduler."""
    level_recovery_s: float = Field(default=5.0, ge=0, le=3600)
    """While the level flaps, a better level applies only after holding this long. A single
    recovery is never held: when every critical component serves, new runs are accepted."""
    level_flap_count: int = Field(default=3, ge=1, le=1000)
    """The level flaps once it improved this many times within ``level_flap_window_s``."""
    level_flap_window_s: float = Field(default=60.0, gt=0, le=86_400)
    """Window in which improvements of the level are counted as flapping."""
    event_history: int = Field(default=1000, ge=10, le=1_000_000)
    """Events kept in memory for ListEvents."""
    run_dir: Path | None = None
    """Where healthd records its children (pid, start time, argv, ports; one JSON file each,
    directory 0700) so a restarted healthd adopts them instead of starting duplicates; unset
    (tests) records nothing and adopts nothing."""
    log_dir: Path | None = None
    """Each child's output is also written to ``<log_dir>/<short-name>[-<replica>].log``
    (rotated at ``log_max_bytes``, one ``.1`` kept); unset uses a private temporary directory."""
    log_max_bytes: int = Field(default=4 << 20, ge=4096, le=1 << 30)
    """Size at which a child's log file is rotated."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [c.name for c in self.components]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"component names must be unique; repeated: {sorted(dup)}")
        reserved = {"", "liveness", "readiness"} & set(names)
        if reserved:
            raise ValueError(f"component names {sorted(reserved)} are reserved by healthd")
        for comp in self.components:
            for dep in comp.depends_on:
                if dep not in names:
                    raise ValueError(f"component '{comp.name}' depends on unknown component '{dep}'")
            has_process_check = any(c.kind == "process" for c in comp.checks)
            if self.mode is Mode.SIDECAR and comp.process is not None:
                raise ValueError(f"component '{comp.name}': sidecar mode supervises no process")
            if comp.healing.action == "restart" and comp.process is None:
                raise ValueError(f"component '{comp.name}': healing 'restart' needs a 'process'")
            if has_process_check and comp.process is None:
                raise ValueError(f"component '{comp.name}': a 'process' check needs a 'process'")
            _check_replicas(comp)
        _reject_shared_files(self.components)
        _reject_cycles({c.name: c.depends_on for c in self.components})
        self._index_components()  # now, so equal configs compare equal (private state included)
        return self

    def component(self, name: str) -> ComponentConfig:
        """The component called ``name`` (KeyError when unknown).

        Called for every unit on every evaluation: a dict, built once per ``components`` list
        (a copy with other components gets its own), not a scan (100 components: 22% of
        healthd's CPU went to scanning).
        """
        # The private slot directly: ``self._by_name`` goes through pydantic's __getattr__ (2 us).
        index = self.__pydantic_private__["_by_name"]  # type: ignore[index]
        if index is None or index[0] is not self.components:
            index = self._index_components()
        return index[1][name]

    def _index_components(self) -> tuple[list[ComponentConfig], dict[str, ComponentConfig]]:
        self._by_name = (self.components, {c.name: c for c in self.components})
        return self._by_name


def _check_replicas(comp: ComponentConfig) -> None:
    """Replicas need a process and per-replica health ports healthd can check one by one;
    private ports are passed through the child's env prefix."""
    proc = comp.process
    if proc is None:
        if comp.replicas > 1:
            raise ValueError(f"component '{comp.name}': 'replicas' needs a 'process'")
        return
    if comp.replicas > 1 and proc.health_port is None:
        raise ValueError(
            f"component '{comp.name}': 'replicas: {comp.replicas}' needs process.health_port "
            "(each replica serves health on a private port of its own)"
        )
    if (proc.health_port or proc.metrics_port) and proc.env_prefix is None:
        raise ValueError(f"component '{comp.name}': private ports need process.env_prefix")
    for field, base in (("health_port", proc.health_port), ("metrics_port", proc.metrics_port)):
        if base is not None and base + comp.replicas - 1 > 65535:
            raise ValueError(f"component '{comp.name}': process.{field} + replicas is past 65535")


def _reject_shared_files(components: list[ComponentConfig]) -> None:
    """Supervised replicas with one unit key (`healthd._names`) would share a pid record and a
    log: the next healthd would adopt one's process for the other and orphan the first."""
    owner: dict[str, str] = {}
    for comp in (c for c in components if c.process is not None):
        for key in (unit_key(comp.name, i, comp.replicas) for i in range(1, comp.replicas + 1)):
            if owner.setdefault(key, comp.name) != comp.name:
                raise ValueError(
                    f"components '{owner[key]}' and '{comp.name}' would share the files of '{key}'"
                )


def _reject_cycles(graph: dict[str, list[str]]) -> None:
    """Raise ValueError naming a dependency cycle if ``graph`` has one."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = " -> ".join([*path[path.index(node) :], node])
            raise ValueError(f"dependency cycle: {cycle}")
        if node in done:
            return
        for dep in graph[node]:
            visit(dep, [*path, node])
        done.add(node)

    for name in graph:
        visit(name, [])


def dependency_order(config: HealthdConfig) -> list[str]:
    """Component names ordered so every component comes after its dependencies."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in config.component(name).depends_on:
            visit(dep)
        order.append(name)

    for comp in config.components:
        visit(comp.name)
    return order
