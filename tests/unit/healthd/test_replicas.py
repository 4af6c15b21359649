"""Replica units, their env and checks, name resolution, and the replica config rules."""

from __future__ import annotations

import pytest

from healthd._config import GrpcCheckConfig, ProcessConfig
from healthd._names import resolve, short_name, unit_key
from healthd._replicas import combine, replica_check, replica_env
from healthd._types import Status
from services.common import InvalidArgument, NotFound
from tests.healthd_util import config, proc_check

NAMES = ["vigil.workflow.v1.WorkflowService", "vigil.security.v1.SecurityService", "workflow-store"]


def test_short_names() -> None:
    assert short_name("vigil.workflow.v1.WorkflowService") == "workflow"
    assert short_name("workflow-store") == "workflow-store"
    assert unit_key("vigil.workflow.v1.WorkflowService", 2, 2) == "workflow-2"
    assert unit_key("vigil.workflow.v1.WorkflowService", 1, 1) == "workflow"


def test_resolve_full_short_and_unique_substring() -> None:
    assert resolve("vigil.security.v1.SecurityService", NAMES) == NAMES[1]
    assert resolve("workflow", NAMES) == NAMES[0]  # the short name wins over the substring
    assert resolve("store", NAMES) == "workflow-store"
    with pytest.raises(NotFound, match=r"did you mean 'vigil\.security\.v1\.SecurityService'"):
        resolve("securty", NAMES)
    with pytest.raises(InvalidArgument, match="several"):
        resolve("vigil", NAMES)
    with pytest.raises(InvalidArgument):
        resolve("", NAMES)


def test_replica_env_and_check() -> None:
    proc = ProcessConfig(argv=["x"], env_prefix="VIGIL_WORKFLOW_", health_port=7000, metrics_port=9000)
    env = replica_env(proc, 2, 2)
    assert env == {
        "VIGIL_WORKFLOW_SERVER__REPLICA": "2",
        "VIGIL_WORKFLOW_SERVER__REUSE_PORT": "true",
        "VIGIL_WORKFLOW_SERVER__HEALTH_PORT": "7001",
        "VIGIL_WORKFLOW_SERVER__METRICS_PORT": "9001",
    }
    assert "VIGIL_WORKFLOW_SERVER__REUSE_PORT" not in replica_env(proc, 1, 1)
    check = GrpcCheckConfig(kind="grpc", address="127.0.0.1:50051", service="s")
    assert replica_check(check, 7001).address == "127.0.0.1:7001"  # type: ignore[union-attr]
    assert replica_check(check, None) is check


def test_combine() -> None:
    assert combine([Status.NOT_SERVING, Status.SERVING]) is Status.SERVING
    assert combine([Status.NOT_SERVING, Status.UNKNOWN]) is Status.NOT_SERVING
    assert combine([Status.UNKNOWN, Status.UNKNOWN]) is Status.UNKNOWN


def _comp(**kw: object) -> dict[str, object]:
    return {"name": "svc", "checks": [proc_check()], "process": {"argv": ["x"]}, **kw}


def test_replicas_config_rules() -> None:
    assert config(components=[_comp()]).components[0].replicas == 1
    with pytest.raises(ValueError, match="health_port"):
        config(components=[_comp(replicas=2)])
    with pytest.raises(ValueError, match="env_prefix"):
        config(components=[_comp(replicas=2, process={"argv": ["x"], "health_port": 7000})])
    ok = _comp(replicas=2, process={"argv": ["x"], "health_port": 7000, "env_prefix": "VIGIL_X_"})
    assert config(components=[ok]).components[0].replicas == 2
    with pytest.raises(ValueError, match="needs a 'process'"):
        config(components=[{"name": "svc", "checks": [{"kind": "tcp", "address": "h:1"}], "replicas": 2}])
    with pytest.raises(ValueError, match="65535"):
        config(
            components=[_comp(replicas=2, process={"argv": ["x"], "health_port": 65535, "env_prefix": "V_"})]
        )


def test_components_whose_replicas_would_share_files_are_refused() -> None:
    # Two supervised units with one key share a pid record and a log file: after a healthd
    # restart one adopts the other's process, the other kills it, and its own process is orphaned.
    v1, v2 = "vigil.workflow.v1.WorkflowService", "vigil.workflow.v2.WorkflowService"
    with pytest.raises(ValueError, match=r"'workflow'"):
        config(components=[_comp(name=v1), _comp(name=v2)])
    replicated = _comp(name=v1, replicas=2, process={"argv": ["x"], "health_port": 7000, "env_prefix": "V_"})
    with pytest.raises(ValueError, match=r"'workflow-2'"):
        config(components=[replicated, _comp(name="workflow-2")])
    with pytest.raises(ValueError, match=r"'a_b'"):
        config(components=[_comp(name="a/b"), _comp(name="a_b")])
    # Unsupervised components own no files: their short names may repeat.
    config(components=[{"name": v1, "checks": [{"kind": "tcp", "address": "h:1"}]}, _comp(name=v2)])


def test_resolve_refuses_a_huge_name_before_searching() -> None:
    with pytest.raises(InvalidArgument, match="longer than 256"):
        resolve("vigil.security.v1.SecurityService" * 90_000, NAMES)
    with pytest.raises(NotFound):
        resolve("x" * 256, NAMES)
