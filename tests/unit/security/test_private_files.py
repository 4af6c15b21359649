"""The local stack's secrets and stores are owner-only: `.vigil/` 0700; the dev token, keys
file, audit database, audit key and head file 0600 (a `.vigil/` left 0755 by an older release
is tightened)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.security import SecurityConfig
from services.security._core import SecurityCore


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("existing", [None, 0o755], ids=["fresh", "left 0755 by an older release"])
def test_local_stack_files_are_owner_only(tmp_path: Path, existing: int | None) -> None:
    vigil = tmp_path / ".vigil"
    if existing is not None:
        vigil.mkdir(mode=existing)
        vigil.chmod(existing)
    cfg = SecurityConfig.model_validate(
        {  # the layout of deploy/local/security.yaml, under tmp_path
            "auth": {"keys_file": str(vigil / "keys.yaml")},
            "dev_token_file": str(vigil / "dev-token"),
            "audit": {"db_path": str(vigil / "security-audit.db")},
        }
    )
    core = SecurityCore.from_config(cfg)
    core.audit.append(action="x", decision="ALLOW")
    core.close()
    assert _mode(vigil) == 0o700
    for name in ("dev-token", "keys.yaml", "security-audit.db", "security-audit.db.head", "audit-key"):
        assert _mode(vigil / name) == 0o600, name
