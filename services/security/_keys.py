"""API keys: ``vgl_<key_id>_<secret>`` tokens, stored only as salted scrypt hashes.

The token is shown once at creation; configuration holds a `KeyEntry` with the key id,
a salted scrypt hash of the whole token, and the principal it stands for. Verification
compares digests with `hmac.compare_digest` (constant time). Because scrypt is
deliberately slow, a successful verification is remembered as a SHA-256 digest of the
token (in memory only) so that repeated calls with the same key stay cheap; the cached
digest is also compared in constant time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, field_serializer, field_validator, model_serializer

from services.common import ConfigModel, Unauthenticated
from services.security._principal import Level, Principal
from services.security._ratelimit import Rate, RateLimitConfig, RateLimiter, parse_rate

__all__ = ["KEY_PREFIX", "ApiKeyVerifier", "KeyEntry", "hash_token", "new_key"]

KEY_PREFIX = "vgl_"
# key id: 12 lowercase hex characters, so it never contains the "_" separator.
_TOKEN_RE = re.compile(r"vgl_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})")
_HASH_RE = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")
# scrypt cost: n=2**14, r=8 uses 16 MiB and ~tens of ms per verification.
_N, _R, _P = 1 << 14, 8, 1
_MAX_N = 1 << 20  # refuse hashes whose cost would let a config entry exhaust memory


class KeyEntry(ConfigModel):
    """One API key as stored in configuration: never the token itself."""

    id: str = Field(pattern=r"^[0-9a-f]{12}$")
    """Key id: the part of the token between ``vgl_`` and the secret."""
    hash: str
    """``scrypt$N$r$p$<salt b64>$<digest b64>`` of the whole token."""
    subject: str = Field(min_length=1, max_length=200)
    """Who the key authenticates as."""
    level: Level = Level.AUTHENTICATED
    """Security level granted to the key's principal."""
    roles: tuple[str, ...] = ()
    """Roles granted to the key's principal."""
    rate_limit: Rate | None = None
    """This key's own rate limit: ``unlimited``, requests/s (burst twice that) or
    ``{rate_per_s, burst}``; unset: the service's ``rate_limit`` config decides."""

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _parse_rate(cls, value: object) -> Rate | None:
        return parse_rate(value)

    @field_serializer("rate_limit")
    def _rate_text(self, rate: Rate | None) -> object:
        if rate is None:
            return None
        if rate.unlimited:
            return "unlimited"
        return {"rate_per_s": rate.per_s, "burst": int(rate.burst)}

    @model_serializer(mode="wrap")
    def _omit_unset_rate(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Entries without a limit are written as before, so older readers accept the file.
        data: dict[str, Any] = dump(self)
        if data.get("rate_limit") is None:
            data.pop("rate_limit", None)
        return data

    @field_validator("level", mode="before")
    @classmethod
    def _parse_level(cls, value: object) -> Level:
        return Level.parse(value)

    @field_serializer("level")
    def _level_name(self, level: Level) -> str:
        return level.name  # keys files name levels; numbers would be ambiguous to a reader

    @field_validator("hash")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        m = _HASH_RE.fullmatch(value)
        if m is None:
            raise ValueError("hash must look like scrypt$N$r$p$<salt>$<digest>")
        n, r, p = (int(g) for g in m.groups()[:3])
        if n < 2 or n > _MAX_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise ValueError("scrypt parameters out of range")
        return value


def hash_token(token: str, *, salt: bytes | None = None, n: int = _N, r: int = _R, p: int = _P) -> str:
    """Return the storable salted scrypt hash of ``token`` (fresh random salt by default)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        token.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def _verify_hash(token: str, stored: str) -> bool:
    m = _HASH_RE.fullmatch(stored)
    if m is None:
        return False
    n, r, p = (int(g) for g in m.groups()[:3])
    salt, expected = base64.b64decode(m.group(4)), base64.b64decode(m.group(5))
    actual = hashlib.scrypt(
        token.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=len(expected)
    )
    return hmac.compare_digest(actual, expected)


def new_key(subject: str, level: Level, roles: Iterable[str] = (), *, n: int = _N) -> tuple[str, KeyEntry]:
    """Create a random API key. Returns (token shown once, entry to store)."""
    key_id = secrets.token_hex(6)
    token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = KeyEntry(id=key_id, hash=hash_token(token, n=n), subject=subject, level=level, roles=tuple(roles))
    return token, entry


class ApiKeyVerifier:
    """Verifies ``vgl_`` tokens against configured entries. Safe to share across requests.

    Slow (scrypt) verifications are throttled per key id: key ids are not secret, so without
    a bound anyone could make the server spend tens of milliseconds per request guessing.
    Tokens that verified once take the cached fast path and are never throttled.
    """

    def __init__(
        self, entries: Iterable[KeyEntry], *, attempts_per_s: float = 2.0, burst: int = 10,
        now: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._entries: dict[str, KeyEntry] = {}
        for entry in entries:
            if entry.id in self._entries:
                raise ValueError(f"duplicate API key id {entry.id}")
            self._entries[entry.id] = entry
        # Principals are immutable: each key's is built once, not per request.
        self._principals = {
            e.id: Principal(
                e.subject, e.level, frozenset(e.roles), via="api_key", credential_id=e.id, rate=e.rate_limit
            )
            for e in self._entries.values()
        }
        # key id -> SHA-256 of a token that passed scrypt verification. Only ever holds
        # tokens of configured ids, so it is bounded by the number of entries.
        self._verified: dict[str, bytes] = {}
        self._attempts = RateLimiter(
            RateLimitConfig(rate_per_s=attempts_per_s, burst=burst, max_subjects=max(1, len(self._entries))),
            now=now,
        )

    def __len__(self) -> int:
        return len(self._entries)

    def _start(self, token: str) -> tuple[KeyEntry, bytes, bool]:
        """(entry, SHA-256 of the token, whether scrypt must run). Raises like `verify`."""
        m = _TOKEN_RE.fullmatch(token)
        entry = self._entries.get(m.group(1)) if m else None
        if m is None or entry is None:
            raise Unauthenticated("invalid API key")
        quick = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(entry.id)
        slow = cached is None or not hmac.compare_digest(cached, quick)
        if slow:
            self._attempts.check(entry.id)  # ResourceExhausted (with retry delay) when guessing
        return entry, quick, slow

    def _finish(self, entry: KeyEntry, quick: bytes, slow: bool, valid: bool) -> Principal:
        if not valid:
            raise Unauthenticated("invalid API key")
        if slow:
            self._verified[entry.id] = quick
        return self._principals[entry.id]

    def verify(self, token: str) -> Principal:
        """Return the key's principal, or raise `Unauthenticated` (never saying which part failed)."""
        entry, quick, slow = self._start(token)
        return self._finish(entry, quick, slow, not slow or _verify_hash(token, entry.hash))

    async def verify_async(self, token: str) -> Principal:
        """Like `verify`, with the scrypt step (tens of ms) on a worker thread, off the event loop."""
        entry, quick, slow = self._start(token)
        valid = not slow or await asyncio.to_thread(_verify_hash, token, entry.hash)
        return self._finish(entry, quick, slow, valid)
