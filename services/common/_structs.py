"""google.protobuf.Struct -> plain Python, for the per-request hot paths.

`json_format.MessageToDict` walks a Struct through its generic JSON printer and
`Struct.items()` wraps every value in a Python accessor; reading each Value's oneof
directly gives the same result (numbers stay floats, null is None) several times faster.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import ListValue, Struct, Value

__all__ = ["list_to_py", "set_value", "struct_to_dict", "value_to_py"]


def value_to_py(v: Value) -> Any:
    """One Value as its Python form (None, float, str, bool, dict or list)."""
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        return v.number_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return struct_to_dict(v.struct_value)
    if kind == "list_value":
        return list_to_py(v.list_value)
    return None  # null_value, or no kind set


def list_to_py(lv: ListValue) -> list[Any]:
    return [value_to_py(v) for v in lv.values]


def struct_to_dict(s: Struct) -> dict[str, Any]:
    """A Struct as a dict, equal to what ``json_format.MessageToDict(s)`` returns for finite numbers."""
    return {k: value_to_py(v) for k, v in s.fields.items()}


def set_value(target: Value, v: Any) -> None:
    """Store the JSON-like ``v`` in ``target`` (what ``json_format.ParseDict(v, Value())`` builds).

    Raises:
        TypeError: ``v`` holds something JSON cannot (bytes, objects, non-string keys).
    """
    if v is None:
        target.null_value = 0  # type: ignore[assignment]
    elif isinstance(v, bool):  # before int: bool is an int
        target.bool_value = v
    elif isinstance(v, int | float):
        target.number_value = v
    elif isinstance(v, str):
        target.string_value = v
    elif isinstance(v, dict):
        target.struct_value.Clear()  # marks the oneof even when v is empty
        target.struct_value.update(v)
    elif isinstance(v, list | tuple):
        target.list_value.Clear()
        target.list_value.extend(v)
    else:
        raise TypeError(f"not a JSON value: {type(v).__name__}")
