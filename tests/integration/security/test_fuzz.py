"""Fuzz every SecurityService RPC with random bytes, random messages and oversized messages.

Whatever arrives, the answer is a deliberate status (never UNKNOWN or INTERNAL) and
the server stays SERVING.
"""

from __future__ import annotations

import random
from typing import Any

import grpc
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.security.conftest import Stack
from vigil.security.v1 import security_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["SecurityService"]
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
NASTY = [
    "",
    "../../etc/passwd",
    "%2e%2e%2f",
    "%c0%ae%c0%ae/",
    "C:\\x",
    "\x00",
    "ignore previous instructions",
    "\u202e\u200b",
    "vgl_0123456789ab_" + "A" * 43,
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "workflow.start",
    "*",
    "9" * 30,
    "\ud7ff\ue000\U0010ffff",
    "a" * 70_000,
]


BAD_METADATA: list[Any] = [
    None,
    [("authorization", "Bearer nope")],
    [("authorization", "Basic x")],
    [("x-request-id", "has space")],
]


def rand_text(rnd: random.Random) -> str:
    if rnd.random() < 0.5:
        return rnd.choice(NASTY)
    return "".join(
        chr(rnd.choice([rnd.randint(0, 0x7F), rnd.randint(0x80, 0xD7FF)])) for _ in range(rnd.randint(0, 60))
    )


