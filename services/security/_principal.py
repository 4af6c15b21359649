"""Who is calling: a subject, an ordered security level, and a set of roles."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common import SecurityLevel
from services.security._ratelimit import Rate

__all__ = ["Level", "Principal"]


Level = SecurityLevel
"""The security level (`services.common.SecurityLevel`; one definition for every service)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. Immutable so it can be cached and shared across requests."""

    subject: str
    level: Level
    roles: frozenset[str] = field(default_factory=frozenset)
    via: str = ""
    """How the principal was established: ``api_key`` or ``jwt`` (for audit records)."""
    credential_id: str = ""
    """API key id or JWT ``jti``: identifies the credential in audit records, never the secret."""
    rate: Rate | None = None
    """The credential's own rate limit (key entry ``rate_limit``, JWT claim); None: the config's."""

    def has_any_role(self, roles: frozenset[str]) -> bool:
        """True when ``roles`` is empty (no role required) or shares a role with this principal."""
        return not roles or not roles.isdisjoint(self.roles)
