"""A child's output file: lines forwarded and kept, rotation, following an existing file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from healthd._output import KEPT_BYTES, LINE_LIMIT, TRUNCATED, OutputLog, Tagged
from tests.healthd_util import eventually


def _write(log: OutputLog, text: str) -> None:
    fd = log.open_for_child()
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


async def test_lines_are_forwarded_kept_and_published(tmp_path: Path) -> None:
    sink: list[str] = []
    log = OutputLog(tmp_path / "logs" / "svc.log", "svc", sink.append)
    log.follow(from_end=False)
    queue: asyncio.Queue[Tagged | None] = asyncio.Queue()
    with log.subscribe(queue, 3):
        _write(log, "one\ntwo\npart")
        await eventually(lambda: len(sink) == 2)
        _write(log, "ial\n")
        await eventually(lambda: len(sink) == 3)
        assert sink == ["[svc] one", "[svc] two", "[svc] partial"]
        assert log.tail(2) == ["two", "partial"]
        assert [(await queue.get())[1:] for _ in range(3)] == [(3, "one"), (3, "two"), (3, "partial")]  # type: ignore[index]
        await log.stop()
        assert await queue.get() is None  # the end marker
    assert oct((tmp_path / "logs" / "svc.log").stat().st_mode & 0o777) == "0o600"


async def test_rotation_keeps_one_old_file(tmp_path: Path) -> None:
    sink: list[str] = []
    log = OutputLog(tmp_path / "svc.log", "svc", sink.append, max_bytes=4096)
    log.follow(from_end=False)
    _write(log, "x" * 100 + "\n" * 1 + ("y" * 99 + "\n") * 50)
    await eventually(lambda: len(sink) == 51)
    await eventually(lambda: (tmp_path / "svc.log.1").exists())
    assert (tmp_path / "svc.log").stat().st_size < 4096
    _write(log, "after\n")
    await eventually(lambda: sink[-1] == "[svc] after")
    await log.stop()


async def test_following_an_existing_file_seeds_without_forwarding_again(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    path.write_text("old 1\nold 2\n")
    sink: list[str] = []
    log = OutputLog(path, "svc", sink.append)
    log.follow(from_end=True)
    assert log.tail() == ["old 1", "old 2"]
    _write(log, "new\n")
    await eventually(lambda: sink == ["[svc] new"])
    await log.stop()


async def test_a_failing_sink_does_not_stop_the_follower(tmp_path: Path) -> None:
    # healthd's stderr can go away (a closed terminal, a dead `| tee`): the follower task died
    # on the first BrokenPipeError, silently, and with it TailLog, last_output and rotation.
    def broken(_line: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    log = OutputLog(tmp_path / "svc.log", "svc", broken, max_bytes=4096)
    log.follow(from_end=False)
    _write(log, "one\n")
    await eventually(lambda: log.tail(1) == ["one"])
    _write(log, "x" * 5000 + "\ntwo\n")
    await eventually(lambda: log.tail(1) == ["two"])
    await eventually(lambda: (tmp_path / "svc.log.1").exists())  # rotation goes on too
    await log.stop()


async def test_every_log_file_is_0600_even_the_rotated_one_and_files_left_wider(tmp_path: Path) -> None:
    # Files an older release left world-readable are narrowed too.
    (tmp_path / "svc.log").write_text("")
    (tmp_path / "svc.log.1").write_text("old rotation\n")
    os.chmod(tmp_path / "svc.log", 0o644)
    os.chmod(tmp_path / "svc.log.1", 0o644)
    old = os.umask(0o022)
    try:
        log = OutputLog(tmp_path / "svc.log", "svc", lambda _line: None, max_bytes=1024)
        log.follow(from_end=False)
        _write(log, ("z" * 99 + "\n") * 20)
        await eventually(lambda: (tmp_path / "svc.log.1").read_text().startswith("z"))
        await log.stop()
    finally:
        os.umask(old)
    for name in ("svc.log", "svc.log.1"):
        assert oct((tmp_path / name).stat().st_mode & 0o777) == "0o600", name


async def test_kept_lines_are_bounded_by_bytes_not_only_by_count(tmp_path: Path) -> None:
    # A child writing huge lines (each one MiB) or many long ones must not grow healthd's memory.
    log = OutputLog(tmp_path / "svc.log", "svc", lambda _line: None, max_bytes=64 << 20)
    log.follow(from_end=False)
    _write(log, ("h" * (1 << 20) + "\n") * 12 + ("m" * 8000 + "\n") * 1000 + "last\n")
    await eventually(lambda: log.tail(1) == ["last"], timeout=20)
    await log.stop()
    kept = sum(len(line) for _, line in log.lines)
    assert kept <= KEPT_BYTES < 12 << 20
    assert all(len(line) <= LINE_LIMIT + 64 for _, line in log.lines)
    huge = [line for _, line in log.lines if line.startswith("h")]
    assert all(line.endswith(TRUNCATED.format((1 << 20) - LINE_LIMIT)) for line in huge)
    assert log.tail(2) == ["m" * 8000, "last"]  # the newest are kept, the oldest went first
