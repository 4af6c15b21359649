"""Replicas that share one workflow config own their run leases under distinct names."""

from __future__ import annotations

from services.common import ServerConfig
from services.workflow._config import WorkflowConfig


def test_a_lone_process_owns_its_runs_as_its_instance_id() -> None:
    assert WorkflowConfig(instance_id="east").lease_owner == "east"


def replica(i: int) -> WorkflowConfig:
    return WorkflowConfig(instance_id="east", server=ServerConfig(port=50051, replica=i))


def test_each_supervised_replica_has_its_own_stable_lease_owner() -> None:
    assert {replica(i).lease_owner for i in (1, 2)} == {"east-r1", "east-r2"}
    assert replica(2).lease_owner == "east-r2"  # a restarted replica resumes its own runs at once
