"""A real server process built on the shared runtime whose GetRun sleeps for run_id seconds.

Used by the shutdown tests: it exercises run_main, signal handling and draining exactly as
the services do, with an RPC that is slow on demand.
"""

from __future__ import annotations

import asyncio
import sys

from services.common import ConfigModel, ServerConfig, VigilServer, run_main
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc


class SlowConfig(ConfigModel):
    server: ServerConfig = ServerConfig()
    """Server settings."""


class Slow(workflow_pb2_grpc.WorkflowServiceServicer):
    async def GetRun(self, request, context):
        await asyncio.sleep(float(request.run_id))
        return wpb.GetRunResponse(run=wpb.Run(run_id=request.run_id))


async def build(config: SlowConfig) -> VigilServer:
    server = VigilServer(config.server, "slow")
    server.add_servicer(
        workflow_pb2_grpc.add_WorkflowServiceServicer_to_server, Slow(), "vigil.workflow.v1.WorkflowService"
    )
    return server


if __name__ == "__main__":
    sys.exit(run_main(sys.argv[1:], model=SlowConfig, env_prefix="VIGIL_SLOW_", build=build, prog="slow"))
