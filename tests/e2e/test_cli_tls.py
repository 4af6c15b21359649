"""`vigil runs`, `vigil workflows` and `vigil ctl` over TLS/mTLS, as real processes: a workflow
service and a healthd serving mTLS, the CLI dialling them with --tls-ca/--tls-cert/--tls-key or
the same settings from VIGIL_CLI_TLS__* / cli.yaml; without a client certificate, or in
plaintext, a clean one-line error (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.security import Level, new_key
from tests.conftest import REPO, Proc, python_env
from tests.unit.security._support import CertFiles, make_ca_and_cert

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _vigil(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd, env=env or python_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    root = tmp_path_factory.mktemp("pki")
    server = make_ca_and_cert(root / "server", name="localhost")
    client = make_ca_and_cert(root / "client", name="operator", ca=server.ca_pair)  # type: ignore[attr-defined]
    return {"server": server, "client": client}


@pytest.fixture(scope="module")
def servers(pki: dict[str, CertFiles], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A workflow service and a healthd, each serving mTLS on a free port."""
    tmp = tmp_path_factory.mktemp("tls-stack")
    admin, entry = new_key("ops", Level.ADMIN, n=2**10)
    server = pki["server"]
    tls = {"cert_file": str(server.cert), "key_file": str(server.key), "client_ca_file": str(server.ca)}
    auth = {"api_keys": [entry.model_dump(mode="json")]}
    workflow_cfg = tmp / "workflow.yaml"
    workflow_cfg.write_text(yaml.safe_dump({
        "server": {"port": 0, "tls": tls},
        "store_path": str(tmp / "runs.db"),
        "security_address": "127.0.0.1:9",  # down: reads verify callers from `auth` alone
        "healthd_address": None,
        "auth": auth,
        "idempotency_secret": "s" * 32,
    }))  # fmt: skip
    healthd_cfg = tmp / "healthd.yaml"
    healthd_cfg.write_text(yaml.safe_dump({
        "server": {"port": 0, "tls": tls},
        "http": {"port": 0},
        "auth": auth,
        "components": [{"name": "clock", "checks": [{"kind": "exec", "argv": ["true"], "interval_s": 0.5}]}],
    }))  # fmt: skip
    procs = [
        Proc(["-m", "services.workflow", "--config", str(workflow_cfg)], python_env()),
        Proc(["-m", "healthd", "--config", str(healthd_cfg)], python_env()),
    ]
    try:
        ports = [p.wait_for_port() for p in procs]
        yield {
            "workflow": f"127.0.0.1:{ports[0]}",
            "healthd": f"127.0.0.1:{ports[1]}",
            "admin": admin,
            "tmp": tmp,
        }
    finally:
        for p in procs:
            p.stop()


def _flags(pki: dict[str, CertFiles]) -> list[str]:
    client = pki["client"]
    return ["--tls-ca", str(pki["server"].ca), "--tls-cert", str(client.cert), "--tls-key", str(client.key)]


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_runs_and_workflows_over_mtls_with_flags(servers: dict[str, Any], pki: dict[str, CertFiles]) -> None:
    base = ["--address", servers["workflow"], "--token", servers["admin"], "--json"]
    done = _vigil("runs", "list", *base, *_flags(pki))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout).get("runs", []) == []
    done = _vigil("workflows", *base, *_flags(pki))
    assert done.returncode == 0, done.stderr
    assert "echo" in done.stdout
    # The flags work before the subcommand too.
    assert _vigil("runs", *_flags(pki), "list", *base).returncode == 0


def test_ctl_over_mtls_with_flags(servers: dict[str, Any], pki: dict[str, CertFiles]) -> None:
    done = _vigil("ctl", "status", "--address", servers["healthd"], "--token", servers["admin"], *_flags(pki))
    assert done.returncode == 0, done.stderr
    assert "clock" in done.stdout


def _settings_argv(command: str, servers: dict[str, Any]) -> list[str]:
    if command == "status":  # the health command: grpc_health_probe-style flags, no token
        return ["status", "-addr", servers["healthd"], "-json", "-connect-timeout", "5s"]
    words, target = (["runs", "list"], "workflow") if command == "runs" else (["ctl", "status"], "healthd")
    return [*words, "--address", servers[target], "--token", servers["admin"]]


# `vigil status` used to read only its own -tls flags: with the CLI's TLS settings in
# VIGIL_CLI_TLS__* or cli.yaml (which `vigil ctl` follows) it dialled plaintext and timed out.
@pytest.mark.parametrize("command", ["runs", "ctl", "status"])
def test_the_same_settings_come_from_env_and_cli_yaml(
    servers: dict[str, Any], pki: dict[str, CertFiles], command: str, tmp_path: Path
) -> None:
    client = pki["client"]
    argv = _settings_argv(command, servers)
    env = python_env(
        VIGIL_CLI_TLS__CA_FILE=str(pki["server"].ca),
        VIGIL_CLI_TLS__CERT_FILE=str(client.cert),
        VIGIL_CLI_TLS__KEY_FILE=str(client.key),
    )
    done = _vigil(*argv, env=env)
    assert done.returncode == 0, done.stderr
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    files = {"ca_file": str(pki["server"].ca), "cert_file": str(client.cert), "key_file": str(client.key)}
    (config_dir / "cli.yaml").write_text(yaml.safe_dump({"tls": files}))
    done = _vigil("--config-dir", str(config_dir), *argv)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("target", ["workflow", "healthd"])
def test_without_a_client_certificate_or_in_plaintext_a_clean_error(
    servers: dict[str, Any], pki: dict[str, CertFiles], target: str, tmp_path: Path
) -> None:
    command = ["runs", "list"] if target == "workflow" else ["ctl", "status"]
    base = [*command, "--address", servers[target], "--token", servers["admin"], "--timeout", "3"]
    assert "UNAVAILABLE" in _one_line_error(_vigil(*base))  # plaintext to a TLS port
    assert "UNAVAILABLE" in _one_line_error(_vigil(*base, "--tls-ca", str(pki["server"].ca)))  # no cert
    line = _one_line_error(
        _vigil(*base, "--tls-ca", str(pki["server"].ca), "--tls-cert", str(pki["client"].cert))
    )
    assert "--tls-key" in line
    assert "cannot read" in _one_line_error(_vigil(*base, "--tls-ca", str(tmp_path / "missing.pem")))


def test_probe_speaks_tls_only_when_its_own_flags_ask(
    servers: dict[str, Any], pki: dict[str, CertFiles], tmp_path: Path
) -> None:
    # grpc_health_probe's rule, whatever the CLI's settings say.
    client = pki["client"]
    (tmp_path / "cli.yaml").write_text(yaml.safe_dump({"tls": {"ca_file": str(pki["server"].ca)}}))
    probe = ["probe", "-addr", servers["healthd"], "-connect-timeout", "2s"]
    assert _vigil("--config-dir", str(tmp_path), *probe).returncode == 2  # plaintext: no connection
    flags = ["-tls", "-tls-ca-cert", str(pki["server"].ca), "-tls-client-cert", str(client.cert)]
    done = _vigil(*probe, *flags, "-tls-client-key", str(client.key))
    assert done.returncode == 0, done.stderr
