"""Plain domain records of the workflow service: runs, their errors, queries and pages.

These are what the store persists and the servicer translates to protobuf; nothing
here knows about gRPC or SQL.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from services.common import Aborted
from services.security import redact_message
from services.workflow._states import RunState

__all__ = [
    "ErrorCategory",
    "Lease",
    "LeaseLost",
    "NewRun",
    "Run",
    "RunChange",
    "RunError",
    "RunPage",
    "RunQuery",
    "StepRecord",
    "canonical_json",
    "request_hash",
]


class ErrorCategory(enum.Enum):
    """Why a run (or an attempt) failed; counted per workflow for error analytics."""

    VALIDATION = "validation"
    AUTH = "auth"
    TIMEOUT = "timeout"
    DEPENDENCY = "dependency"
    HANDLER = "handler"
    CANCELLED = "cancelled"
    RESOURCE = "resource"


@dataclass(frozen=True)
class RunError:
    """The categorized failure recorded on a run. The message is redacted when the error is
    made (`services.security.redact_message`: secrets go, addresses stay), so a handler's
    exception text never carries a secret into the store, WatchRun or GetRun."""

    category: ErrorCategory
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", redact_message(self.message))


# One encoder for the process: json.dumps with non-default options builds a new
# JSONEncoder per call, which is half the cost of encoding a small value.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (hashes, storage)."""
    return _CANONICAL.encode(value)


def request_hash(request: dict[str, Any]) -> str:
    """Fingerprint of what a StartRun asked for (as sent); idempotency compares these."""
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


@dataclass(frozen=True)
class Lease:
    """A replica's hold on a run: the fencing token every write of the run and its steps carries.

    ``epoch`` counts the claims of the run (1 at creation, +1 on every claim or takeover), so
    a write carrying an older epoch comes from a replica whose lease moved and is refused
    (`LeaseLost`) even if the same owner id holds the newer lease (a restarted replica).
    """

    owner: str
    epoch: int


class LeaseLost(Aborted):
    """A fenced write was refused: the run's lease is no longer the writer's (owner or epoch moved).

    The writer must stop executing the run (another replica owns it, or it ended); nothing
    of the refused write was stored.
    """


@dataclass(frozen=True)
class NewRun:
    """A run to persist; `RunStore.create_run` commits it before StartRun answers."""

    run_id: str
    workflow: str
    params: Any
    principal: str
    priority: int
    created_at: float
    request_hash: str = ""
    idempotency_key: str | None = None
    """As stored: a keyed hash of the caller's key (services/workflow/_redaction.py)."""
    legacy_idempotency_key: str | None = None
    """The caller's key as rows written before keys were hashed hold it: looked up too, never stored."""
    legacy_request_hash: str = ""
    """The unkeyed `request_hash` such rows hold: an equal one is the same request, never stored."""
    not_before: float | None = None
    deadline: float | None = None
    degradation: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    schedule: str | None = None
    audit_id: str = ""
    redactions: dict[str, int] = field(default_factory=dict)
    lease_owner: str | None = None
    """Replica that will execute the run right away (leased from creation, so no other claims it)."""
    lease_expires: float | None = None
    trace_id: str = ""
    """Trace id of the StartRun that created it (32 hex digits), or "" when untraced."""
    retry_of: str | None = None
    """The run this one retries (RetryRun)."""
    resume: bool = False
    """Copy ``retry_of``'s finished steps into this run (in the same transaction as its creation)."""
    started: bool = False
    """Created with its first attempt started (RUNNING, ``attempts`` 1, its ATTEMPT_STARTED
    event in the same transaction): the creating replica executes it at once in an execution
    slot it holds already, so the separate RUNNING write is folded into the create."""


