"""API key administration: the ``keys create`` and ``dev-token`` commands.

``dev-token`` gives the local stack a random ADMIN key on first start: the token goes
to a 0600 file (git-ignored under ``.vigil/``), only its hash goes to the keys file the
config names (``auth.keys_file``), and nothing secret is ever printed except by
``keys create``, which prints the new token exactly once.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from services.common import ConfigError, create_private_dirs, load_config
from services.security._auth import load_keys_file
from services.security._config import SecurityConfig
from services.security._keys import KeyEntry, new_key
from services.security._principal import Level
from services.security._ratelimit import parse_rate

__all__ = ["DEV_SUBJECT", "cli", "ensure_dev_key", "ensure_dev_token"]

DEV_SUBJECT = "local-dev"
ENV_PREFIX = "VIGIL_SECURITY_"


def _entry_dict(entry: KeyEntry) -> dict[str, object]:
    return entry.model_dump(mode="json")


def _write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, readable by the owner only (0600, its missing
    directories 0700)."""
    create_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _owner_only_dir(directory: Path) -> None:
    """Make an existing directory that holds the ADMIN token owner-only (0700): releases before
    this one created ``.vigil/`` 0755."""
    with contextlib.suppress(FileNotFoundError):
        if directory.stat().st_mode & 0o077:
            directory.chmod(0o700)


def ensure_dev_token(config_path: Path | None, token_file: Path) -> tuple[Path, bool]:
    """Make sure a local ADMIN dev token exists. Returns (token file, created now).

    When ``token_file`` exists nothing changes. Otherwise a new ADMIN key is created,
    earlier dev keys are dropped from the keys file, its hash is added, and the token is
    written to ``token_file`` with mode 0600.

    Raises:
        ConfigError: the config is invalid or has no ``auth.keys_file``.
    """
    cfg = load_config(SecurityConfig, config_path, env_prefix=ENV_PREFIX)
    return ensure_dev_key(cfg.auth.keys_file, token_file, source=str(config_path))


def ensure_dev_key(keys_file: Path | None, token_file: Path, *, source: str) -> tuple[Path, bool]:
    """`ensure_dev_token` for an already loaded config: ``keys_file`` gets the hash, ``token_file`` the token.

    Raises:
        ConfigError: ``keys_file`` is unset or unreadable (``source`` names the config).
    """
    if keys_file is None:
        raise ConfigError(source, "auth.keys_file", "must be set to store the dev key's hash")
    _owner_only_dir(token_file.parent)
    if token_file.exists():
        return token_file, False
    # Replicas start together: one creates the key, the others wait and find it (without the
    # lock two would interleave and leave a token whose hash the keys file no longer holds).
    create_private_dirs(token_file.parent)
    with open(token_file.with_name(token_file.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if token_file.exists():
            return token_file, False
        return _create_dev_key(keys_file, token_file), True


def _create_dev_key(keys_file: Path, token_file: Path) -> Path:
    token, entry = new_key(DEV_SUBJECT, Level.ADMIN)
    try:
        kept = [e for e in load_keys_file(keys_file) if e.subject != DEV_SUBJECT]
    except ValueError as exc:
        raise ConfigError(str(keys_file), "", str(exc)) from None
    entries = [_entry_dict(e) for e in [*kept, entry]]
    _write_private(
        keys_file, "# API key hashes (generated; tokens are never stored here)\n" + yaml.safe_dump(entries)
    )
    _write_private(token_file, token + "\n")
    return token_file


def cli(argv: Sequence[str]) -> int:
    """``keys create`` / ``dev-token`` sub-commands. Returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m services.security")
    sub = parser.add_subparsers(dest="command", required=True)
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create an API key: prints the token once and the entry to store")
    create.add_argument("--subject", required=True)
    create.add_argument("--level", default="AUTHENTICATED", choices=[lv.name for lv in Level])
    create.add_argument("--role", action="append", default=[], help="role to grant (repeatable)")
    create.add_argument(
        "--rate-limit", default=None, help="the key's own rate limit: requests/s, or 'unlimited'"
    )
    dev = sub.add_parser("dev-token", help="create the local ADMIN dev token if missing")
    dev.add_argument("--config", type=Path, default=None)
    dev.add_argument("--token-file", type=Path, default=Path(".vigil/dev-token"))
    certs = sub.add_parser("certs", help="create a dev CA and service certificates (mTLS) if missing")
    certs.add_argument("--dir", type=Path, required=True)
    certs.add_argument("--name", action="append", required=True, help="service name (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "certs":
        from services.security._devcerts import ensure_dev_certs  # cryptography only when asked

        issued = ensure_dev_certs(args.dir, args.name)
        print(f"certificates in {args.dir}: {len(issued) // 2} issued, CA {args.dir / 'ca.pem'}")
        return 0
    if args.command == "keys":
        token, entry = new_key(args.subject, Level.parse(args.level), args.role)
        if args.rate_limit is not None:
            raw = args.rate_limit.strip()
            try:
                limit = parse_rate(raw if raw.lower() == "unlimited" else float(raw))
            except ValueError as exc:
                print(f"keys create: --rate-limit: {exc}", file=sys.stderr)
                return 2
            entry = entry.model_copy(update={"rate_limit": limit})
        print(f"token (shown once, store it now): {token}")
        print("add this entry to auth.api_keys (or the keys file):")
        print(yaml.safe_dump([_entry_dict(entry)], sort_keys=False), end="")
        return 0
    try:
        path, created = ensure_dev_token(args.config, args.token_file)
    except ConfigError as exc:
        print(f"dev-token: {exc}", file=sys.stderr)
        return 2
    state = "created" if created else "exists"
    print(f"development ADMIN token {state}: {path} (mode 0600; use: authorization: Bearer $(cat {path}))")
    return 0
