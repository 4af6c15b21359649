"""``healthd``: run the daemon, or a client command.

healthd [--config PATH]            run the daemon (env overrides: VIGIL_HEALTHD_*)
healthd keep [--config PATH]       run the daemon and restart it whenever it dies (make run)
healthd status [--addr HOST:PORT]  print the system health table
healthd watch  [--addr HOST:PORT]  stream health changes
healthd probe -addr HOST:PORT [-service NAME] [-tls ...]   grpc_health_probe exit codes
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from healthd._cli import DESCRIPTIONS, probe, status, watch

_COMMANDS = {"probe": probe, "status": status, "watch": watch}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _COMMANDS:
        return _COMMANDS[args[0]](args[1:])
    if args and args[0] == "keep":
        from healthd._keeper import keep  # the daemon's imports are not paid by client commands

        return keep(args[1:])
    parser = argparse.ArgumentParser(
        prog="healthd",
        description="Vigil health daemon. Client commands (also `vigil status|watch|probe`):\n"
        + "\n".join(f"  healthd {name:<7} {text}" for name, text in DESCRIPTIONS.items())
        + "\n  healthd keep    run the daemon and restart it when it dies (make run)"
        + "\n`healthd COMMAND -h` lists a command's flags; `vigil --help` the whole CLI.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="YAML config file (settings also from VIGIL_HEALTHD_* env)"
    )
    parsed = parser.parse_args(args)
    from healthd._daemon import serve  # the daemon's imports are not paid by client commands
    from services.security import install_log_redaction

    install_log_redaction()  # this process's log policy: the security sanitizer's rules
    return serve(parsed.config)


if __name__ == "__main__":
    sys.exit(main())
