"""All input validators, built once from config, and the async entry points that run them.

The ``check_*`` coroutines apply the size limits first and then run the (linear-time)
validator inline or on the `CheckPool` depending on the input's size, so no input stalls
the event loop. The schema cache is touched only on the loop; schemas are compiled on the
pool when large.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from services.common import FieldViolation, InvalidArgument
from services.security._checkpool import CheckPool
from services.security._config import SecurityConfig
from services.security._findings import Finding, to_violations
from services.security._params import ParamsValidator, check_shape
from services.security._paths import PathValidator
from services.security._prompt import PromptValidator
from services.security._sanitize import Redactor
from services.security._trajectory import TrajectoryValidator

__all__ = ["Inspector"]

T = TypeVar("T")


class Inspector:
    """All input validators, built once from config."""

    def __init__(self, cfg: SecurityConfig, redactor: Redactor | None = None) -> None:
        self.prompt = PromptValidator(cfg.prompt)
        self.paths = {
            name: PathValidator([root], allow_absolute=cfg.allow_absolute_paths)
            for name, root in cfg.roots.items()
        }
        self.default_root = cfg.default_root
        self.trajectory = TrajectoryValidator(cfg.trajectory)
        self.trajectory_untimed = TrajectoryValidator(
            cfg.trajectory.model_copy(update={"time_required": False})
        )
        self.trajectory_timed = TrajectoryValidator(cfg.trajectory.model_copy(update={"time_required": True}))
        self.redactor = redactor or Redactor(cfg.redaction_patterns)
        self.pool = CheckPool(cfg.validation)
        self._schema_cache_size = cfg.schema_cache_size
        # canonical JSON of a schema -> its compiled validator; LRU-bounded.
        self._schemas: OrderedDict[bytes, ParamsValidator] = OrderedDict()

    def close(self) -> None:
        self.pool.close()

    def path_validator(self, root: str = "") -> PathValidator:
        """The validator of the named root ("" = default). Raises InvalidArgument for an unknown root."""
        name = root or self.default_root
        validator = self.paths.get(name)
        if validator is None:
            raise InvalidArgument(
                f"unknown root '{name[:64]}'",
                [FieldViolation("root", "not a configured root", "UNKNOWN_ROOT")],
            )
        return validator

    def cached_schema(self, key: bytes) -> Mapping[str, Any] | None:
        """The schema compiled under ``key`` if the cache holds it (no conversion needed then)."""
        validator = self._schemas.get(key)
        return validator.schema if validator is not None else None

    def params_validator(
        self, schema: Mapping[str, Any], field: str = "params_schema", key: bytes | None = None
    ) -> ParamsValidator:
        """Compile (or fetch from cache) a JSON Schema on the calling thread (must be the loop's)."""
        cache_key = _schema_key(schema, key)
        return self._cached(cache_key) or self._remember(cache_key, _compile(field, schema))

    async def params_validator_async(
        self, schema: Mapping[str, Any], field: str = "params_schema", key: bytes | None = None, size: int = 0
    ) -> ParamsValidator:
        """As `params_validator`, compiling a large uncached schema (``size`` bytes) on the pool."""
        cache_key = _schema_key(schema, key)
        cached = self._cached(cache_key)
        if cached is not None:
            return cached
        return self._remember(cache_key, await self.pool.run(size, _compile, field, schema))

    def _cached(self, cache_key: bytes) -> ParamsValidator | None:
        validator = self._schemas.get(cache_key)
        if validator is not None:
            self._schemas.move_to_end(cache_key)
        return validator

    def _remember(self, cache_key: bytes, validator: ParamsValidator) -> ParamsValidator:
        self._schemas[cache_key] = validator
        if len(self._schemas) > self._schema_cache_size:
            self._schemas.popitem(last=False)
        return validator

    async def run(self, size: int, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` inline or on the check pool by input ``size`` (see `CheckPool`)."""
        return await self.pool.run(size, fn, *args)

    async def check_prompt(self, field: str, text: str) -> list[Finding]:
        return await self.run(len(text), self.prompt.validate, field, text)

    async def check_path(self, root: str, field: str, path: str) -> tuple[list[Finding], Path | None]:
        validator = self.path_validator(root)
        return await self.run(len(path), validator.resolve, field, path)

    async def check_params(
        self, schema: Mapping[str, Any], params: object, size: int, field: str = "params"
    ) -> list[Finding]:
        """``params`` against ``schema`` (``size``: their serialized bytes)."""
        validator = await self.params_validator_async(schema, f"{field}.schema", size=size)
        return await self.run(size, validator.validate, f"{field}.params", params)

    async def sanitize(self, text: str, data: object, size: int) -> tuple[str, Any, dict[str, int]]:
        """Redact ``text`` and every string in ``data``: (text, data, counts by kind).

        Raises:
            InvalidArgument: ``text`` is longer than ``validation.sanitize_max_chars``.
        """
        limit = self.pool.config.sanitize_max_chars
        if len(text) > limit:
            finding = Finding(
                "TEXT_TOO_LONG",
                "text",
                limit,
                f"longer than {limit} characters (limit validation.sanitize_max_chars)",
            )
            raise InvalidArgument(f"text is longer than {limit} characters", to_violations([finding]))
        return await self.run(size, self._sanitize, text, data)

    def _sanitize(self, text: str, data: object) -> tuple[str, Any, dict[str, int]]:
        out, counts = self.redactor.redact(text)
        clean, data_counts = self.redactor.redact_value(data)
        for kind, n in data_counts.items():
            counts[kind] = counts.get(kind, 0) + n
        return out, clean, counts


def _schema_key(schema: Mapping[str, Any], key: bytes | None) -> bytes:
    # The caller's canonical bytes when given (cheap), else canonical JSON.
    return key if key is not None else json.dumps(schema, sort_keys=True, default=str).encode()


def _compile(field: str, schema: Mapping[str, Any]) -> ParamsValidator:
    """A compiled schema; InvalidArgument when it is too large or not a valid schema. Thread-safe."""
    shape = check_shape(field, schema)
    if shape:
        raise InvalidArgument("schema is too large or deep", to_violations(shape))
    try:
        return ParamsValidator(schema)
    except ValueError as exc:
        raise InvalidArgument(
            f"{field} is not a valid JSON Schema", [FieldViolation(field, str(exc)[:300], "BAD_SCHEMA")]
        ) from None
