"""Audit records of one batch of requests, committed in one transaction (ScreenStream).

A batch handler (`services/security/_stream.py`) starts its requests' tasks inside
`audit_group()`; the tasks inherit the group through their context. Each record a member
appends (`AuditLog.append_async` -> `submit_record`) is held until the end of the event-loop
turn, then every record held is handed to the audit writer as one unit
(`BatchWriter.submit_all`): one transaction, one fsync, for the whole batch.

Invariant: a record is held for at most one loop turn, so grouping never delays a request
behind a slower one. The requests of a batch reach their audit step in the same turn when
none of them suspends before it (the usual case: cached key, cached schema, inline checks);
a request whose checks ran on the check pool comes later and is committed with whatever
reaches the audit step in its own turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, TypeVar

from services.common import BatchWriter

__all__ = ["audit_group", "submit_record"]

I = TypeVar("I")  # noqa: E741 -- the item type
R = TypeVar("R")

_GROUP: contextvars.ContextVar[_Group | None] = contextvars.ContextVar("vigil_audit_group", default=None)


class _Held:
    """One writer's records held this turn, and the future of their commit's outcomes."""

    __slots__ = ("items", "outcomes")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.items: list[Any] = []
        self.outcomes: asyncio.Future[list[Any]] = loop.create_future()


class _Group:
    """Records held during one loop turn, by writer (in practice one audit log)."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[BatchWriter[Any, Any], _Held]] = {}
        self._commits: set[asyncio.Task[None]] = set()  # strong references until done

    async def add(self, writer: BatchWriter[I, R], item: I) -> R:
        loop = asyncio.get_running_loop()
        if not self._held:
            loop.call_soon(self._flush)  # after every step already scheduled for this turn
        held = self._held.setdefault(id(writer), (writer, _Held(loop)))[1]
        index = len(held.items)
        held.items.append(item)
        # Shielded: a member cancelled meanwhile must not cancel the others' outcome.
        outcome = (await asyncio.shield(held.outcomes))[index]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    def _flush(self) -> None:
        held, self._held = self._held, {}
        for writer, entry in held.values():
            task = asyncio.ensure_future(_commit(writer, entry))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)


async def _commit(writer: BatchWriter[Any, Any], held: _Held) -> None:
    try:
        outcomes: list[Any] = await writer.submit_all(held.items)
    except Exception as exc:  # the writer is closed: nothing of the group was queued
        outcomes = [exc] * len(held.items)
    held.outcomes.set_result(outcomes)


@contextlib.contextmanager
def audit_group() -> Iterator[None]:
    """Tasks created inside commit their audit records together (see the module docstring)."""
    token = _GROUP.set(_Group())
    try:
        yield
    finally:
        _GROUP.reset(token)


async def submit_record(writer: BatchWriter[I, R], item: I) -> R:
    """``writer.submit(item)``, or held for the current task's audit group when it has one."""
    group = _GROUP.get()
    if group is None:
        return await writer.submit(item)
    return await group.add(writer, item)
