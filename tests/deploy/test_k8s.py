"""deploy/k8s: schema-valid for Kubernetes 1.29+, probes wired to healthd, hardened pods, and
ConfigMaps whose configs load with each process's real config loader."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from healthd._config import HealthdConfig, Mode
from services.workflow._config import WorkflowConfig
from tests.conftest import REPO
from tests.deploy._load import (
    K8S,
    config_arg,
    documents,
    find,
    load_process_config,
    manifest_files,
    process_of,
)

HEALTHD_PORT = 50050
HEALTHD_SERVICE = "vigil.healthd.v1.HealthDaemon"
# Oldest supported (native sidecars are on by default from 1.29) and the newest schema known.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
SERVICES = {"workflow": "vigil.workflow.v1.WorkflowService", "security": "vigil.security.v1.SecurityService"}


def _pod_templates() -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], doc["spec"]["template"]["spec"])
        for _, doc in documents()
        if doc["kind"] in ("Deployment", "StatefulSet")
    ]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _volume_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Config text by path inside ``container``, for ConfigMap volumes it mounts."""
    files = {}
    for mount in container.get("volumeMounts", []):
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        if "configMap" in volume:
            data = find("ConfigMap", volume["configMap"]["name"])["data"]
            files.update({f"{mount['mountPath']}/{key}": text for key, text in data.items()})
    return files


def _mounted(container: dict[str, Any], path: Path | str) -> bool:
    return any(str(path).startswith(m["mountPath"] + "/") for m in container.get("volumeMounts", []))


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_strict(version: str) -> None:
    docs = documents()
    assert len(docs) >= 12
    for path, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(
                f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}"
            ) from None


