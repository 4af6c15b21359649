"""Entry point: `python -m services.workflow` serves vigil.workflow.v1.WorkflowService.

The foundation serves health, reflection and the contract; RPCs not yet built
answer UNIMPLEMENTED (the generated base servicer), never a fake result.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.common import ConfigModel, ServerConfig, VigilServer, run_main
from vigil.workflow.v1 import workflow_pb2_grpc as _pb_grpc


class WorkflowConfig(ConfigModel):
    """Settings of the workflow process."""

    server: ServerConfig = ServerConfig(port=50051)
    """gRPC server settings (default port 50051)."""


async def build(config: WorkflowConfig) -> VigilServer:
    server = VigilServer(config.server, "workflow")
    server.add_servicer(
        _pb_grpc.add_WorkflowServiceServicer_to_server,
        _pb_grpc.WorkflowServiceServicer(),
        "vigil.workflow.v1.WorkflowService",
    )
    return server


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(argv, model=WorkflowConfig, env_prefix="VIGIL_WORKFLOW_", build=build, prog="workflow")


if __name__ == "__main__":
    sys.exit(main())
