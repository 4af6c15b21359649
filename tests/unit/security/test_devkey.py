"""Dev token and key-creation commands: token shown once, only hashes stored, 0600 files."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.common import ConfigError
from services.security import (
    AuthConfig,
    Authenticator,
    KeyEntry,
    Level,
    Rate,
    SecurityConfig,
    ensure_dev_token,
    load_keys_file,
)
from services.security._core import SecurityCore
from services.security._devkey import DEV_SUBJECT, cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "security.yaml"
    cfg.write_text(yaml.safe_dump({"auth": {"keys_file": str(tmp_path / ".vigil" / "keys.yaml")}}))
    return cfg


def test_dev_token_created_once_with_hash_only(config: Path, tmp_path: Path) -> None:
    token_file = tmp_path / ".vigil" / "dev-token"
    path, created = ensure_dev_token(config, token_file)
    assert created and path == token_file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    keys_file = tmp_path / ".vigil" / "keys.yaml"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token not in keys_file.read_text() and token.split("_", 2)[2] not in keys_file.read_text()
    principal = Authenticator(AuthConfig(keys_file=keys_file)).authenticate(token)
    assert (principal.subject, principal.level) == (DEV_SUBJECT, Level.ADMIN)
    _, created_again = ensure_dev_token(config, token_file)
    assert not created_again and token_file.read_text().strip() == token


def test_lost_token_replaces_the_old_dev_key(config: Path, tmp_path: Path) -> None:
    token_file = tmp_path / ".vigil" / "dev-token"
    keys_file = tmp_path / ".vigil" / "keys.yaml"
    ensure_dev_token(config, token_file)
    old = token_file.read_text().strip()
    token_file.unlink()
    ensure_dev_token(config, token_file)
    entries = load_keys_file(keys_file)
    assert len(entries) == 1
    auth = Authenticator(AuthConfig(keys_file=keys_file))
    auth.authenticate(token_file.read_text().strip())
    with pytest.raises(Exception, match="invalid API key"):
        auth.authenticate(old)


def test_dev_token_needs_a_keys_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}")
    with pytest.raises(ConfigError, match=r"auth\.keys_file"):
        ensure_dev_token(cfg, tmp_path / "t")
    assert cli(["dev-token", "--config", str(cfg), "--token-file", str(tmp_path / "t")]) == 2


def test_keys_create_prints_token_once_and_a_loadable_entry(tmp_path: Path) -> None:
    args = ["keys", "create", "--subject", "ci", "--level", "PRIVILEGED", "--role", "deploy"]
    run = subprocess.run(
        [sys.executable, "-m", "services.security", *args], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    token = out.splitlines()[0].split(": ", 1)[1]
    assert out.count(token) == 1
    entry_yaml = out.split("\n", 2)[2]
    keys_file = tmp_path / "k.yaml"
    keys_file.write_text(entry_yaml)
    p = Authenticator(AuthConfig(keys_file=keys_file)).authenticate(token)
    assert (p.subject, p.level, p.roles) == ("ci", Level.PRIVILEGED, frozenset({"deploy"}))


def test_dev_token_cli_prints_location_not_token(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "tok"
    assert cli(["dev-token", "--config", str(config), "--token-file", str(token_file)]) == 0
    printed = capsys.readouterr().out
    assert str(token_file) in printed and token_file.read_text().strip() not in printed


def test_server_start_creates_the_dev_token_when_configured(tmp_path: Path) -> None:
    token_file = tmp_path / ".vigil" / "dev-token"
    cfg = SecurityConfig.model_validate(
        {
            "auth": {"keys_file": str(tmp_path / ".vigil" / "keys.yaml")},
            "dev_token_file": str(token_file),
            "audit": {"db_path": str(tmp_path / "audit.db")},
        }
    )
    core = SecurityCore.from_config(cfg)
    token = token_file.read_text().strip()
    assert core.gate.auth.authenticate(token).level is Level.ADMIN
    core.close()
    again = SecurityCore.from_config(cfg)  # a restart keeps the existing token
    assert token_file.read_text().strip() == token
    assert again.gate.auth.authenticate(token).subject == DEV_SUBJECT
    again.close()


def test_keys_create_with_a_rate_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["keys", "create", "--subject", "backend", "--role", "service", "--rate-limit", "300"]) == 0
    (entry,) = yaml.safe_load(capsys.readouterr().out.split("keys file):\n", 1)[1])
    assert entry["rate_limit"] == {"rate_per_s": 300.0, "burst": 600}
    assert KeyEntry.model_validate(entry).rate_limit == Rate(300.0, 600.0)
    assert cli(["keys", "create", "--subject", "b", "--rate-limit", "unlimited"]) == 0
    assert "rate_limit: unlimited" in capsys.readouterr().out
    assert cli(["keys", "create", "--subject", "b", "--rate-limit", "fast"]) == 2
    assert "--rate-limit" in capsys.readouterr().err