def test_validation_catches_a_misspelt_field() -> None:
    """The validator really is strict (a test that cannot fail proves nothing)."""
    deployment = next(yaml.safe_load_all((K8S / "workflow.yaml").read_text()))
    deployment["spec"]["template"]["spec"]["initContainers"][0]["restartPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.29.0", strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = {p.name for p in manifest_files()}
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthd_is_a_native_sidecar_and_probes_ask_it(name: str) -> None:
    pod = find("Deployment", name)["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    assert sidecar["name"] == "healthd" and sidecar["restartPolicy"] == "Always"
    assert process_of(sidecar["command"]) == "healthd"
    assert HEALTHD_PORT in [p["containerPort"] for p in sidecar["ports"]]
    own = {"port": HEALTHD_PORT, "service": HEALTHD_SERVICE}  # tests/deploy/test_sidecar.py: SERVING
    assert sidecar["startupProbe"]["grpc"] == own == sidecar["livenessProbe"]["grpc"]
    (main,) = pod["containers"]
    assert main["livenessProbe"]["grpc"] == {"port": HEALTHD_PORT, "service": "liveness"}
    assert main["readinessProbe"]["grpc"] == {"port": HEALTHD_PORT, "service": "readiness"}
    assert main["startupProbe"]["grpc"]["port"] == HEALTHD_PORT
    # healthd heals by SIGTERM to the service's process: the pod must share one PID namespace.
    assert pod["shareProcessNamespace"] is True


def test_every_container_is_hardened() -> None:
    for name, pod in _pod_templates():
        pod_sc = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        for c in _containers(pod):
            sc = {**pod_sc, **c.get("securityContext", {})}
            where = f"{name}/{c['name']}"
            assert sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("capabilities", {}).get("add") is None, where
            assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert set(c["resources"]) == {"requests", "limits"}, where
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where


def test_pod_disruption_budgets_select_their_pods() -> None:
    for name in ("workflow", "security", "postgres"):
        pdb = find("PodDisruptionBudget", name)
        kind = "StatefulSet" if name == "postgres" else "Deployment"
        labels = find(kind, name)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_configmap_configs_load_with_the_real_loaders(name: str, tmp_path: Path) -> None:
    pod = find("Deployment", name)["spec"]["template"]["spec"]
    env = {"VIGIL_WORKFLOW_INSTANCE_ID": "workflow-5d8f7c9b4-x2x7q"}  # the pod name, as set by the env
    loaded: dict[str, Any] = {}
    for c in _containers(pod):
        process = process_of(c["command"])
        files = _volume_files(pod, c)
        cfg = load_process_config(process, files[config_arg(c["command"])], tmp_path, env)
        loaded[process] = (cfg, c)
    service_cfg, main = loaded[f"services.{name}"]
    healthd_cfg, sidecar = loaded["healthd"]
    assert isinstance(healthd_cfg, HealthdConfig)
    # The pod's ports are the ones the configs listen on.
    assert service_cfg.server.host == "0.0.0.0" == healthd_cfg.server.host
    assert main["ports"][0]["containerPort"] == service_cfg.server.port
    assert healthd_cfg.server.port == HEALTHD_PORT
    assert healthd_cfg.http.port in [p["containerPort"] for p in sidecar["ports"]]
    # Every file a config names is on a volume the container mounts.
    for path in _config_paths(service_cfg):
        assert _mounted(main, path), f"{name}: {path} is not mounted"
    for path in _config_paths(healthd_cfg):
        assert _mounted(sidecar, path), f"{name} sidecar: {path} is not mounted"
    # The grace period fits in the pod's termination grace period.
    assert service_cfg.server.grace_period_s < pod["terminationGracePeriodSeconds"]
    _check_sidecar_config(healthd_cfg, SERVICES[name], service_cfg.server.port)


def _config_paths(cfg: Any) -> list[Path]:
    """Absolute file paths in a config (password, key and token files), except package data
    such as the security service's default policy, which the image ships."""
    found: list[Path] = []

    def walk(value: Any) -> None:
        if isinstance(value, Path) and value.is_absolute():
            if not value.is_relative_to(REPO):
                found.append(value)
        elif isinstance(value, BaseModel):
            for field in type(value).model_fields:
                walk(getattr(value, field))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(cfg)
    return found


def _check_sidecar_config(cfg: HealthdConfig, service: str, port: int) -> None:
    assert cfg.mode is Mode.SIDECAR
    local = cfg.component(service)
    assert local.critical
    (check,) = local.checks
    assert (check.kind, check.address, check.service) == ("grpc", f"127.0.0.1:{port}", service)  # type: ignore[union-attr]
    # Heals, and a bounded number of them: then FATAL, which turns `liveness` NOT_SERVING.
    assert local.healing.action == "command" and local.healing.command is not None
    assert local.healing.command[:2] == ["python", "/etc/vigil/heal_sigterm.py"]
    assert local.healing.command[2] == f"services.{service.split('.')[1]}"
    assert local.healing.max_attempts <= 5


def test_workflow_replicas_share_postgres_with_own_lease_ids(tmp_path: Path) -> None:
    deployment = find("Deployment", "workflow")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    env = {e["name"]: e for e in main["env"]}
    assert env["VIGIL_WORKFLOW_INSTANCE_ID"]["value"] == "$(POD_NAME)"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    text = _volume_files(pod, main)[config_arg(main["command"])]
    cfg = load_process_config("services.workflow", text, tmp_path)
    assert isinstance(cfg, WorkflowConfig) and cfg.store_backend == "postgres"
    host_port = dict(part.split("=", 1) for part in cfg.postgres.dsn.split())
    service = find("Service", host_port["host"])
    assert int(host_port["port"]) in [p["port"] for p in service["spec"]["ports"]]
    assert "password" not in host_port  # from the Secret file, never in the ConfigMap


def test_telemetry_goes_to_the_collector_service() -> None:
    collector = find("Service", "otel-collector")
    ports = {p["port"] for p in collector["spec"]["ports"]}
    config = yaml.safe_load(find("ConfigMap", "otel-collector-config")["data"]["config.yaml"])
    receiver_port = int(config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1])
    for name in SERVICES:
        pod = find("Deployment", name)["spec"]["template"]["spec"]
        for c in _containers(pod):
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert env["OTEL_SERVICE_NAME"], c["name"]
            endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
            assert endpoint == f"http://otel-collector:{receiver_port}" and receiver_port in ports


def test_services_route_to_the_declared_ports() -> None:
    for name in SERVICES:
        service = find("Service", name)
        pod = find("Deployment", name)["spec"]["template"]["spec"]
        named = {p["name"]: p["containerPort"] for c in _containers(pod) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert (named[target] if isinstance(target, str) else target) in named.values()


def test_secrets_are_referenced_never_shipped() -> None:
    assert not [doc for _, doc in documents() if doc["kind"] == "Secret"]
    readme = (K8S / "README.md").read_text()
    for _, pod in _pod_templates():
        for volume in pod["volumes"]:
            if "secret" in volume:
                assert f"secret generic {volume['secret']['secretName']}" in readme


def _heal_script() -> Path:
    scripts = {find("ConfigMap", f"{n}-config")["data"]["heal_sigterm.py"] for n in SERVICES}
    assert len(scripts) == 1, "the two pods' heal scripts differ"
    return Path(scripts.pop())


def test_heal_script_sigterms_the_service_process(tmp_path: Path) -> None:
    (tmp_path / "fake_service.py").write_text("import time\ntime.sleep(60)\n")
    script = tmp_path / "heal_sigterm.py"
    script.write_text(str(_heal_script()))
    victim = subprocess.Popen([sys.executable, "-m", "fake_service"], cwd=tmp_path)
    try:
        # The victim's cmdline appears once the interpreter runs; the script finds it by argv.
        healed = subprocess.run(
            [sys.executable, str(script), "fake_service"], capture_output=True, text=True, timeout=30
        )
        assert healed.returncode == 0, healed.stdout
        assert victim.wait(10) == -signal.SIGTERM
    finally:
        victim.kill()
        victim.wait()
    missing = subprocess.run([sys.executable, str(script), "fake_service"], capture_output=True, timeout=30)
    assert missing.returncode == 1


def test_repo_root_is_where_deploy_lives() -> None:
    assert (REPO / "deploy" / "k8s" / "kustomization.yaml").is_file()


def _loaded(name: str, process: str, tmp_path: Path) -> Any:
    pod = find("Deployment", name)["spec"]["template"]["spec"]
    env = {"VIGIL_WORKFLOW_INSTANCE_ID": "workflow-5d8f7c9b4-x2x7q"}
    for c in _containers(pod):
        if process_of(c["command"]) == process:
            return load_process_config(
                process, _volume_files(pod, c)[config_arg(c["command"])], tmp_path, env
            )
    raise AssertionError(f"no {process} in {name}")


def test_security_audit_log_is_in_postgres_not_on_an_emptydir(tmp_path: Path) -> None:
    cfg = _loaded("security", "services.security", tmp_path)
    assert cfg.audit.backend == "postgres" and cfg.audit.anchor_path() is None
    assert cfg.audit.keys.key_file is not None and not cfg.audit.keys.generate_missing
    workflow = _loaded("workflow", "services.workflow", tmp_path)
    assert cfg.audit.postgres.dsn == workflow.postgres.dsn  # the one database of the deployment
    pod = find("Deployment", "security")["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "emptyDir" in v and v["name"] != "tmp"]
    for name in SERVICES:  # each sidecar records its admin actions in that same chain
        sidecar = _loaded(name, "healthd", tmp_path)
        assert sidecar.audit is not None and sidecar.audit.backend == "postgres", name
        assert sidecar.audit.postgres.dsn == cfg.audit.postgres.dsn
        assert sidecar.audit.keys.key_file == cfg.audit.keys.key_file


def test_every_grpc_hop_between_pods_is_mtls(tmp_path: Path) -> None:
    for name in SERVICES:
        cfg = _loaded(name, f"services.{name}", tmp_path)
        assert cfg.server.tls is not None and cfg.server.tls.client_ca_file is not None, name
        sidecar = _loaded(name, "healthd", tmp_path)
        (check,) = sidecar.component(SERVICES[name]).checks
        assert check.tls is not None and check.tls.cert_file is not None, name
    workflow = _loaded("workflow", "services.workflow", tmp_path)
    assert workflow.security_tls is not None and workflow.security_tls.cert_file is not None
    assert workflow.security_tls.server_name == workflow.security_address.split(":")[0]


def _policy_edges() -> set[tuple[str, str, int]]:
    """(from, to, port) every ingress rule allows; pods by app name, others by their label."""
    edges = set()
    for _, doc in documents():
        if doc["kind"] != "NetworkPolicy":
            continue
        to = doc["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name", "*")
        for rule in doc["spec"].get("ingress", []):
            for peer in rule["from"]:
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                source = labels.get("app.kubernetes.io/name") or ",".join(
                    f"{k}={v}" for k, v in labels.items()
                )
                edges |= {(source, to, p["port"]) for p in rule["ports"]}
    return edges


def test_network_policies_allow_only_the_needed_paths() -> None:
    default_deny = find("NetworkPolicy", "default-deny")["spec"]
    assert default_deny["podSelector"] == {} and set(default_deny["policyTypes"]) == {"Ingress", "Egress"}
    assert not default_deny.get("ingress") and not default_deny.get("egress")
    assert _policy_edges() == {
        ("vigil.dev/backend=true", "workflow", 50051),
        ("workflow", "security", 50052),
        ("workflow", "postgres", 5432),
        ("security", "postgres", 5432),
        ("workflow", "otel-collector", 4317),
        ("workflow", "otel-collector", 4318),
        ("security", "otel-collector", 4317),
        ("security", "otel-collector", 4318),
        ("prometheus", "workflow", 9051),
        ("prometheus", "workflow", 8050),
        ("prometheus", "security", 9052),
        ("prometheus", "security", 8050),
        ("prometheus", "otel-collector", 13133),
    }
