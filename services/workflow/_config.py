"""Root configuration of the workflow service (loaded once by `load_config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from services.common import ClientTLSConfig, ConfigModel, ServerConfig
from services.security import AuthConfig
from services.workflow._pg_config import PostgresConfig
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._schedule import ScheduleConfig

__all__ = ["LimitsConfig", "StoreSpaceConfig", "WorkflowConfig", "WorkflowEntry"]


class WorkflowEntry(ConfigModel):
    """A workflow registered from config with an optional policy overriding the declared one."""

    handler: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    """``module:callable`` of the handler."""
    policy: WorkflowPolicy | None = None
    """Replaces the handler's declared policy when set."""


class LimitsConfig(ConfigModel):
    """Bounds on requests and on the executor."""

    max_params_bytes: int = Field(default=256 * 1024, ge=1024, le=16 << 20)
    """Largest params object (as compact JSON) accepted by StartRun."""
    max_params_depth: int = Field(default=20, ge=1, le=32)
    """Deepest nesting of params (objects and lists); protobuf's parser refuses ~33 and more."""
    max_result_bytes: int = Field(default=1 << 20, ge=1024, le=3 << 20)
    """Largest run result (as JSON); a bigger one fails the run (category resource)."""
    max_labels: int = Field(default=32, ge=0, le=256)
    """Labels per run."""
    max_wait_s: float = Field(default=300.0, gt=0, le=3600)
    """Longest StartRun(wait) without a client deadline."""
    max_schedule_ahead_s: float = Field(default=366 * 86_400, gt=0)
    """How far in the future not_before may be."""
    process_workers: int = Field(default=2, ge=1, le=256)
    """Worker processes for process-isolated handlers."""
    lease_s: float = Field(default=30.0, ge=1, le=3600)
    """Lease of a run by its replica; another replica takes over after it expires."""
    poll_s: float = Field(default=1.0, gt=0, le=60)
    """How often due runs (scheduled, orphaned) are claimed."""


class StoreSpaceConfig(ConfigModel):
    """How the SQLite run store manages the space of its volume (PostgreSQL manages its own)."""

    reserve_mb: float = Field(default=64.0, ge=0, le=1 << 20)
    """Free space (MiB) below which new runs are refused (RESOURCE_EXHAUSTED with a retry delay)
    while accepted runs finish in what is left; healthd's store check uses the same reserve."""
    reserve_percent: float = Field(default=0.0, ge=0, le=50)
    """The same as a share of the volume; the larger of the two applies."""
    wal_limit_mb: float = Field(default=8.0, gt=0, le=4096)
    """Bound of the write-ahead log: checkpointed at half of it, truncated back to it; when the
    writer is idle and space is not low it is checkpointed and truncated to zero."""
    preallocate_mb: float = Field(default=1.0, ge=0, le=1024)
    """Free pages kept allocated inside the database file (topped up while space is not low), so
    accepted runs can still write their steps and results when the volume is full."""
    retry_after_s: float = Field(default=5.0, gt=0, le=3600)
    """Retry delay a refusal for low space tells the caller."""


