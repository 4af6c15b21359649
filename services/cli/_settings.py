"""Where the stack listens and which token to send: read the way the stack reads it.

Addresses come from the same config files and ``VIGIL_*`` variables the processes load, through
the same loader (`services.common.load_config`), so ``VIGIL_HEALTHD_SERVER__PORT=51050`` moves
the CLI with the stack. Config files: ``--config-dir`` (or ``$VIGIL_CONFIG_DIR``), else
``deploy/local`` under the current directory when it exists (what ``make run`` uses), else the
built-in defaults (50050/50051/50052, HTTP 8050).

The token: ``--token``, else ``--token-file``, else ``$VIGIL_TOKEN``, else ``.vigil/dev-token``
(created by ``make run``). When none is found the error lists every place tried.

TLS to the services (`client_tls`): the flags ``--tls-ca/--tls-cert/--tls-key/--tls-server-name``
(``--tls`` alone: system roots), over the CLI's own settings in the stack's loader and model
(`services.common.ClientTLSConfig`, as the workflow service's ``security_tls``/``healthd_tls``):
``tls:`` in ``cli.yaml`` of the config directory and ``VIGIL_CLI_TLS__CA_FILE``,
``__CERT_FILE``, ``__KEY_FILE``, ``__SERVER_NAME``. With none of them, TLS is used when the
target's own config serves TLS (``server.tls``), with the system roots; else plaintext.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.common import ClientTLSConfig, ConfigModel, load_config

__all__ = ["DEV_TOKEN_FILE", "CliConfig", "Settings", "TlsFlags", "TokenNotFound", "dial_address"]

DEV_TOKEN_FILE = Path(".vigil/dev-token")
_LOCAL_CONFIGS = Path("deploy/local")
_PROCESSES = {
    # name: (config file, env prefix)
    "healthd": ("healthd.yaml", "VIGIL_HEALTHD_"),
    "workflow": ("workflow.yaml", "VIGIL_WORKFLOW_"),
    "security": ("security.yaml", "VIGIL_SECURITY_"),
}


class CliConfig(ConfigModel):
    """The CLI's own settings (``cli.yaml``, ``VIGIL_CLI_*``)."""

    tls: ClientTLSConfig | None = None
    """TLS/mTLS to the services; None: plaintext (unless a target's config serves TLS)."""


@dataclass(frozen=True)
class TlsFlags:
    """The TLS flags as given (None: not given)."""

    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None


class TokenNotFound(Exception):
    """No token in any of the places the CLI looks; the message lists them."""


def dial_address(host: str, port: int) -> str:
    """``host:port`` to dial a server bound to ``host`` (a wildcard bind is dialled on loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def _model(name: str) -> type[ConfigModel]:
    # Imported on demand: a `vigil runs` call does not pay for healthd's config models.
    if name == "healthd":
        from healthd._config import HealthdConfig

        return HealthdConfig
    if name == "workflow":
        from services.workflow._config import WorkflowConfig

        return WorkflowConfig
    from services.security._config import SecurityConfig

    return SecurityConfig


@dataclass(frozen=True)
class Settings:
    """What the CLI resolved from flags, config files and the environment."""

    config_dir: Path | None
    environ: Mapping[str, str]

    @classmethod
    def resolve(cls, config_dir: str | None, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        chosen = config_dir or env.get("VIGIL_CONFIG_DIR") or None
        if chosen is not None:
            path = Path(chosen)
            if not path.is_dir():
                raise ValueError(f"config directory {chosen} does not exist")
            return cls(path, env)
        return cls(_LOCAL_CONFIGS if _LOCAL_CONFIGS.is_dir() else None, env)

    def config(self, name: str) -> Any:
        """The validated config of process ``name`` (healthd, workflow, security)."""
        filename, prefix = _PROCESSES[name]
        path = self.config_dir / filename if self.config_dir is not None else None
        if path is not None and not path.is_file():
            path = None
        return load_config(_model(name), path, env_prefix=prefix, environ=self.environ)

    def address(self, name: str) -> str:
        """gRPC ``host:port`` of process ``name``."""
        server = self.config(name).server
        return dial_address(server.host, server.port)

    def client_tls(self, name: str, flags: TlsFlags) -> ClientTLSConfig | None:
        """TLS to process ``name`` (see the module docstring for the order).

        Raises:
            ValueError: one line, e.g. a certificate without its key.
            ConfigError: a bad ``cli.yaml`` or ``VIGIL_CLI_*`` value.
        """
        path = self.config_dir / "cli.yaml" if self.config_dir is not None else None
        own = load_config(CliConfig, path if path is not None and path.is_file() else None,
                          env_prefix="VIGIL_CLI_", environ=self.environ).tls  # fmt: skip
        given = {
            k: v for k in ("ca_file", "cert_file", "key_file", "server_name") if (v := getattr(flags, k))
        }
        if own is None and not given and not flags.tls:
            return ClientTLSConfig() if self.config(name).server.tls is not None else None
        merged = {**(own.model_dump(exclude_none=True) if own is not None else {}), **given}
        try:
            return ClientTLSConfig.model_validate(merged)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"TLS settings: {problem} (--tls-cert and --tls-key go together)") from None

    def dashboard_url(self) -> str:
        http = self.config("healthd").http
        return f"http://{dial_address(http.host, http.port)}/"

    def token(self, flag_token: str | None, flag_file: str | None) -> str:
        """The bearer token to send (see the module docstring for the order).

        Raises:
            TokenNotFound: listing each place tried and why it gave nothing.
        """
        if flag_token:
            return flag_token
        if flag_file:
            return _read_token(Path(flag_file), "--token-file")
        if self.environ.get("VIGIL_TOKEN"):
            return self.environ["VIGIL_TOKEN"]
        tried = ["--token (not given)", "--token-file (not given)", "$VIGIL_TOKEN (not set)"]
        try:
            return _read_token(DEV_TOKEN_FILE, "the dev token")
        except TokenNotFound as exc:
            tried.append(str(exc))
        raise TokenNotFound(
            "no token: tried " + ", ".join(tried) + "; pass --token-file PATH or set VIGIL_TOKEN "
            "(`make run` writes an ADMIN token to .vigil/dev-token)"
        )


def _read_token(path: Path, what: str) -> str:
    shown = path if path.is_absolute() else Path.cwd() / path
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise TokenNotFound(f"{what} {shown} (not found)") from None
    except OSError as exc:
        raise TokenNotFound(f"{what} {shown} ({exc.strerror})") from None
    if not token:
        raise TokenNotFound(f"{what} {shown} (empty)")
    return token
