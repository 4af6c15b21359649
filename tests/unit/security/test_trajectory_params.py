"""Trajectory and params validators, designated-field selection; never-raises properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.security import Finding, ParamsValidator, TrajectorySpec, TrajectoryValidator, select_fields
from services.security._regexsafety import risky_pattern

TIMED = TrajectoryValidator(TrajectorySpec(time_required=True, min_value=-100, max_value=100, max_points=5))
PLAIN = TrajectoryValidator(TrajectorySpec(min_value=-100, max_value=100, max_points=5))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


@pytest.mark.parametrize(
    "value",
    [
        [1, 2, 3],
        [[0, 1.5], [1, 2.5]],
        [{"t": 0, "values": [1, 2]}, {"t": 0.5, "values": [3, 4]}],
        [{"t": 0, "x": 1}, {"t": 1, "x": 2}],
    ],
)
def test_valid_trajectories(value: object) -> None:
    validator = PLAIN if value and not isinstance(value[0], (dict, list)) else TIMED  # type: ignore[index]
    assert validator.validate("traj", value) == []


@pytest.mark.parametrize(
    ("validator", "value", "expected"),
    [
        (PLAIN, [1, math.nan], ["TRAJ_NOT_FINITE"]),
        (PLAIN, [1, math.inf, -math.inf], ["TRAJ_NOT_FINITE", "TRAJ_NOT_FINITE"]),
        (PLAIN, [1, 101], ["TRAJ_OUT_OF_BOUNDS"]),
        (PLAIN, [1, 2, 3, 4, 5, 6], ["TRAJ_TOO_MANY_POINTS"]),
        (PLAIN, [], ["TRAJ_EMPTY"]),
        (PLAIN, "1,2,3", ["TRAJ_NOT_SEQUENCE"]),
        (PLAIN, {"t": 1}, ["TRAJ_NOT_SEQUENCE"]),
        (PLAIN, [1, True], ["TRAJ_BAD_POINT"]),
        (PLAIN, [[1, True]], ["TRAJ_NOT_NUMBER"]),
        (PLAIN, [1, "2"], ["TRAJ_BAD_POINT"]),
        (PLAIN, [[1, 2], [1, 2, 3]], ["TRAJ_SHAPE"]),
        (PLAIN, [None], ["TRAJ_BAD_POINT"]),
        (PLAIN, [[]], ["TRAJ_BAD_POINT"]),
        (PLAIN, [10**400], ["TRAJ_OUT_OF_BOUNDS"]),
        (TIMED, [[0, 1], [0, 2]], ["TRAJ_TIME_NOT_MONOTONIC"]),
        (TIMED, [[1, 1], [0, 2]], ["TRAJ_TIME_NOT_MONOTONIC"]),
        (TIMED, [{"t": 0, "values": [1]}, {"values": [2]}], ["TRAJ_MISSING_TIME"]),
        (TIMED, [1, 2], ["TRAJ_MISSING_TIME", "TRAJ_MISSING_TIME"]),
        (TIMED, [{"t": 0, "values": [1, "x"]}], ["TRAJ_NOT_NUMBER"]),
    ],
)
def test_invalid_trajectories(validator: TrajectoryValidator, value: object, expected: list[str]) -> None:
    assert codes(validator.validate("traj", value)) == expected


def test_field_paths_name_the_point() -> None:
    found = TIMED.validate("params.path", [{"t": 0, "values": [1, 2]}, {"t": 1, "values": [1, math.nan]}])
    assert [(f.field, f.position) for f in found] == [("params.path[1].values[1]", 1)]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_trajectory_never_raises(value: object) -> None:
    for v in (TIMED, PLAIN):
        assert all(isinstance(f, Finding) for f in v.validate("t", value))


SCHEMA = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["n"],
    "additionalProperties": False,
}


def test_params_against_schema() -> None:
    v = ParamsValidator(SCHEMA)
    assert v.validate("params", {"n": 3, "tags": ["a"]}) == []
    found = v.validate("params", {"n": 11, "tags": ["a", 2], "extra": True, "email": "not-an-email"})
    assert {(f.code, f.field) for f in found} == {
        ("SCHEMA_MAXIMUM", "params.n"),
        ("SCHEMA_TYPE", "params.tags[1]"),
        ("SCHEMA_ADDITIONALPROPERTIES", "params"),
        ("SCHEMA_FORMAT", "params.email"),
    }
    assert codes(v.validate("params", {})) == ["SCHEMA_REQUIRED"]


def test_invalid_schema_is_refused_at_compile() -> None:
    with pytest.raises(ValueError, match="invalid JSON Schema"):
        ParamsValidator({"type": "no-such-type"})


def test_depth_and_size_bounds() -> None:
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    assert codes(ParamsValidator({}).validate("params", deep)) == ["PARAMS_TOO_DEEP"]
    assert codes(ParamsValidator({}).validate("params", list(range(200_000)))) == ["PARAMS_TOO_LARGE"]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_params_never_raise(value: object) -> None:
    assert all(isinstance(f, Finding) for f in ParamsValidator(SCHEMA).validate("params", value))


def test_select_fields() -> None:
    params = {"a": [{"p": "x"}, {"p": "y"}, {"q": 1}], "b": {"c": "z"}, "s": "top"}
    assert list(select_fields(params, "a[*].p")) == [("params.a[0].p", "x"), ("params.a[1].p", "y")]
    assert list(select_fields(params, "b.c")) == [("params.b.c", "z")]
    assert list(select_fields(params, "a[1].p")) == [("params.a[1].p", "y")]
    assert list(select_fields(params, "s")) == [("params.s", "top")]
    assert list(select_fields(params, "missing.x")) == []
    assert list(select_fields(params, "a[9]")) == []
    assert list(select_fields("not a dict", "a")) == []


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string", "pattern": "(a+)+$"}, "a" * 5000 + "!"),
        ({"type": "string", "pattern": "^.*.*.*.*.*.*.*="}, "x" * 5000),
        ({"type": "string", "pattern": "^\\d*\\d*\\d*\\d*\\d*x"}, "1" * 5000),
        ({"properties": {"x": {"pattern": "^(a|aa)*$"}}}, {"x": "a" * 5000 + "b"}),
        ({"patternProperties": {"^(\\w+\\s?)*$": False}}, {"a" * 5000 + "!": 1, "ok": 2}),
        (
            {"patternProperties": {"^(a+)+$": {}}, "additionalProperties": False},
            {"a" * 5000 + "!": 1},
        ),
    ],
)
def test_backtracking_patterns_answer_in_linear_time(schema: dict[str, object], value: object) -> None:
    """Patterns that make Python's re backtrack for ages run on RE2: the answer is simply computed."""
    findings = ParamsValidator(schema).validate("p", value)
    assert findings and all(f.code.startswith("SCHEMA_") for f in findings)
    assert "SCHEMA_UNCHECKABLE" not in codes(findings)