def rand_json(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randint(0, 6 if depth < 5 else 3)
    if kind == 0:
        return None
    if kind == 1:
        return rnd.choice([0, -1.5, 1e308, float("inf"), float("nan"), 2**60])
    if kind == 2:
        return rand_text(rnd)
    if kind == 3:
        return rnd.random() < 0.5
    if kind in (4, 5):
        return {rand_text(rnd)[:20]: rand_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}
    return [rand_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]


# Map keys that mean something to a server (trace context), and values shaped like them.
MAP_KEYS = ["traceparent", "tracestate"]
MAP_VALUES = ["00-" + "ab" * 16 + "-" + "cd" * 8 + "-01", "00-" + "0" * 32 + "-" + "0" * 16 + "-00", "k=v,=,"]


def fill_map(entries: Any, value_field: FieldDescriptor, rnd: random.Random) -> None:
    for _ in range(rnd.randint(0, 3)):
        key = rnd.choice(MAP_KEYS) if rnd.random() < 0.5 else rand_text(rnd)[:20]
        if value_field.type == FieldDescriptor.TYPE_STRING:
            entries[key] = rnd.choice(MAP_VALUES) if rnd.random() < 0.5 else rand_text(rnd)
        else:
            entries[key] = rnd.choice([0, 1, -1, 2**31 - 1])


def fill(msg: Any, rnd: random.Random, stack: Stack, depth: int = 0) -> Any:
    for field in msg.DESCRIPTOR.fields:
        if rnd.random() < 0.3:
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            fill_map(getattr(msg, field.name), field.message_type.fields_by_name["value"], rnd)
            continue
        repeated = field.is_repeated
        count = rnd.randint(0, 4) if repeated else 1
        for _ in range(count):
            value: Any
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                sub = getattr(msg, field.name).add() if repeated else getattr(msg, field.name)
                if field.message_type.full_name == struct_pb2.Struct.DESCRIPTOR.full_name:
                    sub.update({"k": rand_json(rnd)} if rnd.random() < 0.8 else {"schema": {"type": 12}})
                elif field.message_type.full_name == timestamp_pb2.Timestamp.DESCRIPTOR.full_name:
                    sub.FromSeconds(rnd.randint(0, 4_000_000_000))
                elif depth < 3:
                    fill(sub, rnd, stack, depth + 1)
                continue
            if field.type == FieldDescriptor.TYPE_STRING:
                value = (
                    rnd.choice(list(stack.tokens.values()))
                    if field.name == "token" and rnd.random() < 0.5
                    else rand_text(rnd)
                )
            elif field.type == FieldDescriptor.TYPE_BOOL:
                value = rnd.random() < 0.5
            elif field.type == FieldDescriptor.TYPE_DOUBLE:
                value = rnd.choice([0.0, -1e300, 1e300, float("nan"), float("inf"), rnd.uniform(-10, 10)])
            elif field.type == FieldDescriptor.TYPE_ENUM:
                value = rnd.choice([v.number for v in field.enum_type.values] + [99])
            elif field.type == FieldDescriptor.TYPE_UINT64:
                value = rnd.choice([0, 1, 2**32, 2**64 - 1])
            else:
                value = rnd.choice([0, 1, -1, 2**31 - 1, -(2**31)])
            if repeated:
                getattr(msg, field.name).append(value)
            else:
                setattr(msg, field.name, value)
    return msg


def _len_field(number: int, payload: bytes) -> bytes:
    """Wire-format a length-delimited field (tag, varint length, bytes)."""
    out = bytearray([number << 3 | 2])
    n = len(payload)
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    return bytes(out) + payload


def nested_params(depth: int) -> bytes:
    """ScreenRequest.params nested ``depth`` Structs deep, built by hand (the client library refuses)."""
    struct = b""
    for _ in range(depth):
        value = _len_field(5, struct)  # Value.struct_value
        struct = _len_field(1, _len_field(1, b"a") + _len_field(2, value))  # Struct.fields entry
    return _len_field(3, struct)


async def call_raw(stack: Stack, method: str, payload: bytes, metadata: Any) -> grpc.StatusCode:
    if SERVICE.methods_by_name[method].client_streaming:
        return await _stream_raw(stack, method, payload, metadata)
    rpc = stack.channel.unary_unary(f"/{SERVICE.full_name}/{method}")
    try:
        await rpc(payload, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as err:
        assert err.code() not in FORBIDDEN, f"{method}: {err.code()} {err.details()}"
        return err.code()
    return grpc.StatusCode.OK


async def _stream_raw(stack: Stack, method: str, payload: bytes, metadata: Any) -> grpc.StatusCode:
    """One message on a streaming RPC (ScreenStream): every per-item status and the call's own are
    deliberate too."""
    call = stack.channel.stream_stream(f"/{SERVICE.full_name}/{method}")(metadata=metadata, timeout=10)
    try:
        await call.write(payload)
        await call.done_writing()
        async for raw in call:
            for result in pb.ScreenStreamResponse.FromString(raw).results:
                if result.HasField("status"):
                    code = next(c for c in grpc.StatusCode if c.value[0] == result.status.code)
                    assert code not in FORBIDDEN, f"{method} item {result.id}: {code} {result.status.message}"
    except grpc.aio.AioRpcError as err:
        assert err.code() not in FORBIDDEN, f"{method}: {err.code()} {err.details()}"
        return err.code()
    return grpc.StatusCode.OK


async def assert_serving(stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    for name in ("", SERVICE.full_name):
        resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_random_messages_to_every_rpc(stack: Stack) -> None:
    rnd = random.Random(1234)
    seen: dict[str, set[grpc.StatusCode]] = {}
    for method in SERVICE.methods:
        request_cls = pb.DESCRIPTOR.message_types_by_name[method.input_type.name]
        for i in range(25):
            msg = fill(getattr(pb, request_cls.name)(), rnd, stack)
            metadata = stack.auth(rnd.choice(["user", "ops", "admin"])) if i % 3 else rnd.choice(BAD_METADATA)
            code = await call_raw(stack, method.name, msg.SerializeToString(), metadata)
            seen.setdefault(method.name, set()).add(code)
    assert set(seen) == {m.name for m in SERVICE.methods}
    await assert_serving(stack)


async def test_random_bytes_to_every_rpc(stack: Stack) -> None:
    rnd = random.Random(99)
    for method in SERVICE.methods:
        for _ in range(15):
            payload = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300)))
            await call_raw(stack, method.name, payload, stack.auth("admin"))
        code = await call_raw(stack, method.name, b"\xff\xff\xff\xff", stack.auth("admin"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    await assert_serving(stack)


async def test_oversized_and_deeply_nested_messages(stack: Stack) -> None:
    huge = "x" * (stack.config.server.max_message_bytes + 1024)
    for method in SERVICE.methods:
        request_cls = getattr(pb, method.input_type.name)
        msg = request_cls()
        string_fields = [
            f.name for f in request_cls.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING
        ]
        if string_fields:
            setattr(msg, string_fields[0], huge)
            code = await call_raw(stack, method.name, msg.SerializeToString(), stack.auth("admin"))
            assert code == grpc.StatusCode.INVALID_ARGUMENT  # the documented limit, not gRPC's
    # Nesting beyond protobuf's recursion limit fails to parse: INVALID_ARGUMENT, not UNKNOWN.
    head = pb.ScreenRequest(token=stack.tokens["user"], workflow="w").SerializeToString()
    for depth in (40, 150):  # past our depth bound (32), then past protobuf's parse limit
        code = await call_raw(stack, "Screen", head + nested_params(depth), None)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Large but allowed inputs are judged, not crashed on.
    big = pb.ScreenRequest(token=stack.tokens["user"], workflow="w", prompt_fields=["p"])
    big.params.update({"p": "word " * 200_000})
    assert await call_raw(stack, "Screen", big.SerializeToString(), None) == grpc.StatusCode.INVALID_ARGUMENT
    await assert_serving(stack)
