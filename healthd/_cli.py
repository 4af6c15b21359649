"""Client commands: ``probe`` (grpc_health_probe compatible), ``status`` and ``watch``.

Shared by ``vigil status|watch|probe`` and the older ``healthd status|watch|probe``. Flags follow
grpc_health_probe (single dash; double dash accepted too). Without ``-addr`` they dial healthd where
the stack's own config and ``VIGIL_HEALTHD_*`` variables put it (`services.cli.Settings`). Exit
codes: 0 serving, 1 bad arguments, 2 connection failure, 3 RPC failure (or the daemon went away
during ``watch``), 4 not serving (``status``: system UNHEALTHY).

TLS: ``probe`` speaks TLS when its ``-tls`` flags say so, as grpc_health_probe does; ``status``
and ``watch`` dial healthd as every ``vigil`` command does (the flags, ``VIGIL_CLI_TLS__*``,
``cli.yaml``, and TLS whenever healthd's own config serves it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2 as _hpb
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc

from services.cli._args import check_seconds
from services.cli._settings import Settings, TlsFlags
from services.common import ClientTLSConfig, ConfigError, open_blocking_channel
from vigil.healthd.v1 import healthd_pb2 as _pb
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc

EXIT_OK, EXIT_ARGS, EXIT_CONNECT, EXIT_RPC, EXIT_UNHEALTHY = 0, 1, 2, 3, 4
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class _ArgParser(argparse.ArgumentParser):
    """argparse that exits 1 on bad arguments (grpc_health_probe's code), not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_ARGS)


def duration(text: str) -> float:
    """Go-style duration (``1s``, ``250ms``, ``1.5s``, ``2m``) or plain seconds, in seconds."""
    match = _DURATION.match(text.strip())
    if match is None or len(text) > 32:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 1s, 250ms)")
    return check_seconds(float(match.group(1)) * _UNIT[match.group(2)], text)


def _client_flags(parser: argparse.ArgumentParser, addr_required: bool) -> None:
    # probe requires -addr as grpc_health_probe does; status/watch find healthd themselves.
    parser.add_argument(
        "-addr",
        "--addr",
        required=addr_required,
        help="host:port"
        if addr_required
        else "host:port (default: healthd's, from the stack's config and env)",
    )
    parser.add_argument(
        "-config-dir",
        "--config-dir",
        help="directory of the stack's healthd.yaml (default $VIGIL_CONFIG_DIR, else ./deploy/local)",
    )
    parser.add_argument("-tls", "--tls", action="store_true", help="use TLS")
    parser.add_argument(
        "-tls-ca-cert", "--tls-ca-cert", type=Path, help="CA bundle for the server certificate"
    )
    parser.add_argument("-tls-client-cert", "--tls-client-cert", type=Path, help="client certificate (mTLS)")
    parser.add_argument("-tls-client-key", "--tls-client-key", type=Path, help="client key (mTLS)")
    parser.add_argument("-tls-server-name", "--tls-server-name", help="override the TLS server name")
    parser.add_argument("-connect-timeout", "--connect-timeout", type=duration, default=1.0, help="e.g. 1s")
    parser.add_argument("-rpc-timeout", "--rpc-timeout", type=duration, default=1.0, help="e.g. 1s")
    parser.add_argument(
        "-rpc-header", "--rpc-header", action="append", default=[], help="'key: value' metadata (repeatable)"
    )


def _channel(args: argparse.Namespace, settings: Settings | None) -> grpc.Channel:
    """``settings``: the stack's, for status and watch: TLS as every other ``vigil`` command
    dials healthd (`Settings.client_tls`: the flags over ``VIGIL_CLI_TLS__*`` over ``cli.yaml``,
    and TLS when healthd's own config serves it). None for probe: its flags alone decide,
    as grpc_health_probe's do."""
    tls_files = (args.tls_ca_cert, args.tls_client_cert, args.tls_client_key)
    if not args.tls and any(tls_files):
        raise ValueError("-tls-* flags need -tls")
    if bool(args.tls_client_cert) != bool(args.tls_client_key):
        raise ValueError("-tls-client-cert and -tls-client-key go together")
    tls: ClientTLSConfig | None = None
    if settings is not None:
        ca, cert, key = (None if p is None else str(p) for p in tls_files)
        flags = TlsFlags(args.tls, ca, cert, key, args.tls_server_name or None)
        tls = settings.client_tls("healthd", flags)
    elif args.tls:
        tls = ClientTLSConfig(
            ca_file=args.tls_ca_cert,
            cert_file=args.tls_client_cert,
            key_file=args.tls_client_key,
            server_name=args.tls_server_name or None,
        )
    if tls is None:
        return grpc.insecure_channel(args.addr)
    return open_blocking_channel(args.addr, tls)  # an unreadable file: ConfigError naming it


