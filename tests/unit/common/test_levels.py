"""The shared level vocabulary: every enum value round-trips through its proto and config forms."""

from __future__ import annotations

import logging

import pytest

from services.common import (
    ConfigModel,
    DegradationLevel,
    DegradationLevelName,
    SecurityLevel,
    SecurityLevelName,
    degradation_level_pb,
    security_level_pb,
)
from vigil.healthd.v1 import healthd_pb2 as hpb
from vigil.security.v1 import security_pb2 as spb


@pytest.mark.parametrize("level", list(SecurityLevel))
def test_security_level_round_trips(level: SecurityLevel) -> None:
    pb = level.to_proto()
    assert spb.SecurityLevel.Name(pb) == f"SECURITY_LEVEL_{level.name}"
    assert SecurityLevel.from_proto(pb) is level
    assert SecurityLevel.parse(level.name.lower()) is level and SecurityLevel.parse(level) is level


@pytest.mark.parametrize("level", list(DegradationLevel))
def test_degradation_level_round_trips(level: DegradationLevel) -> None:
    pb = level.to_proto()
    assert hpb.DegradationLevel.Name(pb) == f"DEGRADATION_LEVEL_{level.name}"
    assert DegradationLevel.from_proto(pb) is level
    assert DegradationLevel.parse(f" {level.name.lower()} ") is level


def test_every_proto_value_has_a_level() -> None:
    """A value added to a contract without a domain level fails here, not in production."""
    named = {v for v in spb.SecurityLevel.values() if v != spb.SECURITY_LEVEL_UNSPECIFIED}
    assert {lv.to_proto() for lv in SecurityLevel} == named
    named = {v for v in hpb.DegradationLevel.values() if v != hpb.DEGRADATION_LEVEL_UNSPECIFIED}
    assert {lv.to_proto() for lv in DegradationLevel} == named


def test_order_is_the_domain_order() -> None:
    assert SecurityLevel.PUBLIC < SecurityLevel.AUTHENTICATED < SecurityLevel.PRIVILEGED < SecurityLevel.ADMIN
    assert max(DegradationLevel.DEGRADED, DegradationLevel.READ_ONLY) is DegradationLevel.READ_ONLY
    levels = list(DegradationLevel)
    assert (min(levels), max(levels)) == (DegradationLevel.NORMAL, DegradationLevel.OFFLINE)


def test_unspecified_and_unknown_values(caplog: pytest.LogCaptureFixture) -> None:
    assert SecurityLevel.from_proto(spb.SECURITY_LEVEL_UNSPECIFIED) is None
    assert SecurityLevel.from_proto(99) is None
    assert security_level_pb(None) == spb.SECURITY_LEVEL_UNSPECIFIED
    assert degradation_level_pb(None) == hpb.DEGRADATION_LEVEL_NORMAL
    with caplog.at_level(logging.WARNING):
        assert DegradationLevel.from_proto(hpb.DEGRADATION_LEVEL_UNSPECIFIED) is DegradationLevel.NORMAL
        assert not caplog.records  # unspecified is not news
        assert DegradationLevel.from_proto(42) is DegradationLevel.NORMAL  # a newer healthd's word
    assert "unknown degradation level 42" in caplog.text


def test_bad_names_are_refused_with_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="unknown security level 'ROOT'; expected one of PUBLIC, "):
        SecurityLevel.parse("ROOT")
    with pytest.raises(ValueError, match="unknown degradation level '2'"):
        DegradationLevel.parse(2)  # a config file names the level; a number is not a name


class _Cfg(ConfigModel):
    level: SecurityLevelName = SecurityLevel.AUTHENTICATED
    degrades_to: DegradationLevelName | None = None


def test_config_fields_read_and_write_names() -> None:
    cfg = _Cfg.model_validate({"level": "admin", "degrades_to": "READ_ONLY"})
    assert cfg.level is SecurityLevel.ADMIN and cfg.degrades_to is DegradationLevel.READ_ONLY
    assert cfg.model_dump() == {"level": "ADMIN", "degrades_to": "READ_ONLY"}
    with pytest.raises(ValueError, match="expected one of NORMAL, DEGRADED"):
        _Cfg.model_validate({"degrades_to": "nope"})
