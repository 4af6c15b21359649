"""The standard grpc.health.v1 service with Check, Watch and List.

grpcio-health-checking's servicers lack `List`, and its asyncio `Watch` holds one
`asyncio.Condition` per service that every watcher must re-acquire after each change,
so one slow watcher delays the rest. Here each watcher owns a one-slot mailbox
(latest status + an Event): `set()` writes every mailbox of the service without
awaiting anything, so a slow or closed watcher never stalls the others or the
setter, and a watcher that falls behind skips intermediate statuses and sees the
latest one, which the protocol allows ("peers are only interested in the eventual
status").

Invariant: `_status` and `_watchers` are only touched from the event loop thread;
no method awaits while holding them in an inconsistent state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2 as _hpb
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc

from services.common._interceptors import answers_own_errors, refuse_malformed

__all__ = ["HEALTH_SERVICE_NAME", "HealthServicer", "ServingStatus"]

HEALTH_SERVICE_NAME: str = _hpb.DESCRIPTOR.services_by_name["Health"].full_name
ServingStatus = _hpb.HealthCheckResponse.ServingStatus

_SERVING = _hpb.HealthCheckResponse.SERVING
_NOT_SERVING = _hpb.HealthCheckResponse.NOT_SERVING
_SERVICE_UNKNOWN = _hpb.HealthCheckResponse.SERVICE_UNKNOWN
_REQUEST = _hpb.HealthCheckRequest

# Responses are immutable once built; reuse one per status instead of allocating per Check.
_RESPONSES = {s: _hpb.HealthCheckResponse(status=s) for s in _hpb.HealthCheckResponse.ServingStatus.values()}


class _Mailbox:
    """One watcher's view: the latest status and a flag that it changed."""

    __slots__ = ("changed", "latest")

    def __init__(self, status: int) -> None:
        self.latest = status
        self.changed = asyncio.Event()

    def post(self, status: int) -> None:
        self.latest = status
        self.changed.set()


class HealthServicer(_hpb_grpc.HealthServicer):
    """grpc.health.v1 servicer: Check (NOT_FOUND if unknown), Watch (SERVICE_UNKNOWN if
    unknown, stream stays open), List (every registered service).

    Args:
        max_list: List answers RESOURCE_EXHAUSTED above this many services, as the
            protocol allows; generous by default (healthd may serve hundreds of components).
    """

    def __init__(self, max_list: int = 10_000) -> None:
        self._status: dict[str, int] = {}
        self._watchers: dict[str, set[_Mailbox]] = {}
        self._shutting_down = False
        self._max_list = max_list

    # --- state -----------------------------------------------------------------------
    def get(self, service: str) -> int | None:
        """Current status of ``service``, or None when it is not registered."""
        return self._status.get(service)

    def services(self) -> dict[str, int]:
        """A copy of every registered service's status."""
        return dict(self._status)

    async def set(self, service: str, status: int) -> None:
        """Set (or register) the status of ``service`` and notify its watchers.

        Ignored after `enter_graceful_shutdown`, so nothing flips a draining server back
        to SERVING.
        """
        if self._shutting_down:
            return
        self._publish(service, status)

    async def remove(self, service: str) -> None:
        """Unregister ``service``; its watchers see SERVICE_UNKNOWN."""
        if self._status.pop(service, None) is not None:
            for box in self._watchers.get(service, ()):
                box.post(_SERVICE_UNKNOWN)

    async def enter_graceful_shutdown(self) -> None:
        """Permanently set every service NOT_SERVING; later `set` calls are ignored."""
        if self._shutting_down:
            return
        self._shutting_down = True
        for service in list(self._status):
            self._publish(service, _NOT_SERVING)
        # Wake every watcher, also those whose service was NOT_SERVING already (no change to
        # post): each sends its latest status and ends instead of holding the drain open.
        for boxes in self._watchers.values():
            for box in boxes:
                box.changed.set()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def _publish(self, service: str, status: int) -> None:
        if self._status.get(service) == status:
            return
        self._status[service] = status
        for box in self._watchers.get(service, ()):
            box.post(status)

    # --- RPCs ------------------------------------------------------------------------
    @answers_own_errors  # the cheapest RPC there is: no error-mapping layer around it
    async def Check(
        self, request: _hpb.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> _hpb.HealthCheckResponse:
        if type(request) is not _REQUEST:
            await refuse_malformed(request, context)
        status = self._status.get(request.service)
        if status is None:
            # The name is the caller's (up to the request limit): echo only its start, so the
            # status fits a client's metadata limit and still reads as NOT_FOUND there.
            name = request.service if len(request.service) <= 200 else request.service[:200] + "..."
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {name!r}")
        return _RESPONSES[status]

    async def List(
        self, request: _hpb.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> _hpb.HealthListResponse:
        if len(self._status) > self._max_list:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{len(self._status)} services exceed the List limit of {self._max_list}; use Check",
            )
        return _hpb.HealthListResponse(statuses={name: _RESPONSES[s] for name, s in self._status.items()})

    async def Watch(
        self, request: _hpb.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[_hpb.HealthCheckResponse]:
        service = request.service
        box = _Mailbox(self._status.get(service, _SERVICE_UNKNOWN))
        self._watchers.setdefault(service, set()).add(box)
        try:
            last = box.latest
            yield _RESPONSES[last]
            while True:
                if box.latest != last:
                    last = box.latest
                    yield _RESPONSES[last]
                    continue
                # Only end once the latest status is delivered: the generator may have been
                # suspended at its previous yield when shutdown began. Ending after NOT_SERVING
                # keeps open watches from holding the server's drain for the grace period.
                if self._shutting_down:
                    return
                box.changed.clear()  # no await since the check above, so no post is lost
                await box.changed.wait()
        finally:
            boxes = self._watchers.get(service)
            if boxes is not None:
                boxes.discard(box)
                if not boxes:
                    del self._watchers[service]

    def watcher_count(self, service: str) -> int:
        """Number of open Watch streams on ``service`` (for tests and metrics)."""
        return len(self._watchers.get(service, ()))
