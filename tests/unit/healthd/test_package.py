"""Package surface: lazy public names, and a probe that does not import the daemon."""

from __future__ import annotations

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
