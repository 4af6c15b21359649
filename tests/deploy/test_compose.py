"""deploy/compose and the container image: parsed and cross-checked offline (no Docker here).

Commands must exist (modules with a `main`, console scripts of pyproject), configs must load
with the real loaders, addresses must name a compose service on the port its config serves,
and the healthchecks must be commands `healthd probe` accepts.
"""

from __future__ import annotations

import importlib
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from services.security._devcerts import ensure_dev_certs
from tests.conftest import REPO, python_env
from tests.deploy._load import COMPOSE, K8S, config_arg, find, load_process_config, process_of

CONTAINERFILE = REPO / "deploy" / "Containerfile"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text())


def _vigil_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _compose()["services"].items() if s["image"].startswith("vigil:")}


def _mounted_file(service: dict[str, Any], inside: str) -> Path | None:
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if target == inside and source.startswith("./"):
            return COMPOSE / source
    return None


def _configs(tmp_path: Path) -> dict[str, Any]:
    """Loaded config of each Vigil service that runs a server, by compose service name."""
    loaded = {}
    for name, service in _vigil_services().items():
        command = service["command"]
        if "--config" not in command or command[command.index("--config") - 1] == "dev-token":
            continue
        file = _mounted_file(service, config_arg(command))
        assert file is not None and file.is_file(), f"{name}: config {config_arg(command)} is not mounted"
        loaded[name] = load_process_config(process_of(command), file.read_text(), tmp_path)
    return loaded


def test_every_command_exists() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name, service in _vigil_services().items():
        command = service["command"]
        if command[:2] == ["python", "-m"]:
            module = importlib.import_module(command[2] + ".__main__")
            assert callable(module.main), name
        else:
            assert command[0] in scripts, f"{name}: {command[0]} is not a console script"


def test_services_are_hardened() -> None:
    for name, service in _compose()["services"].items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("user", "0").split(":")[0] not in ("0", "root"), name