def test_pattern_properties_still_select_keys() -> None:
    v = ParamsValidator({"patternProperties": {"^n_": {"type": "integer"}}, "additionalProperties": False})
    assert v.validate("p", {"n_a": 1}) == []
    assert codes(v.validate("p", {"n_a": "x"})) == ["SCHEMA_TYPE"]
    assert codes(v.validate("p", {"other": 1})) == ["SCHEMA_ADDITIONALPROPERTIES"]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "(a)\\1"},
        {"properties": {"x": {"pattern": "(?=a)a"}}},
        {"patternProperties": {"(?<!x)y": {}}},
        {"pattern": "["},
        {"pattern": "a" * 1001},
        {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
    ],
)
def test_non_linear_patterns_are_refused(schema: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"refused JSON Schema|invalid JSON Schema"):
        ParamsValidator(schema)


def test_ordinary_patterns_work() -> None:
    v = ParamsValidator({"type": "string", "pattern": "^[A-Z]{2}-\\d{4}$"})
    assert v.validate("p", "AB-1234") == []
    assert codes(v.validate("p", "ab-1234")) == ["SCHEMA_PATTERN"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="()[]{}|*+?\\.^$a1,", max_size=30))
def test_pattern_check_never_raises(pattern: str) -> None:
    result = risky_pattern(pattern)
    assert result is None or isinstance(result, str)
