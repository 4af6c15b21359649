"""Secrets in configuration: read from a file or the environment, never shown.

A secret setting comes as a pair: ``<name>_file`` (a mounted Secret, a file 0600) and
``<name>`` itself as a `pydantic.SecretStr` (set through the environment,
``VIGIL_<PROCESS>_<NAME>``, rather than written into a YAML file). `SecretStr` prints
as ``**********`` in ``repr``, ``str`` and ``model_dump(mode="json")``, so a logged or
dumped config never carries the value; `load_config` also masks the value of a secret
setting in its one-line errors (`is_secret_setting`). The value is taken out only where
it is used, with `secret_value`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from pydantic import SecretStr

from services.common._config import ConfigError
from services.common._sqlite import create_private_dirs

__all__ = ["ensure_secret_file", "read_secret_file", "secret_value", "write_private", "write_private_once"]


def read_secret_file(path: Path, setting: str) -> str:
    """The secret in ``path`` (one trailing newline is not part of it).

    Raises:
        ConfigError: naming ``setting`` when the file cannot be read or is empty.
    """
    try:
        text = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        problem = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(str(path), setting, f"secret file unreadable: {problem}") from None
    if not text:
        raise ConfigError(str(path), setting, "secret file is empty")
    return text


def secret_value(value: SecretStr | None, file: Path | None, setting: str) -> str | None:
    """The secret from ``<setting>_file`` or ``<setting>`` (the file wins), or None when neither is set."""
    if file is not None:
        return read_secret_file(file, f"{setting}_file")
    return value.get_secret_value() if value is not None else None


def _private_temp(path: Path, text: str) -> str:
    """A temporary file beside ``path`` holding ``text`` (0600, synced; missing directories 0700)."""
    create_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, readable by the owner only (0600; a new
    directory 0700)."""
    tmp = _private_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private_once(path: Path, text: str) -> None:
    """Create ``path`` holding ``text`` (0600) unless it exists. Written to a temporary file and
    hard-linked into place: of two processes creating it at once, the first one's text stands,
    and no reader ever sees a half-written file."""
    tmp = _private_temp(path, text)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def ensure_secret_file(path: Path, setting: str, nbytes: int = 32) -> str:
    """The secret in ``path``, first creating it (``nbytes`` random bytes, hex, mode 0600) when
    it does not exist: the local-development default of a per-deployment key."""
    if not path.exists():
        try:
            write_private_once(path, secrets.token_hex(nbytes) + "\n")
        except OSError as exc:
            raise ConfigError(str(path), setting, f"cannot create the secret file: {exc.strerror}") from None
    return read_secret_file(path, setting)
