"""JWT bearer tokens (PyJWT): HS256 with a shared secret, RS256/ES256 with a public key.

Every token must carry ``exp`` and ``sub``; ``nbf``/``iat`` are honoured when present;
``iss`` and ``aud`` are required and checked when configured. Clock skew is bounded by
``leeway_s`` (at most 5 minutes). The level a token may claim is capped by ``max_level``,
so a leaked signing key for a low-trust issuer cannot mint ADMIN principals.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import Field, field_validator

from services.common import ConfigModel, Unauthenticated
from services.security._principal import Level, Principal
from services.security._ratelimit import parse_rate

__all__ = ["JWTConfig", "JWTVerifier"]

Algorithm = Literal["HS256", "RS256", "ES256"]
_MIN_HMAC_SECRET = 32
_MAX_TOKEN_CHARS = 8192
_CACHE_LIMIT = 10_000


@functools.cache
def _pyjwt() -> ModuleType:
    """PyJWT, imported when the first verifier is built: it loads cryptography's OpenSSL
    bindings (~10 MB resident), which processes that accept no JWTs (healthd with API keys
    only, the usual case) should not carry."""
    import jwt

    return jwt


class JWTConfig(ConfigModel):
    """How JWT bearer tokens are verified."""

    algorithms: tuple[Algorithm, ...] = ("RS256", "ES256")
    """Accepted signature algorithms; a token signed any other way (incl. ``none``) is refused."""
    hmac_secret_file: Path | None = None
    """File holding the HS256 shared secret (at least 32 bytes); required when HS256 is accepted."""
    public_key_file: Path | None = None
    """PEM public key for RS256 (RSA) or ES256 (P-256) tokens."""
    issuer: str | None = None
    """Required ``iss`` claim value; unset skips the check."""
    audience: str | None = None
    """Required ``aud`` claim value; unset skips the check."""
    leeway_s: float = Field(default=30.0, ge=0, le=300)
    """Allowed clock skew for ``exp``/``nbf``/``iat``, bounded to five minutes."""
    level_claim: str = "vigil_level"
    """Claim naming the principal's level; absent means ``default_level``."""
    roles_claim: str = "roles"
    """Claim holding a list of role names."""
    rate_limit_claim: str = "vigil_rate_limit"
    """Claim with the token's own rate limit (``unlimited``, requests/s, or ``{rate_per_s, burst}``);
    absent: the service's ``rate_limit`` config decides."""
    default_level: Level = Level.AUTHENTICATED
    """Level of a token without a level claim."""
    max_level: Level = Level.ADMIN
    """Highest level a JWT may grant; a higher claimed level is refused."""

    @field_validator("default_level", "max_level", mode="before")
    @classmethod
    def _parse_level(cls, value: object) -> Level:
        return Level.parse(value)


class JWTVerifier:
    """Verifies JWTs per a `JWTConfig`; keys are read once at construction."""

    def __init__(self, config: JWTConfig, *, now: Callable[[], float] = time.time) -> None:
        self._cfg = config
        self._now = now
        # SHA-256 of a verified token -> (principal, its exp). Dict access is atomic under the GIL.
        self._verified: dict[bytes, tuple[Principal, float]] = {}
        self._keys: dict[str, Any] = {}
        jwt = _pyjwt()
        if "HS256" in config.algorithms:
            if config.hmac_secret_file is None:
                raise ValueError("jwt: HS256 accepted but hmac_secret_file is not set")
            secret = config.hmac_secret_file.read_bytes().strip()
            if len(secret) < _MIN_HMAC_SECRET:
                raise ValueError(f"jwt: hmac_secret_file must hold at least {_MIN_HMAC_SECRET} bytes")
            self._keys["HS256"] = secret
        asym = [a for a in config.algorithms if a != "HS256"]
        if asym:
            if config.public_key_file is None:
                raise ValueError(f"jwt: {'/'.join(asym)} accepted but public_key_file is not set")
            pem = config.public_key_file.read_bytes()
            for alg in asym:
                # prepare_key refuses a key of the wrong type (e.g. an EC key for RS256).
                try:
                    self._keys[alg] = jwt.get_algorithm_by_name(alg).prepare_key(pem)  # type: ignore[no-untyped-call]
                except (ValueError, TypeError, jwt.InvalidKeyError):
                    continue
            if not any(a in self._keys for a in asym):
                raise ValueError(f"jwt: public_key_file is not a key for {'/'.join(asym)}")

    def verify(self, token: str) -> Principal:
        """Return the token's principal or raise `Unauthenticated` with the reason.

        A token that verified is remembered (by SHA-256) until its ``exp``, so repeated calls
        skip the signature check; anything else about it cannot change while it is valid.
        """
        if len(token) > _MAX_TOKEN_CHARS:
            raise Unauthenticated("invalid token: too long")
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._verified.get(digest)
        if hit is not None and self._now() < hit[1]:
            return hit[0]
        principal, expires = self._verify_signed(token)
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()  # bounded; refilled by the tokens actually in use
        self._verified[digest] = (principal, expires)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, float]:
        cfg, jwt = self._cfg, _pyjwt()
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token: malformed JWT") from None
        key = self._keys.get(alg) if isinstance(alg, str) else None
        if key is None:
            raise Unauthenticated(f"invalid token: algorithm {str(alg)[:16]!r} not accepted")
        required = ["exp", "sub"] + (["iss"] if cfg.issuer else []) + (["aud"] if cfg.audience else [])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                issuer=cfg.issuer,
                audience=cfg.audience,
                leeway=cfg.leeway_s,
                options={"require": required, "verify_aud": cfg.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("invalid token: expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("invalid token: not yet valid") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("invalid token: wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("invalid token: wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"invalid token: missing claim {exc.claim}") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token: bad signature or claims") from None
        return self._principal(claims), float(claims["exp"])

    def _principal(self, claims: dict[str, Any]) -> Principal:
        cfg = self._cfg
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 200:
            raise Unauthenticated("invalid token: bad 'sub' claim")
        raw_level = claims.get(cfg.level_claim)
        try:
            level = cfg.default_level if raw_level is None else Level.parse(raw_level)
        except ValueError:
            raise Unauthenticated(f"invalid token: bad '{cfg.level_claim}' claim") from None
        if level > cfg.max_level:
            raise Unauthenticated(f"invalid token: level {level.name} above what JWTs may grant")
        roles = claims.get(cfg.roles_claim, [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated(f"invalid token: bad '{cfg.roles_claim}' claim")
        try:
            rate = parse_rate(claims.get(cfg.rate_limit_claim))
        except ValueError:
            raise Unauthenticated(f"invalid token: bad '{cfg.rate_limit_claim}' claim") from None
        jti = claims.get("jti")
        return Principal(
            sub, level, frozenset(roles), via="jwt", credential_id=str(jti)[:100] if jti else "", rate=rate
        )
