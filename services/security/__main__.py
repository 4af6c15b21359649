"""Entry point.

``python -m services.security --config PATH``      serve vigil.security.v1.SecurityService
``python -m services.security keys create ...``    create an API key (token printed once)
``python -m services.security dev-token ...``      create the local ADMIN dev token if missing
``python -m services.security certs ...``          create a dev CA and service certificates (mTLS)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.security._devkey import ENV_PREFIX, cli

_COMMANDS = ("keys", "dev-token", "certs")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _COMMANDS:
        return cli(args)
    # Imported here so the key commands work without starting (or importing) the gRPC runtime.
    from services.common import run_main
    from services.security._app import build
    from services.security._config import SecurityConfig
    from services.security._sanitize import install_log_redaction

    install_log_redaction()
    return run_main(args, model=SecurityConfig, env_prefix=ENV_PREFIX, build=build, prog="security")


if __name__ == "__main__":
    sys.exit(main())
