"""Who is calling: a subject, an ordered security level, and a set of roles."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from services.security._ratelimit import Rate

__all__ = ["Level", "Principal"]


class Level(enum.IntEnum):
    """Security levels, ordered: a principal may do what any lower level may do."""

    PUBLIC = 0
    AUTHENTICATED = 1
    PRIVILEGED = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: object) -> Level:
        """Parse a level from its name (case-insensitive) or an existing ``Level``.

        Raises:
            ValueError: naming the bad value and the accepted names.
        """
        if isinstance(value, Level):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        names = ", ".join(m.name for m in cls)
        raise ValueError(f"unknown security level {str(value)[:40]!r}; expected one of {names}")


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
