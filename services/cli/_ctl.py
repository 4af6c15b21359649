"""``vigil ctl``: supervisorctl for healthd's components (status, start/stop/restart, tail,
maintenance, heal). Names may be short: ``workflow`` is ``vigil.workflow.v1.WorkflowService``.

Control calls need an ADMIN token (found like every command's: --token, --token-file,
$VIGIL_TOKEN, .vigil/dev-token). Exit codes: 0 done, 2 bad usage or a failed call, 3 a followed
log (``tail -f``) ended because healthd stopped.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from typing import Any

import grpc

from services.cli._args import INT32_MAX, int_in
from services.cli._output import emit_json, enum_name, progress, table
from services.cli._runs import CALL_TIMEOUT_S, client_options, tls_flags
from services.cli._settings import Settings
from services.common import InvalidArgument, from_rpc_error, open_blocking_channel, rpc_code
from vigil.healthd.v1 import healthd_pb2 as _pb
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc

__all__ = ["add_ctl_commands", "resolve_component", "run_ctl_command", "short_name"]

CONTROL_TIMEOUT_S = 300.0
"""Deadline of start/stop/restart: healthd answers once the replicas have stopped and started."""
MAX_TAIL = 10_000
"""Largest ``tail -n`` (healthd's TailLog answers at most this many lines)."""
_GRPC_SERVICE = re.compile(r"^vigil\.(?P<short>[a-z0-9_]+)\.v\d+\.\w+$")


def short_name(name: str) -> str:
    """``vigil.workflow.v1.WorkflowService`` -> ``workflow``; other names are their own short name."""
    match = _GRPC_SERVICE.match(name)
    return match.group("short") if match else name


def resolve_component(names: Iterable[str], given: str) -> str:
    """The configured component ``given`` means: its exact name, else the one whose short name
    it is. Unknown names pass through unchanged, so healthd's own NOT_FOUND explains them.

    Raises:
        InvalidArgument: ``given`` is the short name of several components.
    """
    names = list(names)
    if given in names:
        return given
    matches = [n for n in names if short_name(n) == given]
    if len(matches) > 1:
        raise InvalidArgument(f"component {given!r} is ambiguous: {', '.join(matches)}")
    return matches[0] if matches else given


def _status_rows(health: _pb.SystemHealth) -> list[tuple[Any, ...]]:
    rows = []
    for c in health.components:
        replicas = ""
        if c.replicas_configured:
            replicas = f"{c.replicas_serving}/{c.replicas_configured}"
        rows.append(
            (
                short_name(c.name),
                enum_name(_pb.ComponentStatus, c.status, "COMPONENT_STATUS_"),
                enum_name(_pb.HealingState, c.healing_state, "HEALING_STATE_"),
                c.pid or "-",
                replicas or "-",
                c.restarts,
                ("[maintenance] " if c.maintenance else "") + (c.message or "")[:70],
            )
        )
    return rows


class _Ctl:
    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.args = args
        self.address = args.address or settings.address("healthd")
        self._settings = settings
        self.channel = open_blocking_channel(self.address, settings.client_tls("healthd", tls_flags(args)))
        self.stub = _pb_grpc.HealthDaemonStub(self.channel)

    def metadata(self) -> list[tuple[str, str]]:
        token = self._settings.token(self.args.token, self.args.token_file)
        return [("authorization", f"Bearer {token}")]

    def call(self, method: Any, request: Any, *, auth: bool = True, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        try:
            deadline = self.args.timeout or timeout_s
            return method(request, timeout=deadline, metadata=self.metadata() if auth else None)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def health(self) -> _pb.SystemHealth:
        return self.call(self.stub.GetSystemHealth, _pb.GetSystemHealthRequest(), auth=False).health

    def component(self, given: str) -> str:
        return resolve_component((c.name for c in self.health().components), given)


def run_ctl_command(args: argparse.Namespace, settings: Settings) -> int:
    ctl = _Ctl(args, settings)
    with ctl.channel:
        command = args.ctl_command
        if command == "status":
            health = ctl.health()
            if args.json:
                emit_json(health)
            else:
                print(
                    table(
                        ("NAME", "STATUS", "HEALING", "PID", "REPLICAS", "RESTARTS", "MESSAGE"),
                        _status_rows(health),
                    )
                )
            return 0
        name = ctl.component(args.name)
        if command == "maintenance":
            reply = ctl.call(
                ctl.stub.SetMaintenance,
                _pb.SetMaintenanceRequest(component=name, enabled=args.mode == "on", reason=args.reason),
            )
            _done(args, reply, f"{name}: maintenance {args.mode}")
            return 0
        if command == "heal":
            reply = ctl.call(ctl.stub.Heal, _pb.HealRequest(component=name, reason=args.reason))
            _done(
                args,
                reply,
                f"{name}: {reply.message or ('healing started' if reply.started else 'not started')}",
            )
            return 0
        return _control(ctl, args, name)


def _control(ctl: _Ctl, args: argparse.Namespace, name: str) -> int:
    """start/stop/restart and tail (healthd's ControlComponent and TailLog)."""
    if args.ctl_command == "tail":
        request = _pb.TailLogRequest(component=name, lines=args.lines, follow=args.follow)
        try:
            for msg in ctl.stub.TailLog(
                request,
                metadata=ctl.metadata(),
                timeout=None if args.follow else (args.timeout or CALL_TIMEOUT_S),
            ):
                if args.json:
                    emit_json(msg, line=True)
                else:
                    prefix = f"[{msg.replica}] " if msg.replica else ""
                    print(f"{prefix}{msg.line}", flush=True)
        except grpc.RpcError as exc:
            gone = rpc_code(exc) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            if not (args.follow and gone):
                raise from_rpc_error(exc) from None
        if args.follow:
            # A followed log never ends by itself: healthd closed it or went away (as `watch`: 3).
            print("error: healthd ended the log stream (it stopped or is shutting down)", file=sys.stderr)
            return 3
        return 0
    action = _pb.ControlAction.Value(f"CONTROL_ACTION_{args.ctl_command.upper()}")
    if not args.json:
        progress(f"{name}: {args.ctl_command} (waits for each replica's graceful stop and start)...")
    reply = ctl.call(
        ctl.stub.ControlComponent,
        _pb.ControlComponentRequest(component=name, action=action, replica=args.replica),
        timeout_s=CONTROL_TIMEOUT_S,
    )
    c = reply.component
    state = enum_name(_pb.ComponentStatus, c.status, "COMPONENT_STATUS_")
    _done(args, reply, f"{name}: {args.ctl_command} requested; now {state} pid={c.pid or '-'}")
    return 0


def _done(args: argparse.Namespace, reply: Any, text: str) -> None:
    if args.json:
        emit_json(reply)
    else:
        print(text)


def add_ctl_commands(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    client_options(common)
    ctl = sub.add_parser(
        "ctl",
        parents=[common],
        help="control supervised components (supervisorctl-like)",
        description=__doc__.split("\n\n")[0],
    )
    csub = ctl.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")
    csub.add_parser("status", parents=[common], help="components: status, healing, pid, replicas")
    for action, text in (
        ("start", "start a stopped (or FATAL) component"),
        ("stop", "stop a component"),
        ("restart", "restart a component"),
    ):
        p = csub.add_parser(action, parents=[common], help=text)
        p.add_argument("name", help="component name (short names accepted)")
        p.add_argument(
            "--replica", type=int_in(0, INT32_MAX), default=0, help="one replica (1-based); 0 = all"
        )
    tail = csub.add_parser("tail", parents=[common], help="last lines of a component's output")
    tail.add_argument("name")
    tail.add_argument("-n", "--lines", type=int_in(0, MAX_TAIL), default=20, help=f"0..{MAX_TAIL}")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    maint = csub.add_parser(
        "maintenance", parents=[common], help="maintenance on|off NAME (no checks, no healing)"
    )
    maint.add_argument("mode", choices=("on", "off"))
    maint.add_argument("name")
    maint.add_argument("--reason", default="")
    heal = csub.add_parser("heal", parents=[common], help="heal now (clears FATAL)")
    heal.add_argument("name")
    heal.add_argument("--reason", default="")
