"""ScreenStream: many Screen calls on one long-lived stream (the workflow service's hop).

Each request message is a batch of screenings (`ScreenCall`s). Every screening of a batch
runs as its own task, started in the same turn inside one `audit_group`, so the batch's
audit records are committed in one transaction; each is answered on its own as soon as it
is done. Results finished meanwhile share one response message (one write).

Invariants:
- A screening's refusal or failure is its own result (`Status`, the unary call's status and
  details); it never ends the stream. Only the transport, or the caller, ends it.
- At most ``max_in_flight`` screenings run per stream: the reader waits for a slot before
  starting the next one, and stops reading meanwhile, so HTTP/2 flow control pushes back on
  the caller instead of the server queueing without bound.
- When the caller half-closes, the screenings in flight are still answered, then the stream
  ends; when the stream is cancelled, they are cancelled (nobody is left to answer).
- Tracing: each screening is a SERVER span of ``Screen`` under the context its `ScreenCall`
  carries (what the unary call's metadata carries); the stream itself gets none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from services.common import (
    Observation,
    VigilError,
    carried_server_call,
    error_for,
    get_logger,
    status_code,
    status_proto,
)
from services.security._auditgroup import audit_group
from vigil.security.v1 import security_pb2 as _pb

__all__ = ["METHOD", "serve_screen_stream"]

METHOD = "/vigil.security.v1.SecurityService/ScreenStream"
SCREEN = "/vigil.security.v1.SecurityService/Screen"
_log = get_logger("vigil.security.stream")
"""The call each screening on the stream stands for (its span's name)."""

ScreenOne = Callable[[_pb.ScreenRequest], Awaitable[_pb.ScreenResponse]]


def _failed(call_id: int, exc: BaseException) -> _pb.ScreenResult:
    status = status_proto(error_for(exc, METHOD))
    return _pb.ScreenResult(
        id=call_id, status=_pb.Status(code=status.code, message=status.message, details=status.details)
    )


def _finish(obs: Observation, code: grpc.StatusCode, error: BaseException | None) -> None:
    """End a screening's span; a tracing failure is logged, never the screening's problem."""
    try:
        obs.finish(code, error)
    except Exception:
        _log.exception("ending a screening's span failed")


async def serve_screen_stream(
    requests: AsyncIterator[_pb.ScreenStreamRequest],
    context: grpc.aio.ServicerContext,
    screen: ScreenOne,
    max_in_flight: int,
) -> None:
    """Answer every ScreenCall read from ``requests`` with ``context.write`` (one writer task)."""
    slots = asyncio.Semaphore(max_in_flight)
    done: list[_pb.ScreenResult] = []
    ready = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    closing = False
    peer = context.peer() or ""

    async def one(call: _pb.ScreenCall) -> None:
        obs = carried_server_call(SCREEN, call.trace_context, peer)  # never raises
        error: BaseException | None = None
        try:
            with obs.activate():
                result = _pb.ScreenResult(id=call.id, response=await screen(call.request))
        except Exception as exc:  # this screening's outcome, not the stream's
            result = _failed(call.id, exc)
            # A domain error is an answer (its code tells), as the unary call's abort is; only
            # an unexpected exception (a bug) is recorded on the span as one.
            error = None if isinstance(exc, VigilError) else exc
        except BaseException as exc:  # cancelled with the stream: nobody to answer
            _finish(obs, grpc.StatusCode.CANCELLED, exc)
            raise
        finally:
            slots.release()
        done.append(result)
        ready.set()
        failed = result.HasField("status")
        _finish(obs, status_code(result.status.code) if failed else grpc.StatusCode.OK, error)

    async def write() -> None:
        while True:
            await ready.wait()
            await asyncio.sleep(0)  # one loop turn more: results finishing in it share the write
            ready.clear()
            batch = done[:]
            done.clear()
            if batch:
                await context.write(_pb.ScreenStreamResponse(results=batch))
            if closing and not done:
                return  # the reader has finished and every result is written

    writer = asyncio.create_task(write(), name="screen-stream-writer")
    try:
        async for message in requests:
            if writer.done():
                break  # the writer failed (caller gone): its error ends the stream below
            with audit_group():  # the batch's audit records: one transaction
                for call in message.calls:
                    # Returns at once while a slot is free (the batch's tasks start in one turn);
                    # else back-pressure: no reading until a screening finishes.
                    await slots.acquire()
                    task = asyncio.create_task(one(call))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        if tasks:  # half-closed: answer what is in flight
            await asyncio.gather(*tasks, return_exceptions=True)
        closing = True
        ready.set()
        await writer
    finally:
        for task in (*tasks, writer):
            task.cancel()
