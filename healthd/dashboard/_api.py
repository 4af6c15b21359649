"""The dashboard's JSON API beside the health state: runs and component controls.

    GET  /api/runs            recent runs, state counts, throughput and failure rate
    GET  /api/runs/{run_id}   one run: steps, errors, trace link
    POST /api/control         {"component", "action", "reason"}: heal, maintenance_on/off,
                              restart, stop, start (all replicas; short names accepted)

Both read the caller's ``Authorization: Bearer`` header; healthd keeps no token. Runs are
read from the workflow service *with* that token (its own authentication and visibility
apply); controls need an ADMIN token, verified by the same `AdminGate` as the gRPC Heal and
SetMaintenance, so they work while the security service is down. A browser cannot attach an
Authorization header to a cross-site request without a CORS preflight this server never
grants, so these POSTs cannot be forged by another page (and the Host check stops rebinding).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from healthd._control import Control
from healthd._service import AdminGate, Operator
from healthd._text import escape_controls
from healthd.dashboard._runs import RunsReader
from services.common import InvalidArgument, VigilError
from services.security import Principal

__all__ = ["ACTIONS", "DashboardApi", "error_response"]

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_MAX_ACTION_SHOWN = 40


def error_response(code: grpc.StatusCode, message: str) -> web.Response:
    """``{"error", "code"}`` with the HTTP status that means what the gRPC code means."""
    body = {"error": message, "code": code.name}
    return web.json_response(body, status=_HTTP_STATUS.get(code, 502), headers={"Cache-Control": "no-store"})


Action = Callable[["DashboardApi", Principal, str, str], Awaitable[dict[str, Any]]]


async def _heal(api: DashboardApi, who: Principal, component: str, reason: str) -> dict[str, Any]:
    started, message = await api.operator.heal(who, component, reason)
    return {"started": started, "message": message}


def _maintenance(on: bool) -> Action:
    async def act(api: DashboardApi, who: Principal, component: str, reason: str) -> dict[str, Any]:
        await api.operator.maintenance(who, component, on, reason)
        return {"started": True, "message": f"maintenance {'on' if on else 'off'}"}

    return act


def _control(action: Control) -> Action:
    async def act(api: DashboardApi, who: Principal, component: str, reason: str) -> dict[str, Any]:
        await api.operator.control(who, component, action, 0)
        return {"started": True, "message": f"{action.value} done"}

    return act


ACTIONS: dict[str, Action] = {
    "heal": _heal,
    "maintenance_on": _maintenance(True),
    "maintenance_off": _maintenance(False),
    "restart": _control(Control.RESTART),
    "stop": _control(Control.STOP),
    "start": _control(Control.START),
}


def _authorization(request: web.Request) -> list[tuple[str, str]]:
    value = request.headers.get("Authorization")
    return [("authorization", value)] if value else []


class DashboardApi:
    """Handlers of the runs view and the component controls."""

    def __init__(
        self,
        operator: Operator,
        gate: AdminGate,
        runs: RunsReader | None,
        on_change: Callable[[], None],
        resolve: Callable[[str], str] = lambda name: name,
    ) -> None:
        self.operator = operator
        self._resolve = resolve
        self._gate = gate
        self.runs = runs
        self._on_change = on_change

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/runs", self._overview)
        app.router.add_get("/api/runs/{run_id}", self._run)
        app.router.add_post("/api/control", self._control)

    async def close(self) -> None:
        if self.runs is not None:
            await self.runs.close()

    async def _read_runs(self, request: web.Request, fetch: Callable[[RunsReader, str], Any]) -> web.Response:
        if self.runs is None:
            msg = "the runs view is off: set dashboard.workflow_address in healthd's config"
            return error_response(grpc.StatusCode.FAILED_PRECONDITION, msg)
        auth = _authorization(request)
        if not auth:
            return error_response(
                grpc.StatusCode.UNAUTHENTICATED, "enter a token: the runs view reads as you"
            )
        try:
            body = await fetch(self.runs, auth[0][1])
        except grpc.aio.AioRpcError as err:
            return error_response(err.code(), err.details() or err.code().name)
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def _overview(self, request: web.Request) -> web.Response:
        return await self._read_runs(request, lambda r, auth: r.overview(auth))

    async def _run(self, request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        return await self._read_runs(request, lambda r, auth: r.run(auth, run_id))

    async def _control(self, request: web.Request) -> web.Response:
        try:
            principal = self._gate.require_admin(_authorization(request))
            body = await _json_body(request)
            action = str(body.get("action", ""))
            component = self._resolve(str(body.get("component", "")))
            reason = str(body.get("reason", ""))  # bounded by the operator (INVALID_ARGUMENT)
            act = ACTIONS.get(action)
            if act is None:
                known = ", ".join(sorted(ACTIONS))
                return error_response(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"unknown action '{escape_controls(action[:_MAX_ACTION_SHOWN])}'; known: {known}",
                )
            result = await act(self, principal, component, reason)
        except VigilError as exc:
            return error_response(exc.code, exc.message)
        self._on_change()
        return web.json_response({"component": component, "action": action, **result})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    return body
