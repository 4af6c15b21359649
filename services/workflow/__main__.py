"""``python -m services.workflow --config FILE`` (env overrides: ``VIGIL_WORKFLOW_...``)."""

from __future__ import annotations

import sys

from services.common import run_main
from services.workflow._app import build
from services.workflow._config import WorkflowConfig


def main(argv: list[str] | None = None) -> int:
    return run_main(
        argv if argv is not None else sys.argv[1:],
        model=WorkflowConfig,
        env_prefix="VIGIL_WORKFLOW_",
        build=build,
    )


if __name__ == "__main__":
    sys.exit(main())
