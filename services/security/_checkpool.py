"""Where the security service's CPU-heavy input checks run (`services.common.Offload`):
inline when small, on a bounded thread pool when large. Conversions of large message parts
(a Struct to Python and back) run there too (`SecurityOperations.convert`).
"""

from __future__ import annotations

from pydantic import Field

from services.common import ConfigModel, Offload

__all__ = ["CheckPool", "ValidationConfig"]


class ValidationConfig(ConfigModel):
    """Where input checks run and how large the inputs without a limit of their own may be."""

    workers: int = Field(default=1, ge=1, le=32)
    """Threads checking large inputs. The checks are Python and regex code holding the interpreter
    lock, so more threads add no throughput, only contention with the event loop: keep 1 unless
    the checks change."""
    inline_bytes: int = Field(default=4096, ge=0, le=1 << 20)
    """Inputs up to this size are checked on the event loop (cheaper than a thread hop)."""
    max_queued: int = Field(default=32, ge=1, le=10_000)
    """Large checks waiting or running at once; more are refused with RESOURCE_EXHAUSTED."""
    sanitize_max_chars: int = Field(default=1 << 20, ge=1, le=16 << 20)
    """Longest Sanitize ``text`` accepted, in characters (longer: INVALID_ARGUMENT)."""


class CheckPool(Offload):
    """The security service's `Offload`, sized by its `ValidationConfig`."""

    def __init__(self, config: ValidationConfig | None = None) -> None:
        self.config = config or ValidationConfig()
        cfg = self.config
        super().__init__(
            workers=cfg.workers, inline_bytes=cfg.inline_bytes, max_queued=cfg.max_queued, name="vigil-check"
        )
