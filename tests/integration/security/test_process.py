"""The security entry point as a real process: dev token, SIGHUP policy reload, SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml

from tests.conftest import REPO, eventually, python_env
from vigil.security.v1 import security_pb2 as pb
from vigil.security.v1 import security_pb2_grpc as pb_grpc

pytestmark = pytest.mark.e2e


async def test_dev_token_sighup_reload_and_sigterm(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: [{match: 'workflow.start:*', min_level: ADMIN}]\n")
    cfg = tmp_path / "security.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "server": {"port": 0, "grace_period_s": 1},
                "auth": {"keys_file": str(tmp_path / "keys.yaml")},
                "policy_file": str(policy),
                "policy_poll_s": 3600,  # only SIGHUP may reload in this test
                "audit": {"db_path": str(tmp_path / "audit.db")},
            }
        )
    )
    token_file = tmp_path / ".vigil" / "dev-token"
    args = ["dev-token", "--config", str(cfg), "--token-file", str(token_file)]
    made = subprocess.run(
        [sys.executable, "-m", "services.security", *args],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = token_file.read_text().strip()
    assert str(token_file) in made.stdout and token not in made.stdout

    proc = spawn("-m", "services.security", "--config", str(cfg))
    port = proc.wait_for_port()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.SecurityServiceStub(channel)
        who = await stub.Authenticate(pb.AuthenticateRequest(token=token), timeout=5)
        assert who.principal.level == pb.SECURITY_LEVEL_ADMIN
        req = pb.AuthorizeRequest(token=token, action="workflow.start", resource="x")
        assert (await stub.Authorize(req, timeout=5)).required_level == pb.SECURITY_LEVEL_ADMIN
        policy.write_text("rules: [{match: 'workflow.start:*', min_level: PRIVILEGED}]\n")
        proc.popen.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            resp = await stub.Authorize(req, timeout=5)
            return resp.required_level == pb.SECURITY_LEVEL_PRIVILEGED

        await eventually(reloaded, timeout=10)
        # A broken policy is refused (the old one stays) and the error is logged, redacted.
        policy.write_text("rules: [{match: 'workflow.start:*', min_level: 'bob@example.com'}]\n")
        proc.popen.send_signal(signal.SIGHUP)
        assert (await stub.Authorize(req, timeout=5)).required_level == pb.SECURITY_LEVEL_PRIVILEGED
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(15) == 0
    _, err = proc.popen.communicate(timeout=5)
    logs = "".join(proc.lines) + err
    assert token not in logs
    assert "policy reload failed" in logs and "[REDACTED:email]" in logs and "bob@example.com" not in logs
    # The audit chain head is logged at start (empty) and at shutdown (after the calls above).
    heads = [int(m) for m in re.findall(r"audit chain head seq=(\d+)", logs)]
    assert heads[0] == 0 and heads[-1] >= 3


def test_unusable_policy_exits_2_with_one_line(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "policy.yaml").write_text("rules: [{match: 'x:*', min_level: ROOT}]\n")
    cfg = tmp_path / "security.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "server": {"port": 0},
                "policy_file": str(tmp_path / "policy.yaml"),
                "audit": {"db_path": str(tmp_path / "audit.db")},
            }
        )
    )
    proc = spawn("-m", "services.security", "--config", str(cfg))
    _, err = proc.popen.communicate(timeout=30)
    assert proc.popen.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "policy_file" in lines[0] and "ROOT" in lines[0], err


def test_log_policy_keeps_addresses_and_redacts_secrets(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The security process applies exactly one log policy: the log rule keeps a line whose only
    finding is an address (a second, raw redactor used to hide it), and rewrites a secret."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: [{match: 'workflow.start:*', min_level: ADMIN}]\n")
    cfg = {"server": {"port": 0}, "policy_file": str(policy), "audit": {"db_path": str(tmp_path / "a.db")}}
    (tmp_path / "security.yaml").write_text(yaml.safe_dump({**cfg, "policy_poll_s": 3600}))
    proc = spawn("-m", "services.security", "--config", str(tmp_path / "security.yaml"))
    proc.wait_for_port()
    assert proc.popen.stderr is not None
    stderr = proc.popen.stderr

    def reload_failure(level: str) -> str:
        """The log line of a refused reload of a policy naming ``level`` (read as it is written)."""
        policy.write_text(f"rules: [{{match: 'workflow.start:*', min_level: '{level}'}}]\n")
        proc.popen.send_signal(signal.SIGHUP)
        while line := stderr.readline():
            proc.lines.append(line)
            if "policy reload failed" in line:
                return line
        raise AssertionError("process exited: " + "".join(proc.lines))

    address = reload_failure("10.20.30.40")
    assert "'10.20.30.40'" in address and "REDACTED" not in address, address
    secret = reload_failure("sk-" + "a1B2" * 8)
    assert "a1B2a1B2" not in secret and "[REDACTED:" in secret, secret
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(15) == 0
