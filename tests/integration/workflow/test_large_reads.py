"""Reads of runs with large params: one caller's page costs what its message holds, off the loop."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import grpc
import pytest

from services.workflow import _service
from services.workflow._model import NewRun
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, check_latencies, client
from vigil.workflow.v1 import workflow_pb2 as pb
from vigil.workflow.v1 import workflow_pb2_grpc as pb_grpc

# Many small entries, like the largest params the default limit admits: about 240 KB as stored,
# and tens of milliseconds to convert to a protobuf Struct.
BIG_PARAMS = {f"k{i}": [i, "v", {"x": 1.5}] for i in range(8000)}


async def test_a_page_of_large_runs_is_read_within_its_message_and_converted_off_the_loop(
    start_workflow: StartWorkflow, security: SecurityEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    built_on: list[str] = []

    def page_response(*args: Any) -> Any:
        built_on.append(threading.current_thread().name)
        return build(*args)

    build = _service._page_response
    monkeypatch.setattr(_service, "_page_response", page_response)
    # The default 4 MiB message holds about 9 of these runs: converted on the loop, that page
    # held every other caller for over a second; and the store parsed all 60 runs (page_size
    # 1000) to return 9 of them.
    app = await start_workflow(security.address)
    async with client(app, security.alice) as c:  # alice is known to the service once she has started a run
        small, _ = await c.start_run("echo", {"x": 1}, wait=True)
    later = time.time() + 3600  # scheduled: the executor leaves them alone meanwhile
    for _ in range(60):
        new = NewRun(uuid.uuid4().hex, "echo", BIG_PARAMS, small.principal, 0, time.time(), not_before=later)
        await app.store.create_run(new)
    auth = (("authorization", f"Bearer {security.alice}"),)
    async with grpc.aio.insecure_channel(app.server.address) as ch:
        request = pb.ListRunsRequest(page_size=1000)
        stub = pb_grpc.WorkflowServiceStub(ch)
        listing = asyncio.ensure_future(stub.ListRuns(request, metadata=auth, timeout=60))
        await asyncio.sleep(0.02)
        latencies = await check_latencies(ch, listing)
        page = await listing
    assert 2 < len(page.runs) < 60 and page.next_page_token  # cut to the message, not to the limit
    assert len(page.runs[0].params.fields) == 8000
    assert built_on and threading.main_thread().name not in built_on  # the reply's copies, too
    print(f"{len(page.runs)} runs in the page; probes: {len(latencies)}, max {max(latencies):.3f} s")
    # Converting and building run on the offload thread, which hands the GIL back every few
    # milliseconds; the loop only serializes the reply (tens of milliseconds for 4 MiB).
    assert latencies and max(latencies) < 1.0, latencies


async def test_reads_of_one_large_run_convert_it_off_the_loop(
    start_workflow: StartWorkflow, security: SecurityEnv
) -> None:
    # GetRun, WatchRun and the others converted the whole run (params and result) on the loop:
    # a caller reading one such run a few times at once held everyone else that long.
    app = await start_workflow(security.address)
    async with client(app, security.alice) as c:
        small, _ = await c.start_run("echo", {"x": 1}, wait=True)
    new = NewRun(
        uuid.uuid4().hex, "echo", BIG_PARAMS, small.principal, 0, time.time(), not_before=time.time() + 3600
    )
    big, _ = await app.store.create_run(new)
    auth = (("authorization", f"Bearer {security.alice}"),)
    async with grpc.aio.insecure_channel(app.server.address) as ch:
        stub = pb_grpc.WorkflowServiceStub(ch)
        get = pb.GetRunRequest(run_id=big.run_id)
        watch = stub.WatchRun(pb.WatchRunRequest(run_id=big.run_id), metadata=auth, timeout=60)
        reads = asyncio.gather(*(stub.GetRun(get, metadata=auth, timeout=60) for _ in range(8)), watch.read())
        busy = asyncio.ensure_future(reads)
        await asyncio.sleep(0.02)
        latencies = await check_latencies(ch, busy)
        *got, snapshot = await busy
        watch.cancel()
    assert all(len(r.run.params.fields) == 8000 for r in got) and len(snapshot.run.params.fields) == 8000
    print(f"probes: {len(latencies)}, max {max(latencies):.3f} s")
    assert latencies and max(latencies) < 0.5, latencies
