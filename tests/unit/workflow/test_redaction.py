"""What the workflow service stores of caller text: redacted labels, keyed idempotency keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.common import ConfigError
from services.workflow._config import WorkflowConfig
from services.workflow._model import request_hash
from services.workflow._redaction import IdempotencyKeys, redact_labels


def test_labels_are_redacted_in_keys_and_values() -> None:
    labels, counts = redact_labels({"owner": "a@b.io", "AKIAQWERTYUIOPASDFGH": "x", "team": "core"})
    assert labels == {"owner": "[REDACTED:email]", "[REDACTED:aws_access_key]": "x", "team": "core"}
    assert counts == {"email": 1, "aws_access_key": 1}
    assert redact_labels({}) == ({}, {})


def test_stored_keys_are_keyed_hashes() -> None:
    keys = IdempotencyKeys(b"k" * 32)
    stored = keys.stored("order-42")
    assert stored.startswith("hmac-sha256:") and len(stored) == len("hmac-sha256:") + 64
    assert "order-42" not in stored and keys.stored("order-42") == stored  # lookups hash alike
    assert IdempotencyKeys(b"j" * 32).stored("order-42") != stored  # another deployment, another hash
    with pytest.raises(ValueError, match="at least 16"):
        IdempotencyKeys(b"short")


def test_the_secret_is_generated_beside_the_sqlite_store_once(tmp_path: Path) -> None:
    cfg = WorkflowConfig.model_validate({"store_path": str(tmp_path / "wf" / "runs.db")})
    a = IdempotencyKeys.from_config(cfg).stored("k")
    key = tmp_path / "wf" / "idempotency.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert IdempotencyKeys.from_config(cfg).stored("k") == a  # a restart hashes the same way


def test_a_configured_secret_is_used_and_checked(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("x" * 32 + "\n")
    by_file = WorkflowConfig.model_validate(
        {"store_path": str(tmp_path / "runs.db"), "idempotency_secret_file": str(tmp_path / "s")}
    )
    by_env = WorkflowConfig.model_validate({"idempotency_secret": "x" * 32})
    assert IdempotencyKeys.from_config(by_file).stored("k") == IdempotencyKeys.from_config(by_env).stored("k")
    assert not (tmp_path / "idempotency.key").exists()
    with pytest.raises(ConfigError, match="idempotency_secret"):
        IdempotencyKeys.from_config(WorkflowConfig.model_validate({"idempotency_secret": "short"}))


def test_request_fingerprints_are_keyed() -> None:
    asked = {"workflow": "w", "params": {"password": "hunter2"}}
    keys = IdempotencyKeys(b"k" * 32)
    assert keys.fingerprint(asked) == keys.fingerprint(dict(asked)) != request_hash(asked)
    assert keys.fingerprint(asked).startswith("hmac-sha256:")
    assert IdempotencyKeys(b"j" * 32).fingerprint(asked) != keys.fingerprint(asked)
