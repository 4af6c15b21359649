from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from services.workflow._schedule import ScheduleConfig, Scheduler, slot_key, slots_between
from tests.unit.workflow._fakes import FakeClock

T0 = dt.datetime(2026, 1, 1, 12, 0, 30, tzinfo=dt.UTC).timestamp()  # 30 s past a minute


def every_minute(name: str = "m", catch_up: bool = False) -> ScheduleConfig:
    return ScheduleConfig(name=name, cron="* * * * *", workflow="echo", catch_up=catch_up)


def test_slot_key_is_stable_and_names_the_slot() -> None:
    assert slot_key("nightly", T0 - 30) == "schedule:nightly:2026-01-01T12:00:00Z"


def test_slots_between_is_half_open() -> None:
    start = T0 - 30
    assert slots_between("* * * * *", start, start + 180) == [start + 60, start + 120, start + 180]


def test_invalid_cron_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="invalid cron"):
        ScheduleConfig(name="x", cron="every tuesday", workflow="echo")


async def test_ticks_fire_each_slot_once() -> None:
    clock, fired = FakeClock(T0), []

    async def start(s: ScheduleConfig, slot: float) -> None:
        fired.append(slot_key(s.name, slot))

    sched = Scheduler([every_minute()], start, clock, clock.sleep)
    assert await sched.tick() == []
    clock.advance(30)  # reaches 12:01:00
    await sched.tick()
    await sched.tick()  # same instant again: nothing new
    clock.advance(125)  # through 12:02 and 12:03
    await sched.tick()
    assert fired == [
        "schedule:m:2026-01-01T12:01:00Z",
        "schedule:m:2026-01-01T12:02:00Z",
        "schedule:m:2026-01-01T12:03:00Z",
    ]


async def test_catch_up_fires_the_latest_missed_slot_at_start() -> None:
    clock, fired = FakeClock(T0), []

    async def start(s: ScheduleConfig, slot: float) -> None:
        fired.append(slot_key(s.name, slot))

    await Scheduler([every_minute(catch_up=True)], start, clock).tick()
    assert fired == ["schedule:m:2026-01-01T12:00:00Z"]


async def test_a_failing_slot_does_not_stop_other_schedules() -> None:
    clock, fired = FakeClock(T0), []

    async def start(s: ScheduleConfig, slot: float) -> None:
        if s.name == "bad":
            raise RuntimeError("store down")
        fired.append(s.name)

    sched = Scheduler([every_minute("bad"), every_minute("good")], start, clock)
    clock.advance(30)
    assert len(await sched.tick()) == 2
    assert fired == ["good"]


async def test_next_due_and_run_sleep_until_the_slot() -> None:
    clock = FakeClock(T0)
    sched = Scheduler([every_minute()], lambda s, t: _noop(), clock, clock.sleep)
    assert sched.next_due() == T0 + 30


async def _noop() -> None:
    return None
