"""Draining a thread's work queue in batches (group commit on writer threads)."""

from __future__ import annotations

import queue
from typing import Any

__all__ = ["next_batch"]


def next_batch(
    q: queue.SimpleQueue[Any], stop: object, limit: int = 1 << 30, timeout: float | None = None
) -> tuple[list[Any], bool]:
    """Wait for one item, then take whatever else is queued already (at most ``limit``).

    Returns the batch and whether the ``stop`` marker was taken (items queued behind the
    marker stay queued). Whoever waits on the queue gets the whole backlog in one go: that
    is what lets N concurrent requests share one transaction. With ``timeout``, an empty
    batch means nothing arrived for that long (the queue was idle).
    """
    batch: list[Any] = []
    try:
        item = q.get(timeout=timeout)
    except queue.Empty:
        return batch, False
    while True:
        if item is stop:
            return batch, True
        batch.append(item)
        if len(batch) >= limit:
            return batch, False
        try:
            item = q.get_nowait()
        except queue.Empty:
            return batch, False
