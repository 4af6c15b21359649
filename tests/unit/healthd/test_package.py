"""Package surface: lazy public names, and a probe that does not import the daemon."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import healthd


def test_public_names_resolve() -> None:
    for name in healthd.__all__:
        assert getattr(healthd, name) is not None
    with pytest.raises(AttributeError):
        _ = healthd.NoSuchThing  # type: ignore[attr-defined]


def test_client_commands_do_not_import_the_daemon() -> None:
    # `healthd probe` runs as a Kubernetes exec probe: it must start fast.
    check = (
        "import sys, healthd.__main__\n"
        "print(sorted(m for m in sys.modules if m.startswith(('healthd.', 'services.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True
    )
    assert "healthd._cli" in out.stdout
    assert "healthd._daemon" not in out.stdout and "services.security" not in out.stdout


def test_daemon_without_postgres_or_tracing_does_not_import_them() -> None:
    # Resident memory (bench healthd.memory): psycopg with libpq is ~8 MB, the OpenTelemetry
    # SDK and its exporters more; a healthd with neither configured must not load them.
    build = (
        "import sys\n"
        "from healthd._config import HealthdConfig\n"
        "from healthd._daemon import Daemon\n"
        "Daemon(HealthdConfig.model_validate({'server': {'port': 0}, 'http': {'port': 0}, 'mode': 'sidecar',"
        " 'components': [{'name': 'a', 'checks': [{'kind': 'tcp', 'address': '127.0.0.1:1'}]}]}))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('psycopg', 'opentelemetry.sdk',"
        " 'opentelemetry.exporter'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "VIGIL_"))}
    out = subprocess.run(
        [sys.executable, "-c", build], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert out.stdout.strip() == "[]", out.stdout
