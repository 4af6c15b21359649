from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from services.common import InvalidArgument, ResourceExhausted, Unavailable
from services.workflow._schedule import ScheduleConfig, Scheduler, slot_key, slots_between
from tests.clock import FakeClock

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
    clock, fired = FakeClock(T0, sleep_advances=True), []

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
    clock, fired = FakeClock(T0, sleep_advances=True), []

    async def start(s: ScheduleConfig, slot: float) -> None:
        fired.append(slot_key(s.name, slot))

    await Scheduler([every_minute(catch_up=True)], start, clock).tick()
    assert fired == ["schedule:m:2026-01-01T12:00:00Z"]


async def test_a_failing_slot_does_not_stop_other_schedules() -> None:
    clock, fired = FakeClock(T0, sleep_advances=True), []

    async def start(s: ScheduleConfig, slot: float) -> None:
        if s.name == "bad":
            raise RuntimeError("store down")
        fired.append(s.name)

    sched = Scheduler([every_minute("bad"), every_minute("good")], start, clock)
    clock.advance(30)
    assert len(await sched.tick()) == 2
    assert fired == ["good"]


async def test_next_due_and_run_sleep_until_the_slot() -> None:
    clock = FakeClock(T0, sleep_advances=True)
    sched = Scheduler([every_minute()], lambda s, t: _noop(), clock, clock.sleep)
    assert sched.next_due() == T0 + 30


async def _noop() -> None:
    return None


async def test_a_slot_that_cannot_start_is_retried_with_backoff_until_it_starts() -> None:
    clock, started, attempts = FakeClock(T0, sleep_advances=True), [], []
    failures = [Unavailable("security service unavailable"), ResourceExhausted("shed", retry_after_s=5.0)]

    async def start(s: ScheduleConfig, slot: float) -> None:
        attempts.append(clock())
        if failures:
            raise failures.pop(0)
        started.append(slot_key(s.name, slot))

    sched = Scheduler([every_minute()], start, clock, clock.sleep)
    clock.advance(30)  # 12:01:00 is due; security is down
    assert await sched.tick() == []
    assert sched.pending("m") == [T0 + 30] and started == []
    assert sched.next_due() == clock() + 1.0  # first backoff, before the next slot
    clock.advance(0.5)
    await sched.tick()  # backing off: not tried again yet
    assert len(attempts) == 1
    clock.advance(0.5)
    await sched.tick()  # retried: shed, and RetryInfo asks for 5 s (more than the 2 s backoff)
    assert len(attempts) == 2 and sched.next_due() == clock() + 5.0
    clock.advance(5)
    assert await sched.tick() == [("m", T0 + 30)]
    assert started == ["schedule:m:2026-01-01T12:01:00Z"] and sched.pending("m") == []
    clock.advance(60)  # 12:02: back to normal, no backoff left over
    await sched.tick()
    assert started[-1] == "schedule:m:2026-01-01T12:02:00Z" and len(attempts) == 4


async def test_slots_missed_during_an_outage_start_in_order_once_it_ends() -> None:
    clock, started = FakeClock(T0, sleep_advances=True), []
    down = [True]

    async def start(s: ScheduleConfig, slot: float) -> None:
        if down[0]:
            raise Unavailable("run store unavailable")
        started.append(slot)

    sched = Scheduler([every_minute()], start, clock, clock.sleep)
    for _ in range(3):  # 12:01, 12:02, 12:03 all fail
        clock.advance(60)
        await sched.tick()
    assert started == [] and len(sched.pending("m")) == 3
    down[0] = False
    clock.advance(60)  # 12:04 too
    await sched.tick()
    assert started == [T0 + 30, T0 + 90, T0 + 150, T0 + 210]


async def test_a_slot_refused_for_good_is_given_up_and_others_go_on() -> None:
    clock, started = FakeClock(T0, sleep_advances=True), []

    async def start(s: ScheduleConfig, slot: float) -> None:
        if s.name == "bad":
            raise InvalidArgument("params: invalid")
        started.append(s.name)

    sched = Scheduler([every_minute("bad"), every_minute("good")], start, clock, clock.sleep)
    clock.advance(30)
    assert await sched.tick() == [("bad", T0 + 30), ("good", T0 + 30)]
    assert started == ["good"] and sched.pending("bad") == []
