"""The local stack exactly as ``make run`` starts it (deploy/local), every port moved by VIGIL_*.

A scratch directory holds a copy of deploy/local and the stack's .vigil/ (dev token, keys,
stores), and is the working directory of healthd and of every ``vigil`` call, as the
repository is for ``make run``. The CLI is the real one, run as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO, python_env

__all__ = ["CliResult", "VigilStack", "free_port", "vigil_argv"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port p with p and p + 1 free (the base of two replicas' private health ports)."""
    for _ in range(100):
        base = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two consecutive free ports")


def vigil_argv() -> list[str]:
    return [sys.executable, "-m", "services.cli"]


@dataclass
class CliResult:
    rc: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@dataclass
class VigilStack:
    root: Path
    env: dict[str, str]
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "healthd.log"

    @classmethod
    def create(cls, root: Path, **extra_env: str) -> VigilStack:
        shutil.copytree(REPO / "deploy" / "local", root / "deploy" / "local")
        ports = {name: free_port() for name in ("healthd", "workflow", "security", "http")}
        ports.update(workflow_health=free_port_pair(), security_health=free_port_pair())
        env = python_env(
            VIGIL_HEALTHD_SERVER__PORT=str(ports["healthd"]),
            VIGIL_WORKFLOW_SERVER__PORT=str(ports["workflow"]),
            VIGIL_SECURITY_SERVER__PORT=str(ports["security"]),
            VIGIL_HEALTHD_HTTP__PORT=str(ports["http"]),
            # The replicas' private health ports (deploy/local/healthd.yaml's interpolations).
            VIGIL_LOCAL_WORKFLOW_HEALTH_PORT=str(ports["workflow_health"]),
            VIGIL_LOCAL_SECURITY_HEALTH_PORT=str(ports["security_health"]),
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
            **extra_env,
        )
        return cls(root, env, ports)

    def start(self, wait_s: float = 180.0) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "healthd", "--config", "deploy/local/healthd.yaml"],
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + wait_s
        ran = False
        while True:  # ready once a run goes through end to end and every replica has been checked
            if not ran:
                got = self.vigil(
                    "runs", "start", "echo", "--params", '{"message": "ready?"}', "--wait", timeout=30
                )
                ran = got.rc == 0
            if ran:
                got = self.vigil("status")
                if got.rc == 0 and got.out.startswith("system: HEALTHY"):
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"stack did not come up: {got.err}\n--- healthd log ---\n{tail}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # healthd stops its children first
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
            self.proc.wait(10)

    def vigil(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
    ) -> CliResult:
        done = subprocess.run(
            [*vigil_argv(), *args],
            cwd=cwd or self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)
