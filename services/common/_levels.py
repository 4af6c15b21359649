"""The two ordered levels every service shares, and their only converters.

`SecurityLevel` (who may do what) and `DegradationLevel` (how much work the system accepts)
cross every service boundary: config files name them, the contracts carry them as proto
enums, services compare them. Both are `IntEnum`s whose order is the domain order (``<``
and ``max`` mean "less/most privileged", "less/most severe"); their int values are NOT the
proto values (proto 0 is UNSPECIFIED), so every conversion goes through the functions here,
never through ``int(level) + 1`` or an f-string of the enum name.

`new_run_refusal` is what each degradation level admits: the one rule both healthd's
``readiness`` and the workflow service's admission follow, so readiness is SERVING exactly
when an ordinary StartRun would be admitted.

Config strings are the member names, case-insensitive (``"read_only"`` is READ_ONLY); use
the ``*Name`` annotated types in pydantic models so a config file names the level while the
program holds the enum.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import Annotated, Self

from pydantic import BeforeValidator, PlainSerializer

from services.common._errors import ResourceExhausted, Unavailable, VigilError
from vigil.healthd.v1 import healthd_pb2 as _hpb
from vigil.security.v1 import security_pb2 as _spb

__all__ = [
    "DegradationLevel",
    "DegradationLevelName",
    "SecurityLevel",
    "SecurityLevelName",
    "degradation_level_pb",
    "new_run_refusal",
    "security_level_pb",
]

_log = logging.getLogger(__name__)


class _OrderedLevel(enum.IntEnum):
    """An ordered level named in config files by its member name."""

    @classmethod
    def parse(cls, value: object) -> Self:
        """A level from its name (case-insensitive) or an existing level.

        Raises:
            ValueError: naming the bad value and the accepted names.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        what = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__).lower()  # "security level"
        names = ", ".join(m.name for m in cls)
        raise ValueError(f"unknown {what} {str(value)[:40]!r}; expected one of {names}")


class SecurityLevel(_OrderedLevel):
    """Security levels, ordered: a principal may do what any lower level may do."""

    PUBLIC = 0
    AUTHENTICATED = 1
    PRIVILEGED = 2
    ADMIN = 3

    @classmethod
    def from_proto(cls, value: int) -> SecurityLevel | None:
        """UNSPECIFIED (and values unknown to this release) -> None: no level given."""
        return _SECURITY_FROM_PB.get(value)

    def to_proto(self) -> _spb.SecurityLevel.ValueType:
        return _SECURITY_TO_PB[self]


class DegradationLevel(_OrderedLevel):
    """Degradation levels, ordered from best to worst (ARCHITECTURE.md, Health model)."""

    NORMAL = 0
    DEGRADED = 1
    RESTRICTED = 2
    READ_ONLY = 3
    OFFLINE = 4

    @classmethod
    def from_proto(cls, value: int) -> DegradationLevel:
        """UNSPECIFIED and values unknown to this release (a newer healthd's) are NORMAL:
        healthd is advisory, and an unknown word must not stop work (logged as a warning)."""
        level = _DEGRADATION_FROM_PB.get(value)
        if level is None:
            if value != _hpb.DEGRADATION_LEVEL_UNSPECIFIED:
                _log.warning("unknown degradation level %d from healthd; treated as NORMAL", value)
            return cls.NORMAL
        return level

    def to_proto(self) -> _hpb.DegradationLevel.ValueType:
        return _DEGRADATION_TO_PB[self]


_SECURITY_TO_PB: dict[SecurityLevel, _spb.SecurityLevel.ValueType] = {
    SecurityLevel.PUBLIC: _spb.SECURITY_LEVEL_PUBLIC,
    SecurityLevel.AUTHENTICATED: _spb.SECURITY_LEVEL_AUTHENTICATED,
    SecurityLevel.PRIVILEGED: _spb.SECURITY_LEVEL_PRIVILEGED,
    SecurityLevel.ADMIN: _spb.SECURITY_LEVEL_ADMIN,
}
_SECURITY_FROM_PB: dict[int, SecurityLevel] = {pb: level for level, pb in _SECURITY_TO_PB.items()}
_DEGRADATION_TO_PB: dict[DegradationLevel, _hpb.DegradationLevel.ValueType] = {
    DegradationLevel.NORMAL: _hpb.DEGRADATION_LEVEL_NORMAL,
    DegradationLevel.DEGRADED: _hpb.DEGRADATION_LEVEL_DEGRADED,
    DegradationLevel.RESTRICTED: _hpb.DEGRADATION_LEVEL_RESTRICTED,
    DegradationLevel.READ_ONLY: _hpb.DEGRADATION_LEVEL_READ_ONLY,
    DegradationLevel.OFFLINE: _hpb.DEGRADATION_LEVEL_OFFLINE,
}
_DEGRADATION_FROM_PB: dict[int, DegradationLevel] = {pb: level for level, pb in _DEGRADATION_TO_PB.items()}


def security_level_pb(level: SecurityLevel | None) -> _spb.SecurityLevel.ValueType:
    """The proto value of an optional level (None -> UNSPECIFIED)."""
    return _spb.SECURITY_LEVEL_UNSPECIFIED if level is None else level.to_proto()


def degradation_level_pb(level: DegradationLevel | None) -> _hpb.DegradationLevel.ValueType:
    """The proto value of an optional level (None -> NORMAL: no degradation applied)."""
    return (level or DegradationLevel.NORMAL).to_proto()


SecurityLevelName = Annotated[
    SecurityLevel, BeforeValidator(SecurityLevel.parse), PlainSerializer(lambda lv: lv.name, return_type=str)
]
"""A `SecurityLevel` field of a config model: written as its name, held as the enum."""
DegradationLevelName = Annotated[
    DegradationLevel,
    BeforeValidator(DegradationLevel.parse),
    PlainSerializer(lambda lv: lv.name, return_type=str),
]
"""A `DegradationLevel` field of a config model: written as its name, held as the enum."""


def new_run_refusal(
    level: DegradationLevel, *, privileged: bool = False, priority: int = 0, retry_after_s: float = 1.0
) -> VigilError | None:
    """Why a new run is refused at ``level``, or None when it is admitted.

    NORMAL and DEGRADED admit every run. RESTRICTED sheds low-priority work (priority < 0)
    and non-privileged callers: RESOURCE_EXHAUSTED. READ_ONLY and OFFLINE refuse every new
    run because a component is down: UNAVAILABLE, retryable (healing is under way), never
    FAILED_PRECONDITION, which tells a caller to change something first. Both carry
    ``retry_after_s`` as RetryInfo. With the defaults (an ordinary caller) this is the
    readiness rule.
    """
    if level >= DegradationLevel.READ_ONLY:
        return Unavailable(
            f"the system is {level.name} (a component is down): new runs are not accepted; retry later",
            retry_after_s=retry_after_s,
        )
    if level is DegradationLevel.RESTRICTED and (priority < 0 or not privileged):
        return ResourceExhausted(
            "the system is RESTRICTED: only privileged, non-low-priority runs are accepted",
            retry_after_s=retry_after_s,
        )
    return None
