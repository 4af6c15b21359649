"""`vigil status|watch|probe` take grpc_health_probe's single-dash flags after the global
``--config-dir`` too: argparse's REMAINDER would refuse a first argument starting with a dash."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main

# Nothing listens on port 9: reaching the command shows as its connection failure (exit 2),
# a usage error as argparse's SystemExit.
DEAD = ["-addr", "127.0.0.1:9", "-connect-timeout", "0.2s"]


@pytest.mark.parametrize("form", ["spaced", "equals"])
@pytest.mark.parametrize("command", ["status", "probe"])
def test_health_flags_after_the_global_config_dir(
    form: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config-dir", str(tmp_path)] if form == "spaced" else [f"--config-dir={tmp_path}"]
    assert main([*config, command, *DEAD]) == 2
    assert "failed to connect service '127.0.0.1:9'" in capsys.readouterr().err


def test_the_config_dir_reaches_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "healthd.yaml").write_text("server: {port: 9}\n")  # where status then dials
    assert main(["--config-dir", str(tmp_path), "status", "-json", "-connect-timeout", "0.2s"]) == 2
    assert "failed to connect service '127.0.0.1:9'" in capsys.readouterr().err
