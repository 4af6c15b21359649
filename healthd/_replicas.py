"""Replicas: the units healthd supervises and checks, N per replicated component.

A component with ``replicas: N`` (and a process) becomes N units, ``name#1`` .. ``name#N``
(just ``name`` when N is 1): each has its own child process, its own checks and its own
healing machine, so one replica is restarted without touching the others. All replicas
listen on the component's port with SO_REUSEPORT; each also serves grpc.health.v1 on a
private port, and the component's grpc checks are pointed there, one per replica.

Port scheme (``process.env_prefix`` ``P``, 1-based replica ``i``), passed as config env:
  ``P SERVER__REUSE_PORT=true``                      (only when N > 1)
  ``P SERVER__HEALTH_PORT = process.health_port + i - 1``   (when health_port is set)
  ``P SERVER__METRICS_PORT = process.metrics_port + i - 1`` (when metrics_port is set)
  ``P SERVER__REPLICA = i``
"""

from __future__ import annotations

from dataclasses import dataclass

from healthd._config import (
    CheckConfig,
    ComponentConfig,
    GrpcCheckConfig,
    HealthdConfig,
    Mode,
    ProcessConfig,
    dependency_order,
)
from healthd._names import unit_key, unit_name
from healthd._output import LineSink
from healthd._supervisor import Child, ExitCallback, Supervisor
from healthd._types import Status


@dataclass(frozen=True)
class Unit:
    """One replica of a component (the component itself when it has one replica)."""

    name: str
    component: str
    replica: int
    key: str
    """File stem of its log and record (``workflow-2``)."""
    health_port: int | None
    child: Child | None


def replica_env(proc: ProcessConfig, replica: int, replicas: int) -> dict[str, str]:
    """The config env telling replica ``replica`` its ports (see the module docstring)."""
    prefix = proc.env_prefix
    if prefix is None:
        return {}
    env = {f"{prefix}SERVER__REPLICA": str(replica)}
    if replicas > 1:
        env[f"{prefix}SERVER__REUSE_PORT"] = "true"
    if proc.health_port is not None:
        env[f"{prefix}SERVER__HEALTH_PORT"] = str(proc.health_port + replica - 1)
    if proc.metrics_port is not None:
        env[f"{prefix}SERVER__METRICS_PORT"] = str(proc.metrics_port + replica - 1)
    return env


def replica_check(cfg: CheckConfig, health_port: int | None) -> CheckConfig:
    """A grpc check aimed at the replica's private health port (other kinds unchanged)."""
    if health_port is None or not isinstance(cfg, GrpcCheckConfig) or ":" not in cfg.address:
        return cfg
    host = cfg.address.rsplit(":", 1)[0]
    return cfg.model_copy(update={"address": f"{host}:{health_port}"})


def units_of(comp: ComponentConfig, supervised: bool) -> list[tuple[str, int, str, int | None]]:
    """(unit name, replica, key, health port) of each replica of ``comp``."""
    n = comp.replicas if supervised and comp.process is not None else 1
    base = comp.process.health_port if comp.process is not None and supervised else None
    return [
        (unit_name(comp.name, i, n), i, unit_key(comp.name, i, n), None if base is None else base + i - 1)
        for i in range(1, n + 1)
    ]


def combine(statuses: list[Status]) -> Status:
    """A replicated component's own status: SERVING while any replica serves; NOT_SERVING
    when none serves and one is down; else UNKNOWN (all still starting)."""
    if any(s is Status.SERVING for s in statuses):
        return Status.SERVING
    if any(s is Status.NOT_SERVING for s in statuses):
        return Status.NOT_SERVING
    return Status.UNKNOWN


def build_units(
    config: HealthdConfig, supervisor: Supervisor, sink: LineSink, on_exit: ExitCallback
) -> list[Unit]:
    """Every unit in dependency order; supervised ones get a child, registered with ``supervisor``."""
    supervised = config.mode is Mode.SUPERVISOR
    out = []
    for name in dependency_order(config):
        comp = config.component(name)
        for uname, replica, key, health_port in units_of(comp, supervised):
            child = None
            if comp.process is not None and supervised:
                child = Child(
                    uname,
                    comp.process,
                    sink=sink,
                    on_exit=on_exit,
                    env=replica_env(comp.process, replica, comp.replicas),
                    log_path=None if config.log_dir is None else config.log_dir / f"{key}.log",
                    log_max_bytes=config.log_max_bytes,
                    records=supervisor.records,
                    key=key,
                    replica=replica,
                    component=name,
                )
                supervisor.add(child)
            out.append(Unit(uname, name, replica, key, health_port, child))
    return out
