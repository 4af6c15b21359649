"""healthd's check configuration: one model per check kind, told apart by ``kind``.

Part of `healthd._config` (re-exported there): what a check probes and how often, validated
when the config is loaded; `healthd._checks` runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from services.common import ClientTLSConfig, ConfigModel

ClientTLS = ClientTLSConfig
"""TLS used by healthd as a client (checks, admin RPCs): the shared `ClientTLSConfig`."""


class _CheckBase(ConfigModel):
    """Timing and hysteresis shared by every check kind."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    """Name shown in status and events; defaults to the kind (``grpc``, ``grpc-2`` if repeated)."""
    interval_s: float = Field(default=5.0, gt=0, le=3600)
    """Period between runs; runs stay on the grid start + k*interval (no drift)."""
    timeout_s: float = Field(default=1.0, gt=0, le=600)
    """A run that takes longer is cancelled and counts as a failure."""
    failure_threshold: int = Field(default=3, ge=1, le=100)
    """Consecutive failures before the check is considered NOT_SERVING."""
    success_threshold: int = Field(default=1, ge=1, le=100)
    """Consecutive successes before a failed check is considered SERVING again."""
    initial_delay_s: float = Field(default=0.0, ge=0, le=3600)
    """Wait before the first run (lets a service start)."""
    jitter_s: float = Field(default=0.0, ge=0, le=60)
    """Each run is delayed by a random amount in [0, jitter_s] (never accumulated)."""

    @model_validator(mode="after")
    def _jitter_fits(self) -> Self:
        if self.jitter_s >= self.interval_s:
            raise ValueError(f"jitter_s ({self.jitter_s}) must be below interval_s ({self.interval_s})")
        return self


class GrpcCheckConfig(_CheckBase):
    """`grpc.health.v1` Check of a named service; also holds a Watch stream open (death is an event)."""

    kind: Literal["grpc"]
    address: str = Field(min_length=1)
    """``host:port`` of the server."""
    service: str = ""
    """Service name asked for; ``""`` is the server's overall health."""
    tls: ClientTLS | None = None
    """TLS to the server; plaintext when unset."""
    watch: bool = True
    """Hold a Watch stream open so a dying server is seen the moment the stream breaks."""


class TcpCheckConfig(_CheckBase):
    """TCP connect to ``host:port``."""

    kind: Literal["tcp"]
    address: str = Field(min_length=1)
    """``host:port`` to connect to."""


class HttpCheckConfig(_CheckBase):
    """HTTP GET with status (and optional body) match."""

    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    """Full URL, ``http://`` or ``https://``."""
    expect_status: int = Field(default=200, ge=100, le=599)
    """Status code that counts as success."""
    expect_body: str | None = None
    """Substring the body must contain; unchecked when unset."""
    tls: ClientTLS | None = None
    """CA / client certificate for ``https://`` URLs."""


class ExecCheckConfig(_CheckBase):
    """Runs a command; success is the expected exit code."""

    kind: Literal["exec"]
    argv: list[str] = Field(min_length=1)
    """Program and arguments (no shell)."""
    expect_exit: int = 0
    """Exit code that counts as success."""


class ProcessCheckConfig(_CheckBase):
    """Liveness of the component's supervised child process (supervisor mode)."""

    kind: Literal["process"]


class StoreCheckConfig(_CheckBase):
    """Opens the workflow SQLite store read-only, runs a trivial query and measures its space:
    NOT_SERVING below the free-space reserve (the workflow service then refuses new runs)."""

    kind: Literal["store"]
    path: Path
    """SQLite database file of the workflow run store."""
    reserve_mb: float = Field(default=64.0, ge=0, le=1 << 20)
    """Free space (MiB) below which the store counts as down: keep it equal to the workflow
    service's ``store_space.reserve_mb``."""
    reserve_percent: float = Field(default=0.0, ge=0, le=50)
    """The same as a share of the volume (the larger applies), as ``store_space.reserve_percent``."""


CheckConfig = Annotated[
    GrpcCheckConfig
    | TcpCheckConfig
    | HttpCheckConfig
    | ExecCheckConfig
    | ProcessCheckConfig
    | StoreCheckConfig,
    Field(discriminator="kind"),
]
