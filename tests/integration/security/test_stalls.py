"""No input stalls the server: the review's worst inputs against a real server, while another
caller's health checks and small validations keep answering (issue 13, point 1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.security import _service
from tests.integration.security.conftest import Stack
from tests.integration.security.test_rpcs import fails, screen_req, struct, violations
from vigil.security.v1 import security_pb2 as pb

WORST_PROMPT = "ignore all" + " " * 19000 + "x"  # 15 s of CPU on the loop before the fix
HEAVY = (("1-2-3-4-5 " * 50 + "a@b " + "::::::" * 100 + "bearer " + "1.2.3." * 100) * 700)[: 1 << 20]
PROBE_BOUND_S = 3.0  # generous: a stalled loop took 15-35 s per call, regex searches
# holding the interpreter lock for 0.1 s each 2-4 s (now about 0.3 s)
STRUCT_PROBE_BOUND_S = 1.0  # a Struct converted on the loop stalled it 0.9-1.8 s (now about 0.1 s)


def prompt_req(text: str) -> pb.ValidateInputRequest:
    return pb.ValidateInputRequest(prompt=pb.PromptInput(text=text))


async def probe_while(
    task: asyncio.Future[Any], probe: Callable[[], Awaitable[Any]], most: int
) -> list[float]:
    """Latencies of ``probe`` calls, one after another, while ``task`` runs (at most ``most``)."""
    await asyncio.sleep(0.05)
    latencies = []
    while not task.done() and len(latencies) < most:
        started = time.monotonic()
        await probe()
        latencies.append(time.monotonic() - started)
    assert latencies, "the calls finished before any probe ran"
    print(f"probes: {len(latencies)}, max {max(latencies):.3f} s")
    return latencies


async def test_worst_prompt_answers_quickly(stack: Stack) -> None:
    started = time.monotonic()
    resp = await stack.stub.ValidateInput(prompt_req(WORST_PROMPT), metadata=stack.auth("user"), timeout=10)
    assert not [f for f in resp.findings if f.code.endswith("INJECTION")]
    assert time.monotonic() - started < 10


async def test_oversized_inputs_are_refused_naming_the_limit(stack: Stack) -> None:
    err = await fails(
        stack.stub.Sanitize(
            pb.SanitizeRequest(text="1.2.3." * 600_000), metadata=stack.auth("user"), timeout=10
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violations(err) == [("text", "TEXT_TOO_LONG")]
    assert "validation.sanitize_max_chars" in str(err.debug_error_string()) or "1048576" in (
        err.details() or ""
    )
    err = await fails(
        stack.stub.ValidateInput(prompt_req("ignore " * 30000), metadata=stack.auth("user"), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violations(err) == [("prompt.text", "PROMPT_TOO_LONG")]
    err = await fails(
        stack.stub.ValidateInput(prompt_req("\u200b" * 60000), metadata=stack.auth("user"), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violations(err) == [("prompt.text", "PROMPT_TOO_LONG")]


async def test_screen_bounds_the_prompts_a_caller_designates(stack: Stack) -> None:
    """Caller-chosen prompt fields cannot multiply the work: overlapping specs select a value once,
    and all prompt fields together are bounded."""
    big = "ignore all" + " " * 19000 + "x"
    req = screen_req(
        stack.tokens["user"],
        params=struct({"items": [big] * 40}),
        params_schema=struct({"type": "object"}),
        prompt_fields=["items[*]", "items[*]", "items[0]"],
        path_fields=[],
    )
    started = time.monotonic()
    err = await fails(stack.stub.Screen(req, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    assert ("prompt_fields", "PROMPTS_TOO_LONG") in violations(err)
    assert time.monotonic() - started < 10
    one = screen_req(
        stack.tokens["user"],
        params=struct({"p": big}),
        params_schema=struct({"type": "object"}),
        prompt_fields=["p"],
        path_fields=[],
    )
    resp = await stack.stub.Screen(one, timeout=10)
    assert resp.decision == pb.DECISION_ALLOW


async def test_other_callers_answer_while_one_sends_the_worst_inputs(stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    attacker = stack.auth("ops")

    async def attack() -> None:
        calls = []
        for _ in range(3):
            calls.append(stack.stub.Sanitize(pb.SanitizeRequest(text=HEAVY), metadata=attacker, timeout=60))
            calls.append(stack.stub.ValidateInput(prompt_req(WORST_PROMPT), metadata=attacker, timeout=60))
            calls.append(
                stack.stub.Sanitize(pb.SanitizeRequest(text="eyJ-" * 200_000), metadata=attacker, timeout=60)
            )
        await asyncio.gather(*calls)

    async def probe() -> None:
        ok = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert ok.status == health_pb2.HealthCheckResponse.SERVING
        resp = await stack.stub.ValidateInput(
            prompt_req("summarise this"), metadata=stack.auth("user"), timeout=10
        )
        assert not resp.findings

    task = asyncio.ensure_future(attack())
    latencies = await probe_while(task, probe, 30)
    await task  # every worst input was answered too
    assert max(latencies) < PROBE_BOUND_S, latencies


async def test_large_params_are_redacted_off_the_loop(stack: Stack) -> None:
    """Screen's redaction of a large allowed params value must not stall other callers."""
    health = health_pb2_grpc.HealthStub(stack.channel)
    big = ("call +1 415 555 0100 or 1.2.3.4 " * 30_000)[:900_000]
    req = screen_req(
        stack.tokens["ops"],
        params=struct({"notes": big, "more": big, "again": big}),
        params_schema=struct({"type": "object"}),
        prompt_fields=[],
        path_fields=[],
    )

    async def screens() -> list[pb.ScreenResponse]:
        return await asyncio.gather(*(stack.stub.Screen(req, timeout=60) for _ in range(3)))

    calls = asyncio.ensure_future(screens())
    latencies = await probe_while(
        calls, lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=10), 20
    )
    for resp in await calls:
        assert resp.redactions["phone"] > 0
    assert max(latencies) < PROBE_BOUND_S, latencies