def _metadata(args: argparse.Namespace) -> list[tuple[str, str]]:
    out = []
    for header in args.rpc_header:
        key, sep, value = header.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"-rpc-header must be 'key: value', got {header!r}")
        out.append((key.strip().lower(), value.strip()))
    return out


def _connect(args: argparse.Namespace, stack: bool) -> grpc.Channel | int:
    """A ready channel, or an exit code after printing why not; ``stack``: the address and TLS
    may come from the stack's settings (status, watch)."""
    try:
        settings = Settings.resolve(args.config_dir) if stack else None
        if not args.addr and settings is not None:
            args.addr = settings.address("healthd")
        channel = _channel(args, settings)
        _metadata(args)
    except (ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ARGS
    try:
        grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
    except grpc.FutureTimeoutError:
        print(
            f"timeout: failed to connect service {args.addr!r} within {args.connect_timeout:g}s",
            file=sys.stderr,
        )
        channel.close()
        return EXIT_CONNECT
    return channel


DESCRIPTIONS = {
    "probe": "grpc.health.v1 Check of one service, grpc_health_probe's flags and exit codes",
    "status": "the system health table (exit 4 when UNHEALTHY)",
    "watch": "stream health changes until interrupted (exit 3 when the daemon goes away)",
}


def _open(command: str, argv: Sequence[str], prog: str) -> tuple[argparse.Namespace, grpc.Channel | int]:
    """Parse a client command's flags and connect: (args, ready channel or exit code)."""
    parser = _ArgParser(prog=f"{prog} {command}", description=DESCRIPTIONS[command], epilog=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _client_flags(parser, addr_required=command == "probe")
    if command == "probe":
        parser.add_argument("-service", "--service", default="", help="service name to check ('' = overall)")
    else:
        parser.add_argument("-json", "--json", action="store_true", help="print messages as JSON")
    args = parser.parse_args(argv)
    return args, _connect(args, stack=command != "probe")


def probe(argv: Sequence[str], prog: str = "healthd") -> int:
    """grpc_health_probe: Check one service name; exit code says the outcome."""
    args, channel = _open("probe", argv, prog)
    if isinstance(channel, int):
        return channel
    with channel:
        try:
            resp = _hpb_grpc.HealthStub(channel).Check(
                _hpb.HealthCheckRequest(service=args.service),
                timeout=args.rpc_timeout,
                metadata=_metadata(args),
            )
        except grpc.RpcError as exc:
            code, details = _rpc_error(exc)
            if code is grpc.StatusCode.UNIMPLEMENTED:
                print(
                    f"error: this server does not implement the grpc health protocol ({args.addr})",
                    file=sys.stderr,
                )
            elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
                print(f"timeout: health rpc did not complete within {args.rpc_timeout:g}s", file=sys.stderr)
            else:
                print(f"error: health rpc failed: {code.name}: {details}", file=sys.stderr)
            return EXIT_RPC
    name = _hpb.HealthCheckResponse.ServingStatus.Name(resp.status)
    if resp.status != _hpb.HealthCheckResponse.SERVING:
        print(f"service unhealthy (responded with {name!r})", file=sys.stderr)
        return EXIT_UNHEALTHY
    print(f"status: {name}")
    return EXIT_OK


def _rpc_error(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """Code and details of a failed call (sync grpc raises RpcError that is also a Call)."""
    if isinstance(exc, grpc.Call):
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.UNKNOWN, str(exc)


def _enum(enum: object, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)  # type: ignore[attr-defined]


def format_table(health: _pb.SystemHealth) -> str:
    """The system health table printed by ``healthd status``."""
    system = _enum(_pb.SystemStatus, health.status, "SYSTEM_STATUS_")
    level = _enum(_pb.DegradationLevel, health.degradation_level, "DEGRADATION_LEVEL_")
    lines = [
        f"system: {system}  score: {health.score}  level: {level}  "
        f"live: {'yes' if health.live else 'NO'}  ready: {'yes' if health.ready else 'no'}",
        "",
        f"{'COMPONENT':<40} {'STATUS':<12} {'HEALING':<12} {'CRIT':<5} {'PID':>7} {'RESTARTS':>8}  MESSAGE",
    ]
    for c in health.components:
        status = _enum(_pb.ComponentStatus, c.status, "COMPONENT_STATUS_")
        heal = _enum(_pb.HealingState, c.healing_state, "HEALING_STATE_")
        message = f"blocked by {c.blocked_by}" if c.blocked_by else c.message
        if c.maintenance:
            message = f"[maintenance] {message}"
        lines.append(
            f"{c.name:<40} {status:<12} {heal:<12} {'yes' if c.critical else 'no':<5} "
            f"{c.pid or '-':>7} {c.restarts:>8}  {message[:80]}"
        )
    lines += _trouble_output(health)
    return "\n".join(lines)


OUTPUT_LINES = 10
"""Lines of a failing process's output shown under the table."""


def _trouble_output(health: _pb.SystemHealth) -> list[str]:
    """The last output lines of every replica that is not serving (why it failed)."""
    out: list[str] = []
    for c in health.components:
        for r in c.replicas:
            if r.status == _pb.COMPONENT_STATUS_SERVING or not r.last_output:
                continue
            state = _enum(_pb.HealingState, r.healing_state, "HEALING_STATE_")
            which = f" replica {r.replica}" if len(c.replicas) > 1 else ""
            out += ["", f"{c.name}{which} ({state}, {r.message[:60]}), last output:"]
            out += [f"  {line[:200]}" for line in r.last_output[-OUTPUT_LINES:]]
    return out


def status(argv: Sequence[str], prog: str = "healthd") -> int:
    """Print the system health table of a running healthd; exit 4 when UNHEALTHY."""
    args, channel = _open("status", argv, prog)
    if isinstance(channel, int):
        return channel
    with channel:
        try:
            resp = _pb_grpc.HealthDaemonStub(channel).GetSystemHealth(
                _pb.GetSystemHealthRequest(), timeout=args.rpc_timeout, metadata=_metadata(args)
            )
        except grpc.RpcError as exc:
            code, details = _rpc_error(exc)
            print(f"error: {code.name}: {details}", file=sys.stderr)
            return EXIT_RPC
    print(json_format.MessageToJson(resp.health) if args.json else format_table(resp.health))
    return EXIT_UNHEALTHY if resp.health.status == _pb.SYSTEM_STATUS_UNHEALTHY else EXIT_OK


def watch(argv: Sequence[str], prog: str = "healthd") -> int:
    """Stream changes (events and the resulting system status) until interrupted.

    The stream never ends while healthd runs, so its end (even a clean one, at healthd's
    shutdown) is reported as an error with exit code 3.
    """
    args, channel = _open("watch", argv, prog)
    if isinstance(channel, int):
        return channel
    with channel:
        stream = _pb_grpc.HealthDaemonStub(channel).WatchSystemHealth(
            _pb.WatchSystemHealthRequest(), metadata=_metadata(args)
        )
        try:
            for update in stream:
                if args.json:
                    print(json_format.MessageToJson(update, indent=None), flush=True)
                    continue
                h = update.health
                system = _enum(_pb.SystemStatus, h.status, "SYSTEM_STATUS_")
                level = _enum(_pb.DegradationLevel, h.degradation_level, "DEGRADATION_LEVEL_")
                for e in update.events:
                    kind = _enum(_pb.EventType, e.type, "EVENT_TYPE_")
                    change = f" {e.from_value} -> {e.to_value}" if e.from_value or e.to_value else ""
                    print(f"{e.time.ToJsonString()} {kind:<26} {e.component or '-'}{change}: {e.message}")
                print(
                    f"== system {system} score={h.score} level={level} live={h.live} ready={h.ready}",
                    flush=True,
                )
        except grpc.RpcError as exc:
            code, details = _rpc_error(exc)
            print(f"error: stream ended: {code.name}: {details}", file=sys.stderr)
            return EXIT_RPC
        except KeyboardInterrupt:
            return EXIT_OK
    print(f"error: healthd at {args.addr} ended the stream (it is shutting down)", file=sys.stderr)
    return EXIT_RPC
