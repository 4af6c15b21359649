"""Verifying tokens outside the security service, from the same key material.

healthd (ADMIN tokens on its mutating RPCs) and the workflow service (callers of reads) are
given the security service's key material (API key hashes, the keys file, JWT settings) so
they keep working while that service is down. `KeyMaterialAuthenticator` is the one way
they do it: an `Authenticator` over the config, rebuilt when the keys file changes (the
local dev key is written by the security service at its first start, possibly after they
started; a revoked key disappears from the file).
"""

from __future__ import annotations

from services.common import Unavailable
from services.security._auth import AuthConfig, Authenticator
from services.security._principal import Principal

__all__ = ["KeyMaterialAuthenticator"]


class KeyMaterialAuthenticator:
    """Bearer token -> `Principal` from ``config``, reloading the keys file when it changes."""

    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._auth: Authenticator | None = None
        self._stamp: int | None = None

    def _current(self) -> Authenticator:
        path = self._config.keys_file
        try:
            stamp = path.stat().st_mtime_ns if path is not None else 0
        except OSError:
            stamp = -1  # missing file: no keys from it
        if self._auth is None or stamp != self._stamp:
            try:
                self._auth = Authenticator(self._config)
            except ValueError as exc:
                raise Unavailable(f"cannot load key material: {exc}") from None
            self._stamp = stamp
        return self._auth

    def authenticate(self, token: str) -> Principal:
        """The principal behind ``token``.

        Raises:
            Unauthenticated: missing, unknown, expired or badly signed token.
            Unavailable: the key material cannot be read.
        """
        return self._current().authenticate(token)

    async def authenticate_async(self, token: str) -> Principal:
        """Like `authenticate`; a first-time API key verification (scrypt) runs off the loop."""
        return await self._current().authenticate_async(token)
