"""Reading the deploy/ artifacts the way an operator's tools do, for the deploy tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from healthd._config import HealthdConfig
from services.common import load_config
from services.security._config import SecurityConfig
from services.workflow._config import WorkflowConfig
from tests.conftest import REPO

K8S = REPO / "deploy" / "k8s"
COMPOSE = REPO / "deploy" / "compose"

# Root config model and env prefix of each process, by its `python -m` module / script.
LOADERS: dict[str, tuple[type[BaseModel], str]] = {
    "services.workflow": (WorkflowConfig, "VIGIL_WORKFLOW_"),
    "services.security": (SecurityConfig, "VIGIL_SECURITY_"),
    "healthd": (HealthdConfig, "VIGIL_HEALTHD_"),
}


def manifest_files() -> list[Path]:
    """The files kustomization.yaml applies."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [K8S / name for name in kustomization["resources"]]


def documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object of the kustomization, with the file it is in."""
    return [(f, doc) for f in manifest_files() for doc in yaml.safe_load_all(f.read_text()) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    for _, doc in documents():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name} in deploy/k8s")


def process_of(command: list[str]) -> str:
    """``python -m X ...`` -> X; ``healthd ...`` -> healthd."""
    if command[:2] == ["python", "-m"]:
        return command[2]
    return command[0]


def config_arg(command: list[str]) -> str:
    return command[command.index("--config") + 1]


def load_process_config(process: str, text: str, tmp: Path, environ: dict[str, str] | None = None) -> Any:
    """Load ``text`` with the real loader of ``process`` (file + env, as at start-up)."""
    model, prefix = LOADERS[process]
    path = tmp / f"{process}.yaml"
    path.write_text(text)
    return load_config(model, path, env_prefix=prefix, environ=environ or {})