@dataclass(frozen=True)
class Run:
    """A persisted run as read back from the store."""

    run_id: str
    workflow: str
    state: RunState
    params: Any
    principal: str
    priority: int
    created_at: float
    updated_at: float
    seq: int = 0
    """Store-assigned insertion order; the key of stable pagination."""
    idempotency_key: str | None = None
    request_hash: str = ""
    not_before: float | None = None
    deadline: float | None = None
    attempts: int = 0
    result: Any = None
    error: RunError | None = None
    fallback: str | None = None
    """What fallback produced the result (``workflow:<name>`` or ``static``), if any."""
    degradation: str | None = None
    """Degradation level in force when the run was accepted, if not NORMAL."""
    labels: dict[str, str] = field(default_factory=dict)
    schedule: str | None = None
    audit_id: str = ""
    redactions: dict[str, int] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    lease_owner: str | None = None
    lease_expires: float | None = None
    trace_id: str = ""
    retry_of: str | None = None
    resumed: bool = False
    """Created by RetryRun with resume: it starts with ``retry_of``'s finished steps."""
    lease_epoch: int = 0
    """Claims of the run so far: 1 once created leased, +1 per claim or takeover (see `Lease`)."""
    stored_chars: int = 0
    """Its params and result as stored (JSON text): what converting it costs, so that a large
    run is converted off the event loop (0 for a run the store did not write or read)."""

    @property
    def lease(self) -> Lease | None:
        """The current holder's fencing token (None when nobody holds the run)."""
        return None if self.lease_owner is None else Lease(self.lease_owner, self.lease_epoch)

    @property
    def terminal(self) -> bool:
        return self.state.terminal


_UNSET: Any = object()


@dataclass(frozen=True)
class RunChange:
    """A state change plus the fields that change with it, applied atomically by the store.

    ``attempt=True`` increments the durable attempt counter in the same write (a new attempt
    starts). ``lease_owner``/``lease_expires`` are left alone unless given; terminal states
    always release the lease.
    """

    state: RunState
    result: Any = _UNSET
    error: RunError | None = None
    fallback: str | None = None
    attempt: bool = False
    lease_owner: str | None = None
    lease_expires: float | None = None
    trace_id: str = ""
    retry_of: str | None = None
    resumed: bool = False
    """Created by RetryRun with resume: it starts with ``retry_of``'s finished steps."""

    @property
    def has_result(self) -> bool:
        return self.result is not _UNSET

    @functools.cached_property
    def result_json(self) -> str:
        """The result as stored (`canonical_json`), encoded once: checked for its size, written
        and counted in `Run.stored_chars` from the same text."""
        return canonical_json(self.result)

    def replace(self, **kw: Any) -> RunChange:
        return dataclasses.replace(self, **kw)


@dataclass(frozen=True)
class RunQuery:
    """Filters and a page position for `RunStore.list_runs` (newest first)."""

    workflow: str | None = None
    states: frozenset[RunState] = frozenset()
    principal: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    created_after: float | None = None
    created_before: float | None = None
    before_seq: int | None = None
    """Keyset cursor: only runs with ``seq`` below this (the last one of the previous page)."""
    limit: int = 50
    max_chars: int | None = None
    """Stop short of ``limit`` once the runs read hold more params and result than this
    (JSON text as stored; at least one run): what the caller's message can carry."""


@dataclass(frozen=True)
class StepRecord:
    """A step of a run: started ``executions`` times, finished when ``completed``."""

    name: str
    completed: bool
    result: Any = None
    finished_at: float | None = None
    executions: int = 0
    started_at: float | None = None
    """When its last execution started."""
    duration_s: float | None = None
    """How long its finishing (or last failed) execution took."""
    error: RunError | None = None
    """Error of its last execution, when that one failed."""
    stored_chars: int = 0
    """Its result as stored (JSON text), like `Run.stored_chars`."""


@dataclass(frozen=True)
class RunPage:
    runs: list[Run] = field(default_factory=list)
    next_seq: int | None = None
    """Cursor for the next page, None on the last page."""

    @property
    def stored_chars(self) -> int:
        """The params and results of ``runs`` as stored (JSON text): what converting them costs."""
        return sum(run.stored_chars for run in self.runs)
