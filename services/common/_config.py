"""Configuration: frozen pydantic models loaded in one place from YAML plus environment.

Every process defines one root model (a subclass of `ConfigModel`) and calls
`load_config` once at start-up. Nothing deeper in the code reads files or the
environment for settings. Errors name the source (file or env var), the field
path and the bad value on one line, so an operator can fix them without a stack trace.

Environment overrides: ``<PREFIX><FIELD>`` with ``__`` between nesting levels, e.g.
``VIGIL_WORKFLOW_SERVER__PORT=6000``. Values are parsed as YAML scalars/flow
collections (``6000`` is an int, ``true`` a bool, ``[a, b]`` a list).

Interpolation: a string value in the file may contain ``${NAME}`` or ``${NAME:-default}``,
replaced from the environment after parsing (so a value can never inject YAML structure).
One config can then follow another's override, e.g. healthd's check address
``127.0.0.1:${VIGIL_WORKFLOW_SERVER__PORT:-50051}``. A value that is exactly one
reference is re-read as a YAML scalar, so ``${PORT:-50051}`` can fill an int field.
"""

from __future__ import annotations

import os
import re
import reprlib
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "ClientTLSConfig",
    "ConfigError",
    "ConfigModel",
    "ServerConfig",
    "TLSConfig",
    "load_config",
    "parse_yaml",
]

# A config file larger than this is refused before parsing: configs are small and a
# huge file is a mistake (or an attack on the YAML parser).
MAX_CONFIG_BYTES = 1 << 20
# YAML aliases let a 1 KB file expand into a billion nodes once anything walks it
# (validation, repr of a bad value): refuse documents that expand beyond this many.
MAX_CONFIG_NODES = 100_000


def _one_line(text: str) -> str:
    """``text`` with control characters escaped, so an error stays one log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short_repr(value: Any) -> str:
    """repr of ``value`` cut at a few items per level, never walking a huge structure."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 100, 100


class ConfigError(Exception):
    """A configuration problem, rendered as one line naming source, field and value."""

    def __init__(self, source: str, field: str, problem: str, value: Any = None) -> None:
        self.source, self.field, self.problem, self.value = source, field, problem, value
        shown = _short_repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        where = f"{source}: {field}" if field else source
        tail = f" (got {shown})" if value is not None else ""
        super().__init__(_one_line(f"{where}: {problem}{tail}"))


class ConfigModel(BaseModel):
    """Base for config sections: immutable, unknown keys rejected, field docstrings kept."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class TLSConfig(ConfigModel):
    """Optional TLS for a listening port; mTLS when ``client_ca_file`` is set."""

    cert_file: Path
    """PEM certificate chain presented by the server."""
    key_file: Path
    """PEM private key of ``cert_file``."""
    client_ca_file: Path | None = None
    """PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."""


class ClientTLSConfig(ConfigModel):
    """TLS of an outgoing connection (a client of another service); mTLS when a client cert is set."""

    ca_file: Path | None = None
    """PEM CA bundle that signed the server's certificate; system roots when unset."""
    cert_file: Path | None = None
    """PEM client certificate presented for mTLS."""
    key_file: Path | None = None
    """PEM private key of ``cert_file``."""
    server_name: str | None = Field(default=None, min_length=1, max_length=253)
    """Overrides the name checked against the server certificate (SNI/authority)."""

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> ClientTLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be set together (mTLS) or both left unset")
        return self


class ServerConfig(ConfigModel):
    """Settings every gRPC server shares (bootstrap in `services.common.serve`)."""

    host: str = "127.0.0.1"
    """Address to bind; ``0.0.0.0`` or ``[::]`` to listen on all interfaces."""
    port: int = Field(default=0, ge=0, le=65535)
    """TCP port; 0 picks a free port (tests)."""
    grace_period_s: float = Field(default=10.0, ge=0, le=600)
    """How long shutdown waits for in-flight RPCs before cancelling them."""
    max_message_bytes: int = Field(default=4 << 20, ge=1024, le=64 << 20)
    """Largest request (and response) message, in bytes: the one documented request limit. A larger
    request is INVALID_ARGUMENT naming this limit, on every RPC of every server."""
    max_concurrent_rpcs: int | None = Field(default=None, ge=1, le=100_000)
    """Cap on RPCs in progress; beyond it gRPC answers RESOURCE_EXHAUSTED."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Port of this process's Prometheus ``/metrics`` endpoint; unset disables it."""
    reuse_port: bool = False
    """Bind ``port`` with SO_REUSEPORT so several replicas share it (the kernel spreads
    connections); healthd sets it for replicated components. Off, a taken port fails the start."""
    health_port: int | None = Field(default=None, ge=0, le=65535)
    """A private port serving only grpc.health.v1 (the same statuses as ``port``), never shared:
    healthd checks each replica there, not whichever replica the kernel picks on ``port``."""
    replica: int = Field(default=0, ge=0, le=1000)
    """This process's replica index (1-based; 0 when not started as a replica), for logs."""
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    """Minimum level of the JSON log lines written to stderr."""
    tls: TLSConfig | None = None
    """TLS/mTLS for the gRPC port; plaintext when unset."""


M = TypeVar("M", bound=BaseModel)


