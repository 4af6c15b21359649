"""Authentication: bearer token (API key or JWT) -> `Principal`, with no gRPC dependency.

healthd imports `Authenticator` to check ADMIN tokens itself from the same key
material, so this module must stay importable without a server.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from services.common import ConfigError, ConfigModel, Unauthenticated, parse_yaml
from services.security._jwt import JWTConfig, JWTVerifier
from services.security._keys import KEY_PREFIX, ApiKeyVerifier, KeyEntry
from services.security._principal import Principal

__all__ = ["AuthConfig", "Authenticator", "load_keys_file"]

_MAX_TOKEN_CHARS = 8192


class AuthConfig(ConfigModel):
    """Where API key hashes and JWT verification keys come from."""

    api_keys: tuple[KeyEntry, ...] = ()
    """API key entries (hashes only) written inline in the config."""
    keys_file: Path | None = None
    """Extra YAML list of key entries (e.g. the git-ignored local dev key); missing file = none."""
    jwt: JWTConfig | None = None
    """JWT verification; unset means JWTs are refused."""


def load_keys_file(path: Path) -> list[KeyEntry]:
    """Read a YAML list of `KeyEntry` mappings; a missing file holds no keys.

    Raises:
        ValueError: naming the file and the entry that is malformed.
    """
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read keys file: {exc}") from None
    except ConfigError as exc:
        raise ValueError(f"cannot read keys file: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"{path}: keys file must be a YAML list of key entries")
    entries = []
    for i, item in enumerate(data):
        try:
            entries.append(KeyEntry.model_validate(item))
        except ValidationError as exc:
            raise ValueError(f"{path}: entry {i}: {exc.errors()[0]['msg']}") from None
    return entries


class Authenticator:
    """Turns a bearer token into a `Principal` or raises `Unauthenticated`."""

    def __init__(self, config: AuthConfig) -> None:
        entries = list(config.api_keys)
        if config.keys_file is not None:
            entries += load_keys_file(config.keys_file)
        self._keys = ApiKeyVerifier(entries)
        self._jwt = JWTVerifier(config.jwt) if config.jwt is not None else None

    def _check(self, token: object) -> str:
        if not isinstance(token, str) or not token.strip():
            raise Unauthenticated("missing token")
        token = token.strip()
        if len(token) > _MAX_TOKEN_CHARS:
            raise Unauthenticated("invalid token: too long")
        return token

    def _jwt_principal(self, token: str) -> Principal:
        if token.count(".") == 2:
            if self._jwt is None:
                raise Unauthenticated("invalid token: JWTs are not accepted by this server")
            return self._jwt.verify(token)
        raise Unauthenticated("invalid token: neither an API key nor a JWT")

    def authenticate(self, token: str) -> Principal:
        """Verify ``token`` (an API key ``vgl_...`` or a JWT).

        Raises:
            Unauthenticated: missing, malformed, unknown, expired or badly signed token.
        """
        token = self._check(token)
        if token.startswith(KEY_PREFIX):
            return self._keys.verify(token)
        return self._jwt_principal(token)

    async def authenticate_async(self, token: str) -> Principal:
        """Like `authenticate`; a first-time API key verification (scrypt) runs off the event loop."""
        token = self._check(token)
        if token.startswith(KEY_PREFIX):
            return await self._keys.verify_async(token)
        return self._jwt_principal(token)
