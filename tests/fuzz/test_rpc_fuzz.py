"""Fuzzing every RPC of the three services over real processes (the local stack: healthd
supervising security and workflow): random and boundary messages built from the protos,
huge strings, deep Structs, malformed tokens and invalid UTF-8 in binary metadata.

Bar: no UNKNOWN or INTERNAL status, no crashed or restarted process, every server still
SERVING afterwards."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2 as hpb
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from bench import SECURITY, WORKFLOW, LocalStack
from bench._stack import health_status
from tests.fuzz.protofuzz import messages, metadata
from vigil.healthd.v1 import healthd_pb2
from vigil.security.v1 import security_pb2
from vigil.workflow.v1 import workflow_pb2

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BUGS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
SERVICES = {
    "workflow": workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"],
    "security": security_pb2.DESCRIPTOR.services_by_name["SecurityService"],
    "healthd": healthd_pb2.DESCRIPTOR.services_by_name["HealthDaemon"],
}
HEALTH_NAMES = {"workflow": WORKFLOW, "security": SECURITY, "healthd": ""}


class Fuzzed:
    """The started stack, an event loop driving it, and what each fuzzed call answered."""

    def __init__(self, stack: LocalStack, loop: asyncio.AbstractEventLoop) -> None:
        self.stack, self.loop = stack, loop
        self.pids = {name: loop.run_until_complete(stack.pid(name)) for name in ("security", "workflow")}
        self.channels = {n: grpc.insecure_channel(stack.address(n)) for n in SERVICES}
        self.codes: dict[str, set[str]] = {}

    def call(self, name: str, method: Any, request: Any, md: tuple[tuple[str, Any], ...]) -> grpc.StatusCode:
        path = f"/{method.containing_service.full_name}/{method.name}"
        channel = self.channels[name]
        kind = channel.unary_stream if method.server_streaming else channel.unary_unary
        stub = kind(
            path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=lambda b: b
        )
        try:
            if method.server_streaming:
                stream = stub(request, metadata=md, timeout=1.0)
                for n, _ in enumerate(stream):
                    if n >= 1:
                        stream.cancel()
                        break
            else:
                stub(request, metadata=md, timeout=10)
            code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
        self.codes.setdefault(path, set()).add(code.name)
        return code


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Fuzzed]:
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory(prefix="vigil-fuzz-") as tmp:
        stack = LocalStack(Path(tmp), check_interval_s=1.0)
        try:
            loop.run_until_complete(stack.start())
            yield Fuzzed(stack, loop)
        finally:
            stack.stop()
            loop.close()


# Findings reported to their owners: requests matching one are generated (hypothesis draws
# them) but not sent, so the fuzz keeps hunting for new failures; each has a strict-xfail
# regression test below that turns green when the owner fixes it.
# (The workflow Timestamp finding is fixed: out-of-range Timestamps are sent again.)
KNOWN_FINDINGS: dict[str, list[tuple[str, Callable[[Message], bool]]]] = {}


def _fuzz(fuzzed: Fuzzed, name: str, tokens: list[str], examples: int) -> None:
    service = SERVICES[name]
    methods = list(service.methods)

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        method = data.draw(st.sampled_from(methods), label="method")
        request = data.draw(messages(method.input_type), label="request")
        md = data.draw(metadata(tokens), label="metadata")
        for _why, matches in KNOWN_FINDINGS.get(name, ()):
            if matches(request):
                reject()
        try:
            code = fuzzed.call(name, method, request, md)
        except ValueError:
            return  # metadata the client library itself refuses to send; nothing reached the server
        assert code not in BUGS, f"{method.full_name} answered {code.name} to {request!r:.300}"

    one()
    # Still up, same processes, still SERVING.
    for proc in ("security", "workflow"):
        assert fuzzed.loop.run_until_complete(fuzzed.stack.pid(proc)) == fuzzed.pids[proc], (
            f"{proc} restarted"
        )
    for server, health_name in HEALTH_NAMES.items():
        status = fuzzed.loop.run_until_complete(health_status(fuzzed.stack.address(server), health_name, 5))
        assert status == hpb.HealthCheckResponse.SERVING, f"{server} not SERVING after fuzzing"


def test_fuzz_security_rpcs(fuzzed: Fuzzed) -> None:
    _fuzz(fuzzed, "security", [fuzzed.stack.token, fuzzed.stack.admin_token], 200)


def test_fuzz_workflow_rpcs(fuzzed: Fuzzed) -> None:
    _fuzz(fuzzed, "workflow", [fuzzed.stack.token, fuzzed.stack.admin_token], 200)


def test_fuzz_healthd_rpcs(fuzzed: Fuzzed) -> None:
    # No ADMIN token: mutating calls (Heal, SetMaintenance) are refused, so the stack stays put.
    _fuzz(fuzzed, "healthd", [fuzzed.stack.token], 150)


def test_finding_workflow_invalid_timestamp_is_invalid_argument(fuzzed: Fuzzed) -> None:
    method = SERVICES["workflow"].methods_by_name["ListRuns"]
    request = workflow_pb2.ListRunsRequest()
    request.created_before.nanos = -1
    code = fuzzed.call("workflow", method, request, (("authorization", f"Bearer {fuzzed.stack.token}"),))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_finding_security_invalid_timestamp_is_invalid_argument(fuzzed: Fuzzed) -> None:
    method = SERVICES["security"].methods_by_name["ListAuditEvents"]
    request = security_pb2.ListAuditEventsRequest()
    request.since.nanos = -1
    code = fuzzed.call(
        "security", method, request, (("authorization", f"Bearer {fuzzed.stack.admin_token}"),)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
