"""Screen: the single call the workflow service makes per run (authorize + validate + sanitize).

Order is fixed and cheap-first: authenticate (cached key verification) -> rate limit ->
policy lookup (cached per action) -> validation (compiled schema from a bounded cache,
precompiled regexes) -> sanitization -> one audit record (group-committed with the other
requests of the same event-loop turn). Every refusal is audited before it is raised; an
audit failure refuses the request (`Unavailable`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common import FieldViolation, InvalidArgument, PermissionDenied
from services.security._config import SecurityConfig
from services.security._findings import Finding, to_violations
from services.security._gate import Gate
from services.security._params import ParamsValidator, check_shape, select_fields
from services.security._paths import PathValidator
from services.security._principal import Level, Principal
from services.security._prompt import PromptValidator
from services.security._sanitize import Redactor
from services.security._telemetry import VALIDATION_FAILURES
from services.security._trajectory import TrajectoryValidator

__all__ = ["Inspector", "ScreenInput", "ScreenOutcome", "Screener"]

_WORKFLOW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.\[\]*-]{1,128}$")
_MAX_FIELDS = 64
_OFFLOAD_BYTES = 64 << 10


class Inspector:
    """All input validators, built once from config."""

    def __init__(self, cfg: SecurityConfig) -> None:
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
        self._schema_cache_size = cfg.schema_cache_size
        # canonical JSON of a schema -> its compiled validator; LRU-bounded.
        self._schemas: OrderedDict[bytes, ParamsValidator] = OrderedDict()

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
        """Compile (or fetch from cache) a JSON Schema; InvalidArgument when it is not a valid schema."""
        # The cache key: the caller's canonical bytes when given (cheap), else canonical JSON.
        cache_key = key if key is not None else json.dumps(schema, sort_keys=True, default=str).encode()
        validator = self._schemas.get(cache_key)
        if validator is not None:
            self._schemas.move_to_end(cache_key)
            return validator
        shape = check_shape(field, schema)
        if shape:
            raise InvalidArgument("schema is too large or deep", to_violations(shape))
        try:
            validator = ParamsValidator(schema)
        except ValueError as exc:
            raise InvalidArgument(
                f"{field} is not a valid JSON Schema", [FieldViolation(field, str(exc)[:300], "BAD_SCHEMA")]
            ) from None
        self._schemas[cache_key] = validator
        if len(self._schemas) > self._schema_cache_size:
            self._schemas.popitem(last=False)
        return validator


@dataclass(frozen=True)
class ScreenInput:
    """A workflow start to screen (the domain form of ScreenRequest)."""

    token: str
    workflow: str
    params: Mapping[str, Any]
    params_schema: Mapping[str, Any] | None = None
    required_level: Level | None = None
    prompt_fields: Sequence[str] = ()
    path_fields: Sequence[str] = ()
    trajectory_fields: Sequence[str] = ()
    request_id: str = ""
    schema_key: bytes | None = None
    """Canonical bytes of ``params_schema`` (e.g. deterministic proto encoding) for the schema cache."""
    peer: str = ""
    params_bytes: int = 0
    """Serialized size of ``params``; large ones are checked on a worker thread, off the event loop."""
    """Network address of the caller (bounds audit records of failed authentications per peer)."""


@dataclass(frozen=True)
class ScreenOutcome:
    """An allowed start: who, the sanitized params, what was redacted, warnings, and the audit id."""

    principal: Principal
    sanitized_params: Any
    redactions: dict[str, int]
    warnings: list[Finding] = field(default_factory=list)
    audit_id: str = ""


class Screener:
    """Runs Screen against a `Gate`, an `Inspector` and a `Redactor`."""

    def __init__(self, gate: Gate, inspector: Inspector, redactor: Redactor) -> None:
        self.gate = gate
        self.inspector = inspector
        self.redactor = redactor

    def _request_shape(self, req: ScreenInput) -> list[FieldViolation]:
        bad: list[FieldViolation] = []
        if not _WORKFLOW_NAME.match(req.workflow):
            bad.append(
                FieldViolation(
                    "workflow", "must be 1-128 of [A-Za-z0-9._-], starting alphanumeric", "BAD_NAME"
                )
            )
        for group in ("prompt_fields", "path_fields", "trajectory_fields"):
            names = getattr(req, group)
            if len(names) > _MAX_FIELDS:
                bad.append(FieldViolation(group, f"more than {_MAX_FIELDS} fields", "TOO_MANY_FIELDS"))
            bad += [
                FieldViolation(f"{group}[{i}]", "not a valid field name", "BAD_FIELD_NAME")
                for i, n in enumerate(names[:_MAX_FIELDS])
                if not _FIELD_NAME.match(n)
            ]
        return bad

    def _findings(self, req: ScreenInput, validator: ParamsValidator | None) -> list[Finding]:
        """Every finding about ``req``'s params. Thread-safe (reads only), so large params can be
        checked on a worker thread; ``validator`` is compiled beforehand, on the loop."""
        ins = self.inspector
        out = check_shape("params", req.params)
        if out:
            return out
        if validator is not None:
            out += validator.validate("params", req.params, shape_checked=True)
        for spec in req.prompt_fields:
            for path, value in select_fields(req.params, spec):
                out += ins.prompt.validate(path, value)
        if req.path_fields:
            paths = ins.path_validator()
            for spec in req.path_fields:
                for path, value in select_fields(req.params, spec):
                    out += paths.validate(path, value)
        for spec in req.trajectory_fields:
            for path, value in select_fields(req.params, spec):
                out += ins.trajectory.validate(path, value)
        return out

    async def screen(self, req: ScreenInput) -> ScreenOutcome:
        """Screen one workflow start.

        Raises:
            Unauthenticated, ResourceExhausted, PermissionDenied, InvalidArgument: the start is refused
            (each audited first); Unavailable: the audit log could not record the decision.
        """
        gate = self.gate
        principal = await gate.authenticate(
            req.token, action="screen", resource=req.workflow[:200], request_id=req.request_id, peer=req.peer
        )
        decision = gate.decide(principal, "workflow.start", req.workflow, req.required_level)  # cached lookup
        who = {"level": principal.level.name, "via": principal.via, "credential": principal.credential_id}

        async def record(allowed: bool, reason: str, **details: object) -> str:
            audited = await gate.audit.append_async(
                action="screen",
                resource=req.workflow,
                decision="ALLOW" if allowed else "DENY",
                subject=principal.subject,
                reason=reason,
                request_id=req.request_id,
                details={**who, **details},
            )
            return audited.id

        shape = self._request_shape(req)
        if shape:
            await record(
                False, "malformed screen request", findings=[(v.reason, v.field) for v in shape[:50]]
            )
            raise InvalidArgument("malformed screen request", shape)
        if not decision.allowed:
            await record(False, decision.reason)
            raise PermissionDenied(decision.reason)
        try:
            # Compiled on the loop: the schema cache is not thread-safe.
            validator = (
                self.inspector.params_validator(req.params_schema, key=req.schema_key)
                if req.params_schema
                else None
            )
            if req.params_bytes > _OFFLOAD_BYTES:  # linear-time checks, but long for large params
                findings = await asyncio.to_thread(self._findings, req, validator)
            else:
                findings = self._findings(req, validator)
        except InvalidArgument as exc:  # a bad schema or root name is a refusal too: audit it
            await record(False, f"invalid request: {exc.message}")
            raise
        blocking = [f for f in findings if f.blocking]
        if blocking:
            codes = sorted({f.code for f in blocking})
            for code in codes:
                VALIDATION_FAILURES.labels(code).inc()
            await record(
                False,
                f"validation failed: {', '.join(codes)}",
                findings=[(f.code, f.field) for f in blocking[:50]],
            )
            violations = [
                FieldViolation(v.field, self.redactor.redact(v.description)[0], v.reason)
                for v in to_violations(blocking)
            ]
            raise InvalidArgument(f"workflow '{req.workflow}' parameters failed validation", violations)
        sanitized, redactions = self.redactor.redact_value(req.params)
        warnings = [f for f in findings if not f.blocking]
        audit_id = await record(
            True, f"rule {decision.rule}", redactions=redactions, warnings=sorted({f.code for f in warnings})
        )
        return ScreenOutcome(principal, sanitized, redactions, warnings, audit_id)
