"""The built wheel installs on its own: generated `vigil` modules import without the source tree
on sys.path, and the console scripts run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, python_env

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
def test_wheel_imports_and_console_scripts(tmp_path: Path) -> None:
    env = python_env()
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(REPO)],
        check=True,
        env=env,
    )
    wheel = next((tmp_path / "dist").glob("vigil-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, env=env)
    probe = (
        "import vigil.workflow.v1.workflow_pb2_grpc, vigil.security.v1.security_pb2, "
        "vigil.healthd.v1.healthd_pb2, services.common, healthd; "
        "print(vigil.workflow.v1.workflow_pb2.__file__)"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in out.stdout and str(REPO) not in out.stdout
    for script in ("vigil-workflow", "vigil-security", "healthd"):
        result = subprocess.run(
            [str(venv / "bin" / script), "--help"], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0 and "--config" in result.stdout, result.stderr
