"""load_config: YAML + env, errors that name source, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, ValidationError

from services.common import ConfigError, ConfigModel, ServerConfig, load_config


class Store(ConfigModel):
    path: str = "runs.db"
    """Database file."""


class Sample(ConfigModel):
    server: ServerConfig = ServerConfig(port=50051)
    """Server."""
    store: Store = Store()
    """Store."""
    workers: int = Field(default=4, ge=1, le=64)
    """Workers."""
    names: list[str] = []
    """Names."""


def write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "svc.yaml"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_defaults_without_file() -> None:
    cfg = load_config(Sample)
    assert cfg.server.port == 50051 and cfg.workers == 4


def test_file_values_and_frozen(tmp_path: Path) -> None:
    cfg = load_config(Sample, write(tmp_path, "server: {port: 6000}\nworkers: 8\nnames: [a, b]\n"))
    assert (cfg.server.port, cfg.workers, cfg.names) == (6000, 8, ["a", "b"])
    with pytest.raises(ValidationError):
        cfg.workers = 3  # type: ignore[misc]


def test_env_overrides_nested_and_typed(tmp_path: Path) -> None:
    env = {
        "VIGIL_T_SERVER__PORT": "7001",
        "VIGIL_T_STORE__PATH": "/tmp/x.db",
        "VIGIL_T_NAMES": "[x]",
        "OTHER": "1",
    }
    cfg = load_config(Sample, write(tmp_path, "server: {port: 6000}\n"), env_prefix="VIGIL_T_", environ=env)
    assert (cfg.server.port, cfg.store.path, cfg.names) == (7001, "/tmp/x.db", ["x"])


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ("server: {port: 70000}\n", "server.port", "70000"),
        ("server: {port: -1}\n", "server.port", "-1"),
        ("workers: many\n", "workers", "many"),
        ("sevrer: {port: 1}\n", "sevrer", "unknown setting"),
        ("server: {prot: 1}\n", "server.prot", "unknown setting"),
        ("names: 3\n", "names", "3"),
        ("server: {log_level: LOUD}\n", "server.log_level", "LOUD"),
    ],
)
def test_bad_values_name_file_field_and_value(tmp_path: Path, text: str, field: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(Sample, path)
    message = str(info.value)
    assert str(path) in message and field in message and needle in message
    assert "\n" not in message


def test_env_error_blames_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Sample, write(tmp_path, ""), env_prefix="VIGIL_T_", environ={"VIGIL_T_WORKERS": "0"})
    assert str(info.value).startswith("VIGIL_T_WORKERS: workers:")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"server: [unclosed\n", "line"),
        (b"- a\n- b\n", "mapping"),
        (b"just a string", "mapping"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(Sample, write(tmp_path, content))


def test_missing_file_directory_and_huge_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(Sample, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="directory"):
        load_config(Sample, tmp_path)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(Sample, write(tmp_path, "a: " + "x" * (2 << 20)))


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    assert load_config(Sample, write(tmp_path, "")).workers == 4


def test_interpolation_from_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path, "server: {port: '${PORT:-6100}'}\nstore: {path: '${DIR}/runs.db'}\nnames: ['a-${X:-x}']\n"
    )
    cfg = load_config(Sample, path, environ={"DIR": "/data"})
    assert (cfg.server.port, cfg.store.path, cfg.names) == (6100, "/data/runs.db", ["a-x"])
    assert load_config(Sample, path, environ={"DIR": "/d", "PORT": "7100"}).server.port == 7100


def test_interpolation_of_unset_variable_names_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"store\.path: environment variable DIR is not set"):
        load_config(Sample, write(tmp_path, "store: {path: '${DIR}/x'}\n"), environ={})


def test_interpolation_cannot_inject_structure(tmp_path: Path) -> None:
    path = write(tmp_path, "store: {path: '${P}'}\n")
    cfg = load_config(Sample, path, environ={"P": "x\nworkers: 64"})
    assert cfg.workers == 4 and cfg.store.path == "x\nworkers: 64"


@pytest.mark.parametrize("seconds", [-(10**12), 10**12, 253402300800])
def test_out_of_range_timestamp_is_invalid_argument(seconds: int) -> None:
    from google.protobuf import timestamp_pb2

    from services.common import InvalidArgument, optional_timestamp
    from vigil.workflow.v1 import workflow_pb2

    req = workflow_pb2.StartRunRequest(not_before=timestamp_pb2.Timestamp(seconds=seconds))
    with pytest.raises(InvalidArgument) as info:
        optional_timestamp(req, "not_before")
    assert info.value.violations[0].field == "not_before"


def test_timestamp_reader_unset_and_valid() -> None:
    from google.protobuf import timestamp_pb2

    from services.common import optional_timestamp
    from vigil.workflow.v1 import workflow_pb2

    assert optional_timestamp(workflow_pb2.StartRunRequest(), "not_before") is None
    req = workflow_pb2.StartRunRequest(not_before=timestamp_pb2.Timestamp(seconds=86400))
    assert optional_timestamp(req, "not_before").year == 1970
