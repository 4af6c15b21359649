"""Start-up: unusable files or values become one-line ConfigErrors naming the setting."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from services.common import ConfigError
from services.security import SecurityConfig
from services.security._core import SecurityCore


def build(tmp_path: Path, **raw: Any) -> SecurityCore:
    base: dict[str, Any] = {"audit": {"db_path": str(tmp_path / "audit.db")}}
    base.update(raw)
    return SecurityCore.from_config(SecurityConfig.model_validate(base))


@pytest.mark.parametrize(
    ("setup", "raw", "field"),
    [
        (
            lambda t: (t / "p.yaml").write_text("rules: [{match: x}]"),
            {"policy_file": "{t}/p.yaml"},
            "policy_file",
        ),
        (lambda t: None, {"policy_file": "{t}/missing.yaml"}, "policy_file"),
        (lambda t: (t / "k.yaml").write_text("- {id: zz}"), {"auth": {"keys_file": "{t}/k.yaml"}}, "auth"),
        (
            lambda t: (t / "s").write_text("short"),
            {"auth": {"jwt": {"algorithms": ["HS256"], "hmac_secret_file": "{t}/s"}}},
            "auth",
        ),
        (
            lambda t: None,
            {"auth": {"jwt": {"algorithms": ["RS256"], "public_key_file": "{t}/nope.pem"}}},
            "auth",
        ),
        (lambda t: None, {"redaction_patterns": [{"kind": "x", "regex": "(open"}]}, "redaction_patterns"),
        (lambda t: (t / "dir.db").mkdir(), {"audit": {"db_path": "{t}/dir.db"}}, "audit.db_path"),
        (
            lambda t: (t / "audit-key").write_text("signing: k1\nkeys:\n  k1: c2hvcnQ=\n"),
            {"audit": {"db_path": "{t}/a.db", "keys": {"key_file": "{t}/audit-key"}}},
            "audit.keys",
        ),
        (  # a log migrated by a newer release
            lambda t: sqlite3.connect(t / "new.db").execute("PRAGMA user_version = 99").connection.close(),
            {"audit": {"db_path": "{t}/new.db"}},
            "audit.db_path",
        ),
        (
            lambda t: (t / "ca.pem").write_text("not a cert"),
            {"artifact_root": "{t}/art", "downloads": {"ca_file": "{t}/ca.pem"}},
            "downloads.ca_file",
        ),
    ],
)
def test_unusable_settings_name_the_field(tmp_path: Path, setup: Any, raw: Any, field: str) -> None:
    setup(tmp_path)
    resolved = json.loads(json.dumps(raw).replace("{t}", str(tmp_path)))
    with pytest.raises(ConfigError) as exc:
        build(tmp_path, **resolved)
    assert exc.value.field == field
    assert "\n" not in str(exc.value)


def test_defaults_build_and_close(tmp_path: Path) -> None:
    core = build(tmp_path)
    assert core.downloader is None and core.gate.policy.policy.rules
    core.close()
