"""Secrets in configuration: from a file or the environment, never in a repr, a dump or an error."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from services.common import ConfigError, ensure_secret_file, load_config, read_secret_file
from services.security._jwt import JWTConfig, JWTVerifier
from services.workflow._config import WorkflowConfig
from services.workflow._pg_config import read_password

PW = "pg-Pa55word-value"


def _shown(cfg: object) -> str:
    dump = cfg.model_dump(mode="json")  # type: ignore[attr-defined]
    return f"{cfg!r} {cfg} {json.dumps(dump)} {cfg.model_dump_json()}"  # type: ignore[attr-defined]


def test_secrets_from_the_environment_never_show_in_a_dump() -> None:
    env = {"VIGIL_WORKFLOW_POSTGRES__PASSWORD": PW, "VIGIL_WORKFLOW_IDEMPOTENCY_SECRET": "idem-" + "k" * 20}
    cfg = load_config(WorkflowConfig, env_prefix="VIGIL_WORKFLOW_", environ=env)
    assert read_password(cfg.postgres) == PW
    shown = _shown(cfg)
    assert PW not in shown and "kkkkkkkk" not in shown and "**********" in shown


def test_the_file_wins_and_its_newline_is_not_part_of_it(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    cfg = WorkflowConfig.model_validate({"postgres": {"password": PW, "password_file": str(tmp_path / "pw")}})
    assert read_password(cfg.postgres) == "from-file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_secret_file(tmp_path / "empty", "postgres.password_file")


def test_a_bad_secret_setting_is_named_without_its_value(tmp_path: Path) -> None:
    env = {"VIGIL_WORKFLOW_POSTGRES__DSN": f"host=db user=app password={PW}"}
    with pytest.raises(ConfigError) as info:
        load_config(WorkflowConfig, env_prefix="VIGIL_WORKFLOW_", environ=env)
    message = str(info.value)
    assert "VIGIL_WORKFLOW_POSTGRES__DSN" in message and "postgres.dsn" in message
    assert "must not contain a password" in message and PW not in message
    url = {"VIGIL_WORKFLOW_POSTGRES__DSN": f"postgresql://app:{PW}@db/app"}
    with pytest.raises(ConfigError, match="must not contain a password") as info:
        load_config(WorkflowConfig, env_prefix="VIGIL_WORKFLOW_", environ=url)
    assert PW not in str(info.value)


def test_a_generated_secret_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "key"
    first = ensure_secret_file(path, "x_file")
    assert len(first) == 64 and ensure_secret_file(path, "x_file") == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_jwt_hmac_secret_from_the_environment() -> None:
    env = {"VIGIL_JWT_ALGORITHMS": "[HS256]", "VIGIL_JWT_HMAC_SECRET": "s" * 40}
    cfg = load_config(JWTConfig, env_prefix="VIGIL_JWT_", environ=env)
    JWTVerifier(cfg)  # accepted: the secret is long enough
    assert "s" * 40 not in _shown(cfg)
    with pytest.raises(ValueError, match="hmac_secret_file nor hmac_secret"):
        JWTVerifier(JWTConfig(algorithms=("HS256",)))
