"""The audit chain's MAC keys: several verify, one signs, each named by a key id.

The keys live outside the audit database (a key file, or an environment variable holding
the same text), so whoever can write the database cannot forge a record: recomputing a
record's MAC needs the key. Rotation: add a new key, make it ``signing``, keep the old
ones for as long as records signed with them must verify.

Key file (YAML, 0600)::

    signing: k2
    keys:
      k1: <base64, at least 32 bytes>
      k2: <base64, at least 32 bytes>
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from services.common import ConfigModel, parse_yaml, write_private_once

__all__ = ["AuditKeyConfig", "AuditKeyError", "AuditKeys"]

_MIN_KEY_BYTES = 32
_MAX_KEY_FILE_BYTES = 64 << 10
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class AuditKeyError(ValueError):
    """The key material is missing, unreadable or malformed (a start-up error)."""


class AuditKeyConfig(ConfigModel):
    """Where the audit chain's MAC keys come from (never the audit database)."""

    key_file: Path | None = None
    """YAML file with ``signing`` (key id) and ``keys`` (id → base64 secret); mode 0600."""
    key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")
    """Name of an environment variable holding the key file's text; used instead of ``key_file``."""
    generate_missing: bool = True
    """Create ``key_file`` (0600, directories 0700) with a random key when it is missing, as the
    local stack does; set false where the key must come from a Secret."""
    key_id_prefix: str = Field(default="k", pattern=r"^[A-Za-z0-9_-]{1,16}$")
    """Prefix of the id a generated key gets (``<prefix>1``)."""


class AuditKeys:
    """HMAC-SHA256 keys by id; `sign` uses the signing key, `mac` any known one."""

    def __init__(self, keys: Mapping[str, bytes], signing: str) -> None:
        if signing not in keys:
            raise AuditKeyError(f"signing key id {signing!r} is not one of the keys {sorted(keys)}")
        for key_id, secret in keys.items():
            if not key_id or not set(key_id) <= _KEY_ID_CHARS or len(key_id) > 64:
                raise AuditKeyError(f"key id {key_id!r} must be 1-64 characters of [A-Za-z0-9._-]")
            if len(secret) < _MIN_KEY_BYTES:
                raise AuditKeyError(f"key {key_id!r} has {len(secret)} bytes, fewer than {_MIN_KEY_BYTES}")
        self._keys = dict(keys)
        self.signing_id = signing

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def mac(self, key_id: str, payload: bytes) -> str:
        """Hex HMAC-SHA256 of ``payload`` under key ``key_id`` (`KeyError` if unknown)."""
        return hmac.digest(self._keys[key_id], payload, "sha256").hex()  # hmac.new(...).hexdigest(), faster

    def sign(self, payload: bytes) -> tuple[str, str]:
        """(signing key id, MAC) of ``payload``."""
        return self.signing_id, self.mac(self.signing_id, payload)

    def matches(self, key_id: str, payload: bytes, mac: str) -> bool:
        """True when ``mac`` is ``payload``'s MAC under the known key ``key_id`` (constant time)."""
        return key_id in self._keys and hmac.compare_digest(self.mac(key_id, payload), mac)

    @classmethod
    def parse(cls, text: str, source: str) -> AuditKeys:
        """Keys from the key file's text (``source`` names it in errors)."""
        data = parse_yaml(text, source)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise AuditKeyError(f"{source}: expected a mapping with 'signing' and 'keys'")
        keys: dict[str, bytes] = {}
        for key_id, value in data["keys"].items():
            try:
                keys[str(key_id)] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise AuditKeyError(f"{source}: key {key_id!r} is not base64") from None
        return cls(keys, str(data.get("signing", "")))

    @classmethod
    def load(cls, config: AuditKeyConfig, environ: Mapping[str, str] | None = None) -> AuditKeys:
        """The keys ``config`` names (generating a dev key file first when allowed and missing)."""
        env = os.environ if environ is None else environ
        if config.key_env is not None:
            if config.key_env not in env:
                raise AuditKeyError(f"environment variable {config.key_env} is not set")
            return cls.parse(env[config.key_env], f"${config.key_env}")
        if config.key_file is None:
            raise AuditKeyError("no key: set audit.keys.key_file or audit.keys.key_env")
        path = config.key_file
        if config.generate_missing and not path.exists():
            _write_new_key_file(path, f"{config.key_id_prefix}1")
        try:
            with path.open("rb") as f:
                raw = f.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise AuditKeyError(f"{path}: cannot read ({exc.strerror})") from None
        if len(raw) > _MAX_KEY_FILE_BYTES:
            raise AuditKeyError(f"{path}: larger than {_MAX_KEY_FILE_BYTES} bytes")
        try:
            return cls.parse(raw.decode("utf-8"), str(path))
        except UnicodeDecodeError:
            raise AuditKeyError(f"{path}: not UTF-8 text") from None


def key_file_text(keys: Mapping[str, bytes], signing: str) -> str:
    """The key file's text for ``keys`` (what `AuditKeys.parse` reads)."""
    lines = [f"signing: {signing}", "keys:"]
    lines += [f"  {key_id}: {base64.b64encode(secret).decode()}" for key_id, secret in keys.items()]
    return (
        "# audit chain MAC keys (secret; keep 0600, never in the audit database)\n" + "\n".join(lines) + "\n"
    )


def _write_new_key_file(path: Path, key_id: str) -> None:
    """Create ``path`` (0600; missing directories 0700) with one random key, unless it exists.

    Written to a temporary file and hard-linked into place: the link fails if another
    replica got there first (its key is used), and no reader ever sees a half-written file.
    """
    write_private_once(path, key_file_text({key_id: secrets.token_bytes(_MIN_KEY_BYTES)}, key_id))