def test_configs_load_and_ports_match(tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    assert set(configs) == {"security", "workflow", "healthd"}
    services = _compose()["services"]
    for name, cfg in configs.items():
        assert cfg.server.host == "0.0.0.0", name
        published = {int(p.rsplit(":", 1)[1]) for p in services[name].get("ports", [])}
        assert cfg.server.port in published, name
    listens = {name: cfg.server.port for name, cfg in configs.items()} | {"postgres": 5432}
    workflow, healthd = configs["workflow"], configs["healthd"]
    # Every address a config dials is a compose service and the port it listens on.
    addresses = [workflow.security_address, workflow.healthd_address]
    addresses += [c.address for comp in healthd.components for c in comp.checks]
    dsn = dict(part.split("=", 1) for part in workflow.postgres.dsn.split())
    addresses.append(f"{dsn['host']}:{dsn['port']}")
    for address in addresses:
        host, port = address.rsplit(":", 1)
        assert listens.get(host) == int(port), f"{address}: no compose service listens there"
    assert workflow.store_backend == "postgres"
    secret = services["workflow"]["secrets"][0]
    assert str(workflow.postgres.password_file) == f"/run/secrets/{secret}"


def test_dev_key_job_writes_where_security_reads(tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    keys = _vigil_services()["keys"]
    token_file = keys["command"][keys["command"].index("--token-file") + 1]
    assert str(configs["workflow"].service_token_file) == token_file
    assert configs["security"].auth.keys_file == configs["healthd"].auth.keys_file
    assert str(configs["security"].auth.keys_file).startswith(str(Path(token_file).parent))
    depends = _compose()["services"]["security"]["depends_on"]
    assert depends["keys"]["condition"] == "service_completed_successfully"


def _certs_job() -> tuple[str, list[str]]:
    """The `certs` job's output directory and the service names it issues certificates for."""
    command = _vigil_services()["certs"]["command"]
    names = [command[i + 1] for i, arg in enumerate(command) if arg == "--name"]
    return command[command.index("--dir") + 1], names


def _tls_paths(value: Any) -> list[str]:
    """Every TLS file a loaded config names (server TLS, client TLS of every dial)."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found += _tls_paths(getattr(value, name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found += _tls_paths(item)
    elif isinstance(value, Path) and value.suffix == ".pem":
        found.append(str(value))
    return found


def test_every_grpc_hop_is_mtls_with_the_certs_jobs_files(tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    certs_dir, names = _certs_job()
    issued = {f"{certs_dir}/ca.pem"} | {f"{certs_dir}/{n}{s}.pem" for n in names for s in ("", "-key")}
    services = _compose()["services"]
    for name, cfg in configs.items():
        assert cfg.server.tls is not None and cfg.server.tls.client_ca_file is not None, f"{name}: not mTLS"
        paths = _tls_paths(cfg)
        assert paths and set(paths) <= issued, f"{name}: {set(paths) - issued} not issued by the certs job"
        assert f"{certs_dir}/{name}.pem" in paths, name
        assert f"certs:{certs_dir}:ro" in services[name]["volumes"], name
        assert services[name]["depends_on"]["certs"]["condition"] == "service_completed_successfully"
    workflow, healthd = configs["workflow"], configs["healthd"]
    assert workflow.security_tls is not None and workflow.security_tls.cert_file is not None
    assert workflow.healthd_tls is not None and workflow.healthd_tls.cert_file is not None
    assert all(c.tls is not None and c.tls.cert_file for comp in healthd.components for c in comp.checks
               if c.kind == "grpc")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthchecks() -> list[list[str]]:
    checks = [s["healthcheck"]["test"][1:] for s in _vigil_services().values() if "test" in s["healthcheck"]]
    match = re.search(r"HEALTHCHECK .*?CMD (\[[^\]]*\])", CONTAINERFILE.read_text(), re.S)
    assert match is not None
    checks.append(yaml.safe_load(match.group(1).replace("\\\n", "")))
    return checks


@pytest.mark.parametrize("argv", _healthchecks(), ids=lambda a: a[a.index("-service") + 1])
def test_healthchecks_are_valid_probe_commands(argv: list[str], tmp_path: Path) -> None:
    """Each one runs `healthd probe` with flags it accepts: nothing listens on the port, so the
    answer is 2 (connection failure), not 1 (bad arguments). TLS files are the `certs` job's."""
    assert argv[:2] == ["healthd", "probe"]
    args = list(argv[2:])
    args[args.index("-addr") + 1] = f"127.0.0.1:{_free_port()}"
    certs_dir, names = _certs_job()
    ensure_dev_certs(tmp_path, names)
    args = [
        str(tmp_path / Path(a).relative_to(certs_dir)) if a.startswith(f"{certs_dir}/") else a for a in args
    ]
    done = subprocess.run(
        [sys.executable, "-m", "healthd", "probe", *args, "-connect-timeout", "200ms"],
        capture_output=True,
        text=True,
        env=python_env(),
        cwd=REPO,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr


def test_collector_config_is_the_same_in_compose_and_k8s() -> None:
    k8s = yaml.safe_load(find("ConfigMap", "otel-collector-config")["data"]["config.yaml"])
    assert yaml.safe_load((COMPOSE / "config" / "otel-collector.yaml").read_text()) == k8s
    assert (K8S / "otel-collector.yaml").is_file()


def test_image_is_multi_stage_non_root_and_downloads_nothing_but_pypi() -> None:
    text = CONTAINERFILE.read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert len(stages) >= 2
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert not re.search(r"\b(curl|wget|ADD\s+https?://|apt-get)\b", text)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"COPY {path}: missing"
    # The image holds every package the console scripts need.
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]
    for pkg in packages["wheel"]["packages"]:
        top = pkg.split("/")[0]
        assert re.search(rf"^COPY {top} ", text, re.M), f"{top} is not copied into the build stage"
    exposed = {int(p) for p in re.findall(r"\d+", re.search(r"^EXPOSE (.+)$", text, re.M).group(1))}  # type: ignore[union-attr]
    assert {50050, 50051, 50052, 8050} <= exposed
