"""What the workflow service stores of a caller's text: redacted labels, keyed idempotency keys.

Params are redacted by the security service (Screen returns them sanitized, keys and
values); labels do not travel in Screen, so they are redacted here with the same policy
(`services.security.Redactor`, the built-in recognisers). A label filter of ListRuns is
redacted alike, so filtering by a value finds the runs it was stored on.

Idempotency keys (and the request fingerprints they are compared with) are compared, never
shown, so only a keyed hash is stored:
``hmac-sha256:<hex>`` of the key under a per-deployment secret (`idempotency_secret_file`,
or ``VIGIL_WORKFLOW_IDEMPOTENCY_SECRET``; in local development a key generated 0600 beside
the SQLite store). Replicas sharing a PostgreSQL store must share the secret. Rows written
before keys were hashed hold the raw key: the stores look both forms up
(`NewRun.legacy_idempotency_key`) and compare both forms of the request's fingerprint, so a
retry with such a key still finds its run.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.common import ConfigError, ensure_secret_file, get_logger, secret_value
from services.security import Redactor
from services.workflow._config import WorkflowConfig
from services.workflow._model import canonical_json

__all__ = ["IdempotencyKeys", "redact_labels"]

_log = get_logger("vigil.workflow")
_REDACTOR = Redactor()
PREFIX = "hmac-sha256:"
_DEV_KEY_NAME = "idempotency.key"
_MIN_SECRET = 16


def redact_labels(labels: Mapping[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """``labels`` with secrets and personal data redacted in keys and values; counts by kind."""
    if not labels:
        return {}, {}
    out, counts = _REDACTOR.redact_value(dict(labels))
    return out, counts


class IdempotencyKeys:
    """The stored forms of what idempotency compares, each an HMAC-SHA256 under the deployment's
    secret: the key, and the request's fingerprint (an unkeyed hash of params would let whoever
    reads the database confirm a guessed secret in them)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"the idempotency secret must be at least {_MIN_SECRET} bytes")
        self._secret = secret

    def stored(self, key: str) -> str:
        """What the store keeps for ``key`` (deterministic: lookups hash the same way)."""
        return self._mac(key.encode("utf-8", "surrogatepass"))

    def fingerprint(self, request: Mapping[str, Any]) -> str:
        """What the store keeps as the request's hash (`request_hash` is the unkeyed form)."""
        return self._mac(canonical_json(request).encode("utf-8", "surrogatepass"))

    def _mac(self, data: bytes) -> str:
        return PREFIX + hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    @classmethod
    def from_config(cls, cfg: WorkflowConfig) -> IdempotencyKeys:
        """The secret from ``idempotency_secret_file`` / ``idempotency_secret``, else a generated
        one (0600) beside the SQLite store, or under ``.vigil/workflow`` for PostgreSQL (logged:
        replicas sharing the database must share the secret).

        Raises:
            ConfigError: the file is unreadable or empty, or the secret is too short.
        """
        secret = secret_value(cfg.idempotency_secret, cfg.idempotency_secret_file, "idempotency_secret")
        if secret is None:
            base = cfg.store_path.parent if cfg.store_backend == "sqlite" else Path(".vigil/workflow")
            path = base / _DEV_KEY_NAME
            if cfg.store_backend != "sqlite":
                _log.warning(
                    "idempotency keys are hashed with %s, generated for this replica: replicas sharing"
                    " the run store must share one secret (idempotency_secret_file)",
                    path,
                )
            secret = ensure_secret_file(path, "idempotency_secret_file")
        try:
            return cls(secret.encode("utf-8"))
        except ValueError as exc:
            raise ConfigError("config", "idempotency_secret", str(exc)) from None
