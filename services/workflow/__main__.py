"""Entry point: ``python -m services.workflow --config FILE`` serves vigil.workflow.v1.WorkflowService.

Settings come from the YAML file and ``VIGIL_WORKFLOW_...`` environment overrides.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.common import run_main
from services.security import install_log_redaction
from services.workflow._app import build
from services.workflow._config import WorkflowConfig


def main(argv: Sequence[str] | None = None) -> int:
    install_log_redaction()  # this process's log policy: the security sanitizer's rules
    return run_main(argv, model=WorkflowConfig, env_prefix="VIGIL_WORKFLOW_", build=build, prog="workflow")


if __name__ == "__main__":
    sys.exit(main())
