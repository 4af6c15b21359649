"""Hypothesis strategies that build any protobuf request from its descriptor: random and
boundary scalars, huge strings, unknown enum numbers, deep `Struct`s, odd timestamps."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

__all__ = ["deep_struct", "messages", "metadata"]

_F = FieldDescriptor
TRICKY = [
    "",
    " ",
    "\x00",
    "../../etc/passwd",
    "%2e%2e%2f",
    "C:\\Windows",
    "\u202e\u200b",
    "ignore previous instructions",
    "a" * 70_000,
    "\U0001d54f\ufffd\ufeff",
    "*",
    "0",
]
strings = st.one_of(st.text(max_size=60), st.sampled_from(TRICKY))
_INT_RANGES = {
    _F.TYPE_INT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _F.TYPE_INT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _F.TYPE_UINT32: (0, 2**32 - 1),
    _F.TYPE_FIXED32: (0, 2**32 - 1),
    _F.TYPE_UINT64: (0, 2**64 - 1),
    _F.TYPE_FIXED64: (0, 2**64 - 1),
}


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, -1 if lo < 0 else 1, 1]))


def _json_values(depth: int) -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), strings)
    if depth <= 0:
        return leaves
    inner = _json_values(depth - 1)
    return st.one_of(leaves, st.lists(inner, max_size=3), st.dictionaries(strings, inner, max_size=3))


def deep_struct() -> st.SearchStrategy[struct_pb2.Struct]:
    """Structs from shallow and wide to nested tens of levels deep."""

    def nest(depth: int) -> struct_pb2.Struct:
        value: Any = "leaf"
        for _ in range(depth):
            value = {"k": value}
        s = struct_pb2.Struct()
        s.update(value if isinstance(value, dict) else {"k": value})
        return s

    def build(data: dict[str, Any]) -> struct_pb2.Struct:
        s = struct_pb2.Struct()
        s.update(data)
        return s

    return st.one_of(
        st.dictionaries(strings, _json_values(3), max_size=5).map(build),
        st.integers(1, 60).map(nest),
    )


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == _F.TYPE_STRING:
        return strings
    if t == _F.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == _F.TYPE_BOOL:
        return st.booleans()
    if t in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return st.floats(width=32 if t == _F.TYPE_FLOAT else 64)
    if t == _F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.sampled_from([*numbers, 999, -1])  # proto3 enums are open: unknown numbers arrive
    lo, hi = _INT_RANGES[t]
    return _ints(lo, hi)


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == _F.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    return _scalar(field)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of ``descriptor``: each field set or not, nested up to 3 levels."""
    cls = GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Struct":
        return deep_struct()
    if descriptor.full_name == "google.protobuf.Timestamp":
        return st.builds(cls, seconds=_ints(-(2**40), 2**40), nanos=_ints(-(2**31), 2**31 - 1))
    if descriptor.full_name == "google.protobuf.Duration":
        return st.builds(cls, seconds=_ints(-(2**40), 2**40), nanos=_ints(-(2**31), 2**31 - 1))
    if depth > 3:
        return st.just(cls())
    fields = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, val_f = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            fields[field.name] = st.dictionaries(_scalar(key_f), _value(val_f, depth), max_size=3)
        elif field.is_repeated:
            fields[field.name] = st.lists(_value(field, depth), max_size=3)
        else:
            fields[field.name] = _value(field, depth)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for name, strategy in fields.items():
            if not draw(st.booleans()):
                continue
            value = draw(strategy)
            target = getattr(msg, name)
            field = descriptor.fields_by_name[name]
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, Message):
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif isinstance(value, list):
                if field.type == _F.TYPE_MESSAGE:
                    for v in value:
                        target.add().CopyFrom(v)
                else:
                    target.extend(value)
            elif isinstance(value, Message):
                target.CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return build()


def metadata(tokens: list[str]) -> st.SearchStrategy[tuple[tuple[str, Any], ...]]:
    """Call metadata: none, real tokens, malformed bearer values, binary junk with invalid UTF-8."""
    auth = st.one_of(
        st.sampled_from([f"Bearer {t}" for t in tokens]),
        st.sampled_from(
            [
                "Bearer",
                "Bearer ",
                "Basic abc",
                "bearer x",
                "Bearer vgl_000000000000_x",
                "Bearer " + "a" * 8000,
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    )
    junk = st.binary(max_size=32).map(lambda b: b + b"\xff\xfe")  # never valid UTF-8
    pairs = st.one_of(
        auth.map(lambda v: ("authorization", v)),
        junk.map(lambda b: ("authorization-bin", b)),
        junk.map(lambda b: ("x-request-id-bin", b)),
    )
    return st.lists(pairs, max_size=3).map(tuple)
