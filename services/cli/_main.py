"""The ``vigil`` command: parse, dispatch, and turn every failure into one line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import grpc

from healthd import _cli as health
from services.cli._ctl import add_ctl_commands, run_ctl_command
from services.cli._output import error
from services.cli._runs import CLIENT_DEFAULTS, EXIT_ERROR, add_runs_commands, run_runs_command
from services.cli._settings import Settings, TokenNotFound
from services.common import ConfigError, VigilError

__all__ = ["main", "parser"]

_HEALTH = {"status": health.status, "watch": health.watch, "probe": health.probe}

_EPILOG = """\
Addresses come from the stack's config files (--config-dir, $VIGIL_CONFIG_DIR, else
./deploy/local) and VIGIL_* variables, as the processes read them: e.g.
VIGIL_HEALTHD_SERVER__PORT, VIGIL_WORKFLOW_SERVER__PORT, VIGIL_SECURITY_SERVER__PORT,
VIGIL_HEALTHD_HTTP__PORT. The token: --token, --token-file, $VIGIL_TOKEN, .vigil/dev-token.
Every command takes --json (health commands: -json). `vigil COMMAND --help` for details.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vigil",
        description="Operate a Vigil stack: health, runs, workflows and supervised components.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config-dir", help="directory of the stack's healthd/workflow/security.yaml")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _HEALTH:
        # Parsed by healthd's client commands (grpc_health_probe-style flags); listed here for --help.
        h = sub.add_parser(name, help=health.DESCRIPTIONS[name], add_help=False)
        h.add_argument("rest", nargs=argparse.REMAINDER)
    add_runs_commands(sub)
    add_ctl_commands(sub)
    return p


def _describe(exc: VigilError) -> str:
    code = exc.code.name
    message = str(exc)
    return message if message.startswith(code) else f"{code}: {message}"


def _health_argv(argv: list[str]) -> tuple[str, list[str]] | None:
    """(health command, its own argv) when ``argv`` names one, after ``--config-dir`` if given.

    Dispatched before argparse: a subparser's REMAINDER does not take a first argument that
    starts with a dash, so ``vigil --config-dir D status -json`` failed as "unrecognized".
    """
    own: list[str] = []
    if argv[:1] == ["--config-dir"] and len(argv) >= 2:
        own, argv = ["-config-dir", argv[1]], argv[2:]
    elif argv and argv[0].startswith("--config-dir="):
        own, argv = ["-config-dir", argv[0].partition("=")[2]], argv[1:]
    if argv and argv[0] in _HEALTH:
        return argv[0], [*own, *argv[1:]]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    health_cmd = _health_argv(args_list)
    if health_cmd is not None:  # flags of their own, exit codes of grpc_health_probe
        return _HEALTH[health_cmd[0]](health_cmd[1], prog="vigil")
    args = parser().parse_args(args_list)
    if args.command in _HEALTH:
        return _HEALTH[args.command](
            [*(["-config-dir", args.config_dir] if args.config_dir else []), *args.rest], prog="vigil"
        )
    for name, default in CLIENT_DEFAULTS.items():  # flags given at no level of the command
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        settings = Settings.resolve(args.config_dir)
        if args.command == "ctl":
            return run_ctl_command(args, settings)
        return asyncio.run(run_runs_command(args, settings))
    except VigilError as exc:
        text = _describe(exc)
        if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            text += " (is the stack running? addresses follow --config-dir and VIGIL_* variables)"
        error(text)
    except (TokenNotFound, ConfigError, ValueError, OSError) as exc:
        error(str(exc))
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR
