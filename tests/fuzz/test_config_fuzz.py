"""Fuzzing the config loaders: whatever a file or the environment holds, `load_config`
returns a valid model or raises `ConfigError` naming what is wrong, never anything else,
and never hangs on hostile input (alias bombs, deep nesting, device files, huge values)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import ConfigError, ConfigModel, load_config

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Every process's root config model: (module, class name, env prefix).
ROOT_MODELS = [
    ("services.workflow._config", "WorkflowConfig", "VIGIL_WORKFLOW_"),
    ("services.security", "SecurityConfig", "VIGIL_SECURITY_"),
    ("healthd", "HealthdConfig", "VIGIL_HEALTHD_"),
]


def _model(module: str, name: str) -> type[ConfigModel]:
    return getattr(importlib.import_module(module), name)


MODELS = [pytest.param(_model(m, n), p, id=n) for m, n, p in ROOT_MODELS]

# YAML-ish values: scalars of every type YAML produces, with edge values, nested a little.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "65536", "1e309", "../../etc/passwd", "/dev/zero", "\x00", "~", "null"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
KNOWN_KEYS = ["server", "host", "port", "grace_period_s", "max_message_bytes", "tls", "log_level"]
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12)
documents = st.dictionaries(keys, values | st.dictionaries(keys, values, max_size=5), max_size=5)


def load_or_config_error(model: type[ConfigModel], path: Path | str | None, **kw: object) -> None:
    try:
        load_config(model, path, **kw)  # type: ignore[arg-type]
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc), "a ConfigError is one line"


@pytest.mark.parametrize(("model", "prefix"), MODELS)
@FUZZ
@given(doc=documents)
def test_random_documents(tmp_path: Path, model: type[ConfigModel], prefix: str, doc: dict) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    load_or_config_error(model, path)


@pytest.mark.parametrize(("model", "prefix"), MODELS)
@FUZZ
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_garbage_bytes(tmp_path: Path, model: type[ConfigModel], prefix: str, data: bytes) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    load_or_config_error(model, path)


@pytest.mark.parametrize(("model", "prefix"), MODELS)
@FUZZ
@given(
    env=st.dictionaries(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=24),
        st.text(max_size=30).filter(lambda v: "\x00" not in v),
        max_size=5,
    )
)
def test_random_environment(model: type[ConfigModel], prefix: str, env: dict[str, str]) -> None:
    environ = {prefix + k: v for k, v in env.items()}
    load_or_config_error(model, None, env_prefix=prefix, environ=environ)


HOSTILE_FILES = {
    "deep_flow": "server: " + "[" * 5000 + "]" * 5000,
    "deep_block": "".join(" " * i + "a:\n" for i in range(900)),
    # Nine levels of ten aliases each: a billion strings once expanded.
    "alias_bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "server: {host: *i}\nbogus: *i\n",
    "huge_int": "server: {port: " + "9" * 5000 + "}",
    "huge_string": "server: {host: '" + "h" * 500_000 + "'}",
    "too_large": "# " + "x" * (2 << 20),
    "env_style_deep": "server: {host: " + "{a: " * 3000 + "1" + "}" * 3000 + "}",
    "tabs": "server:\n\tport: 1",
    "bom": "\ufeffserver: {port: 1}",
    "nul": "server: {host: 'a\x00b'}",
    "binary_tag": "server: !!binary aGVsbG8=",
    "python_tag": "server: !!python/object/apply:os.system ['true']",
    "merge_key": "base: &b {port: 1}\nserver: {<<: *b, host: x}",
    "list_top": "- 1\n- 2",
    "scalar_top": "42",
    "multi_doc": "server: {}\n---\nserver: {}",
}


@pytest.mark.parametrize(("model", "prefix"), MODELS)
@pytest.mark.parametrize("content", HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
@pytest.mark.timeout(20)
def test_hostile_files(tmp_path: Path, model: type[ConfigModel], prefix: str, content: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content)
    load_or_config_error(model, path)


TRAVERSAL_PATHS = [
    "../../../../../../etc/shadow-not-here",
    "/dev/zero",
    "/dev/urandom",
    "/proc/self/mem",
    "/",
    ".",
    "",
    "does/not/exist.yaml",
    "a\x00b.yaml",
    "..%2f..%2fetc%2fpasswd",
    "\\\\server\\share\\c.yaml",
    "x" * 5000,
]


@pytest.mark.parametrize(("model", "prefix"), MODELS)
@pytest.mark.parametrize("path", TRAVERSAL_PATHS)
@pytest.mark.timeout(20)
def test_odd_paths(model: type[ConfigModel], prefix: str, path: str) -> None:
    load_or_config_error(model, path)


@pytest.mark.timeout(20)
def test_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError):
        load_config(_model(*ROOT_MODELS[0][:2]), fifo)
