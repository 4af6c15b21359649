"""``vigil``: one command line for the whole stack (health, runs, workflows, components).

`Settings` resolves addresses and the token the way the stack's processes read their config.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.cli._settings import Settings, TokenNotFound

__all__ = ["Settings", "TokenNotFound", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``vigil`` console script (imported lazily: healthd's CLI imports `Settings` from here)."""
    from services.cli._main import main as run

    return run(argv)