async def test_large_structs_are_converted_off_the_loop(stack: Stack) -> None:
    """A Struct of many small entries (3 MB) takes about a second to convert each way: the
    conversions of Sanitize, Screen and ValidateInput run where large checks run, not on the loop."""
    health = health_pb2_grpc.HealthStub(stack.channel)
    many = struct({f"k{i}": [i, "v", {"x": 1.5}] for i in range(60_000)})
    params = struct({f"k{i}": [i, "v", {"x": 1.5}] for i in range(16_000)})  # under 100,000 values
    screen = screen_req(
        stack.tokens["ops"],
        params=params,
        params_schema=struct({"type": "object"}),
        prompt_fields=[],
        path_fields=[],
    )
    ops = stack.auth("ops")
    validate = pb.ValidateInputRequest(
        params=pb.ParamsInput(schema=struct({"type": "object"}), params=params)
    )

    async def calls() -> list[Any]:
        return await asyncio.gather(
            stack.stub.Sanitize(pb.SanitizeRequest(text="x", data=many), metadata=ops, timeout=60),
            stack.stub.Sanitize(pb.SanitizeRequest(text="x", data=many), metadata=ops, timeout=60),
            stack.stub.Screen(screen, timeout=60),
            stack.stub.ValidateInput(validate, metadata=ops, timeout=60),
        )

    task = asyncio.ensure_future(calls())
    latencies = await probe_while(task, lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=10), 40)
    sanitized, _, screened, validated = await task
    assert len(sanitized.data.fields) == 60_000 and len(screened.sanitized_params.fields) == 16_000
    assert not validated.findings
    assert max(latencies) < STRUCT_PROBE_BOUND_S, latencies


async def test_refused_callers_get_no_struct_converted(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Converting a large Struct costs about a second of the check pool: it happens only once
    the caller is authenticated (and, for Screen, allowed), so a stranger sending 4 MiB
    messages spends nothing of what large inputs of real callers wait for."""
    converted: list[str] = []

    def spy(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            converted.append(fn.__name__)
            return fn(*args)

        return wrapped

    for name in ("struct_to_py", "_params_input"):
        monkeypatch.setattr(_service, name, spy(getattr(_service, name)))
    params = struct({"prompt": "hello", "n": 1})
    schema = struct({"type": "object"})
    validate = pb.ValidateInputRequest(params=pb.ParamsInput(schema=schema, params=params))
    stranger = (("authorization", "Bearer vgl_not-a-key"),)
    refused = grpc.StatusCode.UNAUTHENTICATED
    await fails(stack.stub.Sanitize(pb.SanitizeRequest(data=params), metadata=stranger), refused)
    await fails(stack.stub.ValidateInput(validate, metadata=stranger), refused)
    await fails(stack.stub.Screen(screen_req("vgl_not-a-key", params=params)), refused)
    denied = screen_req(stack.tokens["user"], workflow="admin-reset", params=params)
    await fails(stack.stub.Screen(denied), grpc.StatusCode.PERMISSION_DENIED)
    assert converted == []
    await stack.stub.Sanitize(pb.SanitizeRequest(data=params), metadata=stack.auth("user"))
    await stack.stub.ValidateInput(validate, metadata=stack.auth("user"))
    await stack.stub.Screen(screen_req(stack.tokens["user"], params=params))
    assert {"struct_to_py", "_params_input"} <= set(converted)  # the spies see real conversions
