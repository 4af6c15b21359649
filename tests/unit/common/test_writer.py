"""BatchWriter: group commit on one thread, per-item outcomes, whole-batch failure, close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.common import BatchWriter


class Recorder:
    """A handler that records each batch; ``gate`` holds the thread inside a batch until set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, batch: list[int]) -> list[int | BaseException]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(batch)
        if -1 in batch:
            raise OSError("commit failed")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in batch]


async def test_items_queued_while_busy_share_one_batch_in_order() -> None:
    rec = Recorder()
    writer: BatchWriter[int, int] = BatchWriter(rec, name="t-writer")
    rec.gate.clear()
    first = asyncio.ensure_future(writer.submit(0))
    await asyncio.to_thread(rec.entered.wait, 10)  # the thread is inside batch [0]
    rest = [asyncio.ensure_future(writer.submit(i)) for i in range(1, 30)]
    await asyncio.sleep(0)  # let every submit reach the queue
    rec.gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [i * 10 for i in range(1, 30)]
    assert rec.batches == [[0], list(range(1, 30))]
    writer.close()


async def test_an_item_error_reaches_its_caller_alone() -> None:
    rec = Recorder()
    writer: BatchWriter[int, int] = BatchWriter(rec, name="t-writer")
    results = await asyncio.gather(*(writer.submit(i) for i in (1, -2, 3)), return_exceptions=True)
    assert results[0] == 10 and results[2] == 30
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad -2"
    writer.close()


async def test_a_failed_batch_fails_every_caller_and_the_thread_lives_on() -> None:
    rec = Recorder()
    writer: BatchWriter[int, int] = BatchWriter(rec, name="t-writer")
    rec.gate.clear()
    blocker = asyncio.ensure_future(writer.submit(7))
    await asyncio.to_thread(rec.entered.wait, 10)
    doomed = [asyncio.ensure_future(writer.submit(i)) for i in (5, -1, 6)]
    await asyncio.sleep(0)
    rec.gate.set()
    assert await blocker == 70
    results = await asyncio.gather(*doomed, return_exceptions=True)
    assert [type(r) for r in results] == [OSError] * 3
    assert await writer.submit(8) == 80  # the next batch commits
    writer.close()


async def test_close_handles_what_was_accepted_then_refuses() -> None:
    rec = Recorder()
    writer: BatchWriter[int, int] = BatchWriter(rec, name="t-writer", closed=lambda: LookupError("closed"))
    rec.gate.clear()
    pending = [asyncio.ensure_future(writer.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(asyncio.to_thread(writer.close))
    await asyncio.sleep(0.05)
    rec.gate.set()
    await closing
    assert await asyncio.gather(*pending) == [0, 10, 20, 30, 40]
    with pytest.raises(LookupError, match="closed"):
        await writer.submit(9)
    writer.close()  # idempotent


async def test_a_cancelled_caller_does_not_stop_the_writer() -> None:
    rec = Recorder()
    writer: BatchWriter[int, int] = BatchWriter(rec, name="t-writer")
    rec.gate.clear()
    cancelled = asyncio.ensure_future(writer.submit(1))
    await asyncio.to_thread(rec.entered.wait, 10)
    cancelled.cancel()
    rec.gate.set()
    assert await writer.submit(2) == 20
    assert rec.batches[0] == [1]  # handled all the same
    writer.close()
