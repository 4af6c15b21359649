"""grpc.health.v1 Check/Watch/List over a real grpc.aio server on port 0."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common import ServerConfig, VigilServer
from tests.conftest import eventually
from vigil.workflow.v1 import workflow_pb2_grpc

SERVING, NOT_SERVING, UNKNOWN = hpb.HealthCheckResponse.SERVING, hpb.HealthCheckResponse.NOT_SERVING, 3
WF = "vigil.workflow.v1.WorkflowService"


@pytest.fixture
async def server():
    srv = VigilServer(ServerConfig(port=0, grace_period_s=1), "test")
    srv.add_servicer(
        workflow_pb2_grpc.add_WorkflowServiceServicer_to_server,
        workflow_pb2_grpc.WorkflowServiceServicer(),
        WF,
    )
    await srv.start()
    yield srv
    await srv.stop(0)


@pytest.fixture
async def stub(server):
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield hpb_grpc.HealthStub(channel)


async def test_check_known_overall_and_unknown(stub) -> None:
    assert (await stub.Check(hpb.HealthCheckRequest(service=WF))).status == SERVING
    assert (await stub.Check(hpb.HealthCheckRequest())).status == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Check(hpb.HealthCheckRequest(service="no.such.Service"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_returns_every_registered_service(server, stub) -> None:
    await server.health.set("extra", NOT_SERVING)
    listed = (await stub.List(hpb.HealthListRequest())).statuses
    assert {k: v.status for k, v in listed.items()} == {"": SERVING, WF: SERVING, "extra": NOT_SERVING}


async def test_watch_streams_each_change(server, stub) -> None:
    call = stub.Watch(hpb.HealthCheckRequest(service=WF))
    assert (await call.read()).status == SERVING
    await server.health.set(WF, NOT_SERVING)
    assert (await asyncio.wait_for(call.read(), 2)).status == NOT_SERVING
    await server.health.set(WF, SERVING)
    assert (await asyncio.wait_for(call.read(), 2)).status == SERVING
    call.cancel()


async def test_watch_unknown_says_service_unknown_and_stays_open(server, stub) -> None:
    call = stub.Watch(hpb.HealthCheckRequest(service="later"))
    assert (await call.read()).status == hpb.HealthCheckResponse.SERVICE_UNKNOWN
    await asyncio.sleep(0.1)
    assert not call.done()
    await server.health.set("later", SERVING)
    assert (await asyncio.wait_for(call.read(), 2)).status == SERVING
    await server.health.remove("later")
    assert (await asyncio.wait_for(call.read(), 2)).status == hpb.HealthCheckResponse.SERVICE_UNKNOWN
    call.cancel()


async def test_many_watchers_all_see_change_despite_a_stalled_one(server) -> None:
    channels = [grpc.aio.insecure_channel(server.address) for _ in range(4)]
    stalled = hpb_grpc.HealthStub(channels[0]).Watch(hpb.HealthCheckRequest(service=WF))
    await stalled.read()  # then never read again
    calls = [
        hpb_grpc.HealthStub(channels[i % 4]).Watch(hpb.HealthCheckRequest(service=WF)) for i in range(200)
    ]
    for c in calls:
        assert (await c.read()).status == SERVING
    for status in (NOT_SERVING, SERVING, NOT_SERVING):
        await server.health.set(WF, status)
        got = await asyncio.wait_for(asyncio.gather(*(c.read() for c in calls)), 10)
        assert {r.status for r in got} == {status}
    stalled.cancel()
    for c in calls:
        c.cancel()
    await eventually(lambda: server.health.watcher_count(WF) == 0)
    for ch in channels:
        await ch.close()


async def test_graceful_shutdown_turns_everything_not_serving_first(server, stub) -> None:
    call = stub.Watch(hpb.HealthCheckRequest(service=WF))
    assert (await call.read()).status == SERVING
    stopping = asyncio.ensure_future(server.stop(5))
    assert (await asyncio.wait_for(call.read(), 2)).status == NOT_SERVING
    await asyncio.wait_for(stopping, 3)  # the open Watch does not hold the drain for the full grace
    await server.health.set(WF, SERVING)
    assert server.health.get(WF) == NOT_SERVING


async def test_reflection_lists_services(server) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for r in call for s in r.list_services_response.service}
    assert {WF, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


async def test_shutdown_ends_watches_of_services_already_not_serving() -> None:
    """A watcher whose service was NOT_SERVING before shutdown gets no new status to wake it;
    it must still end at once, not hold the drain for the whole grace period."""
    srv = VigilServer(ServerConfig(port=0, grace_period_s=30), "test")
    await srv.start()
    await srv.health.set("down", NOT_SERVING)
    async with grpc.aio.insecure_channel(srv.address) as channel:
        stub = hpb_grpc.HealthStub(channel)
        calls = [stub.Watch(hpb.HealthCheckRequest(service=s)) for s in ("down", "", "never-registered")]
        for call in calls:
            await call.read()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await srv.stop()
        assert loop.time() - t0 < 5, "shutdown waited for the watchers"
        for call in calls:  # each stream is over: what is left is at most its last status
            rest = []
            while (reply := await asyncio.wait_for(call.read(), 2)) is not grpc.aio.EOF:
                rest.append(reply.status)
            assert rest in ([], [NOT_SERVING]), rest


async def test_check_of_a_huge_unknown_name_is_not_found_with_a_short_message(stub) -> None:
    # The name was echoed whole into grpc-message: a client with gRPC's default 16 KiB metadata
    # limit then saw RESOURCE_EXHAUSTED "received metadata size exceeds hard limit", not NOT_FOUND.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Check(hpb.HealthCheckRequest(service="x" * (1 << 20)))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(info.value.details() or "") < 300
