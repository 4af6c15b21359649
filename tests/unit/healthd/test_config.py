"""Config validation: clear errors naming the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthd import HealthdConfig, Level
from healthd._config import dependency_order
from services.common import ConfigError, load_config
from tests.healthd_util import config, exec_check


def _comp(name: str, **kw: object) -> dict[str, object]:
    return {"name": name, "checks": [exec_check()], **kw}


def test_defaults_follow_design_ports() -> None:
    cfg = HealthdConfig()
    assert cfg.server.port == 50050
    assert cfg.http.port == 8050
    assert cfg.mode == "supervisor"


def test_loads_yaml_with_every_check_kind(tmp_path: Path) -> None:
    path = tmp_path / "healthd.yaml"
    path.write_text(
        """
mode: sidecar
components:
  - name: vigil.workflow.v1.WorkflowService
    depends_on: [store]
    checks:
      - {kind: grpc, address: "127.0.0.1:50051", service: vigil.workflow.v1.WorkflowService}
      - {kind: tcp, address: "127.0.0.1:50051", interval_s: 2, failure_threshold: 2}
      - {kind: http, url: "http://127.0.0.1:9000/metrics", expect_body: "up"}
      - {kind: exec, argv: ["true"]}
    healing: {action: command, command: [systemctl, restart, wf]}
  - name: store
    critical: false
    degrades_to: READ_ONLY
    checks:
      - {kind: store, path: /tmp/x.db, initial_delay_s: 1, jitter_s: 0.5}
"""
    )
    cfg = load_config(HealthdConfig, path)
    assert [c.name for c in cfg.components] == ["vigil.workflow.v1.WorkflowService", "store"]
    assert [c.kind for c in cfg.components[0].checks] == ["grpc", "tcp", "http", "exec"]
    assert cfg.component("store").level_when_down is Level.READ_ONLY
    assert cfg.components[0].level_when_down is Level.RESTRICTED
    assert dependency_order(cfg) == ["store", "vigil.workflow.v1.WorkflowService"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"components": [_comp("a"), _comp("a")]}, "unique"),
        ({"components": [_comp("a", depends_on=["b"])]}, "unknown component 'b'"),
        ({"components": [_comp("a", depends_on=["b"]), _comp("b", depends_on=["a"])]}, "dependency cycle"),
        ({"components": [_comp("liveness")]}, "reserved"),
        ({"components": [_comp("a", healing={"action": "restart"})]}, "needs a 'process'"),
        ({"components": [_comp("a", healing={"action": "command"})]}, "needs 'command'"),
        ({"components": [{"name": "a", "checks": [{"kind": "process"}]}]}, "'process' check needs"),
        (
            {"mode": "sidecar", "components": [_comp("a", process={"argv": ["x"]})]},
            "sidecar mode supervises no process",
        ),
        ({"components": [_comp("a", checks=[exec_check(interval_s=1, jitter_s=2)])]}, "jitter_s"),
    ],
)
def test_cross_field_errors_are_clear(data: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        config(**data)


def test_bad_value_names_file_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "components:\n  - name: a\n    checks:\n      - {kind: tcp, address: x:1, timeout_s: -1}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(HealthdConfig, path)
    text = str(info.value)
    assert str(path) in text and "timeout_s" in text and "-1" in text


def test_unknown_check_kind_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("components:\n  - name: a\n    checks:\n      - {kind: ping}\n")
    with pytest.raises(ConfigError, match="kind"):
        load_config(HealthdConfig, path)


def test_env_overrides_port() -> None:
    cfg = load_config(
        HealthdConfig, None, env_prefix="VIGIL_HEALTHD_", environ={"VIGIL_HEALTHD_SERVER__PORT": "6000"}
    )
    assert cfg.server.port == 6000