class WorkflowConfig(ConfigModel):
    """Workflow service settings (env prefix ``VIGIL_WORKFLOW_``)."""

    server: ServerConfig = ServerConfig(port=50051)
    """gRPC server: bind address and port (50051), limits, TLS, metrics port."""
    store_backend: Literal["sqlite", "postgres"] = "sqlite"
    """Run store: embedded SQLite at ``store_path`` (one replica), or ``postgres`` shared by replicas."""
    postgres: PostgresConfig = PostgresConfig()
    """PostgreSQL run store settings (used when ``store_backend`` is ``postgres``)."""
    store_path: Path = Path(".vigil/workflow/runs.db")
    """SQLite run store (WAL); created with its directory."""
    store_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """FULL: every commit survives power loss; NORMAL: survives a process crash only."""
    store_space: StoreSpaceConfig = StoreSpaceConfig()
    """Free-space reserve, WAL bound and pre-allocation of the SQLite run store."""
    instance_id: str = Field(default="local", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """Replica id owning run leases; keep it stable across restarts so runs resume at once.
    A supervised replica (``server.replica`` > 0) owns its runs as ``<instance_id>-r<replica>``
    (see `lease_owner`), so replicas sharing one config never claim each other's runs."""
    security_address: str = "127.0.0.1:50052"
    """host:port of the security service (Screen, VerifyArtifact)."""
    security_tls: ClientTLSConfig | None = None
    """TLS/mTLS towards the security service (CA, client certificate, server name); plaintext when unset."""
    security_timeout_s: float = Field(default=2.0, gt=0, le=60)
    """Per-call deadline towards the security service (the caller's deadline may be sooner); a
    Screen gets 1 s more per 64 KiB of params, since screening is linear in their size."""
    security_stream: bool = True
    """Screen over one long-lived ScreenStream per connection (batched, cheaper per call) instead
    of one unary Screen per run; a security service without ScreenStream is screened unary. Each
    screening carries its own trace context, so traces cross into security either way."""
    auth: AuthConfig | None = None
    """The security service's key material (API key hashes, keys file, JWT settings). When set,
    callers of reads (GetRun, ListRuns, WatchRun, ListWorkflows) are verified here with it, so
    reads survive a security outage; unset: they are authenticated by the security service.
    New runs are always screened by the security service (fail closed)."""
    service_token_file: Path | None = None
    """Token the service uses for its own calls (scheduled runs, artifact.verify); unset disables them."""
    idempotency_secret_file: Path | None = None
    """File holding the HMAC key of stored idempotency keys (only a keyed hash of each key is
    stored). Unset, with no ``idempotency_secret``: a key generated (0600) beside the SQLite store.
    Replicas sharing a PostgreSQL store must share it."""
    idempotency_secret: SecretStr | None = None
    """The same key given directly (``VIGIL_WORKFLOW_IDEMPOTENCY_SECRET``); the file wins if both are set."""
    healthd_address: str | None = "127.0.0.1:50050"
    """host:port of healthd for degradation levels; unset: always NORMAL."""
    healthd_tls: ClientTLSConfig | None = None
    """TLS/mTLS towards healthd (compose: another container); plaintext when unset (a sidecar on loopback)."""
    healthd_component: str = "vigil.workflow.v1.WorkflowService"
    """healthd's name for this service's component: the level obeyed leaves out that component's
    own failure (a restarted replica is up; see healthd's ``SystemHealth.level_without``)."""
    workflows: dict[str, WorkflowEntry] = {}
    """Extra workflows by name (override built-ins and entry points of the same name)."""
    load_entry_points: bool = True
    """Register workflows of the ``vigil.workflows`` entry-point group."""
    schedules: list[ScheduleConfig] = []
    """Cron schedules starting runs."""
    limits: LimitsConfig = LimitsConfig()
    """Request and executor bounds."""
    health_probe_s: float = Field(default=5.0, gt=0, le=300)
    """How often the run store is probed; grpc.health.v1 is NOT_SERVING while the probe fails."""
    health_probe_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """A probe taking longer than this counts as failed (a hung store serves nobody)."""

    @field_validator("schedules")
    @classmethod
    def _unique_schedule_names(cls, value: list[ScheduleConfig]) -> list[ScheduleConfig]:
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate schedule names: {', '.join(dupes)}")
        return value

    @property
    def lease_owner(self) -> str:
        """Who owns this process's run leases: ``instance_id``, per replica when supervised as one.

        Stable across restarts of the same replica (its runs resume at once), distinct between
        replicas (a living replica takes a dead one's runs only once their leases expire)."""
        if self.server.replica:
            return f"{self.instance_id}-r{self.server.replica}"
        return self.instance_id