def _read_yaml(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            # A FIFO would block the read forever and /dev/zero would never end.
            raise ConfigError(source, "", "not a regular file")
        size = info.st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(source, "", f"file is {size} bytes, larger than {MAX_CONFIG_BYTES}")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(source, "", "is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror}") from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise ConfigError(source, "", f"invalid path: {exc}") from None
    data = parse_yaml(text, source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", "top level must be a mapping of settings", type(data).__name__)
    return data


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely: every failure is a one-line `ConfigError` naming ``source``.

    Beyond `yaml.safe_load`'s own errors this refuses what safe_load lets escape or
    survive: nesting past Python's recursion limit, integers of more digits than Python
    converts, and alias bombs (a few KB that expand to gigabytes).
    """
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(source, "", "nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(source, "", f"bad value: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "unparseable"
        raise ConfigError(source, "", f"invalid YAML: {line}{problem}") from None
    if data is not None and _expanded_nodes(data) > MAX_CONFIG_NODES:
        raise ConfigError(source, "", f"expands to more than {MAX_CONFIG_NODES} values (YAML aliases?)")
    return data


def _expanded_nodes(data: Any) -> int:
    """How many values ``data`` holds once aliases (shared sub-objects) are expanded.

    Computed over the shared graph, each container once (iteratively: no recursion
    limit), so it costs the size of the file, not of its expansion. YAML from
    `safe_load` has no cycles.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, dict | list) or id(node) in sizes:
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, dict | list) and id(c) not in sizes)
    return sizes.get(id(data), 1)


_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(node: Any, environ: Mapping[str, str], source: str, path: tuple[str, ...] = ()) -> Any:
    """Replace ${NAME} / ${NAME:-default} in every string of a parsed YAML tree."""
    if isinstance(node, dict):
        return {k: _interpolate(v, environ, source, (*path, str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, environ, source, (*path, str(i))) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def value_of(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(source, ".".join(path), f"environment variable {name} is not set", node)

    text = _REF.sub(value_of, node)
    if _REF.fullmatch(node):
        try:
            scalar = yaml.safe_load(text) if text else text
        except (yaml.YAMLError, ValueError, RecursionError):  # e.g. a 5,000-digit number
            return text
        return scalar if isinstance(scalar, (str, int, float, bool)) else text
    return text


def _env_overrides(prefix: str, environ: Mapping[str, str]) -> dict[tuple[str, ...], tuple[str, Any]]:
    """Return {field path: (env var name, parsed value)} for variables under ``prefix``."""
    found: dict[tuple[str, ...], tuple[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(prefix) or name == prefix:
            continue
        path = tuple(part.lower() for part in name[len(prefix) :].split("__"))
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except (yaml.YAMLError, ValueError, RecursionError):
            value = raw  # not YAML: take the text as it is and let validation judge it
        found[path] = (name, value)
    return found


def _section_default(
    model: type[BaseModel] | None, key: str
) -> tuple[dict[str, Any], type[BaseModel] | None]:
    """The default of section ``key`` of ``model`` as data (and its model), so an env override of
    one nested field keeps the section's other defaults: ``VIGIL_SECURITY_SERVER__HOST`` alone
    must not turn the security server's default port 50052 into ServerConfig's generic 0."""
    info = model.model_fields.get(key) if model is not None else None
    if info is None:
        return {}, None
    default = info.get_default(call_default_factory=True)
    sub = type(default) if isinstance(default, BaseModel) else None
    if sub is None and isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
        sub = info.annotation
    data = default.model_dump(exclude_unset=True) if isinstance(default, BaseModel) else {}
    return data, sub


def _set_path(
    data: dict[str, Any], path: tuple[str, ...], value: Any, source: str, model: type[BaseModel] | None = None
) -> None:
    node = data
    for key in path[:-1]:
        if key not in node:
            node[key], model = _section_default(model, key)
        else:
            model = _section_default(model, key)[1]
        child = node[key]
        if not isinstance(child, dict):
            raise ConfigError(source, ".".join(path), f"'{key}' is not a section", child)
        node = child
    node[path[-1]] = value


def load_config(
    model: type[M],
    path: str | os.PathLike[str] | None = None,
    *,
    env_prefix: str = "",
    environ: Mapping[str, str] | None = None,
) -> M:
    """Load and validate a config model from an optional YAML file and env overrides.

    Args:
        model: Root config model (extra keys forbidden, so typos are errors).
        path: YAML file; ``None`` means defaults plus environment only.
        env_prefix: e.g. ``VIGIL_WORKFLOW_``; empty disables env overrides.
        environ: Environment to read (defaults to ``os.environ``); tests pass their own.

    Raises:
        ConfigError: naming the file or env var, the field path and the bad value.
    """
    source = str(path) if path is not None else "<defaults>"
    env = os.environ if environ is None else environ
    data = _interpolate(_read_yaml(Path(path)), env, source) if path is not None else {}
    env_sources: dict[tuple[str, ...], str] = {}
    if env_prefix:
        for field_path, (var, value) in _env_overrides(env_prefix, env).items():
            _set_path(data, field_path, value, var, model)
            env_sources[field_path] = var
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        field = ".".join(loc)
        # Blame the env var when the bad value came from one, otherwise the file.
        blamed = next((v for p, v in env_sources.items() if loc[: len(p)] == p), source)
        problem = {"extra_forbidden": "unknown setting"}.get(err["type"], err["msg"])
        value = err.get("input") if err["type"] != "missing" else None
        raise ConfigError(blamed, field, problem, value) from None
