"""Screen: the single call the workflow service makes per run (authorize + validate + sanitize).

Order is fixed and cheap-first: authenticate (cached key verification) -> rate limit ->
policy lookup (cached per action) -> validation (compiled schema from a bounded cache,
precompiled regexes) -> sanitization -> one audit record (group-committed with the other
requests of the same event-loop turn). Every refusal is audited before it is raised; an
audit failure refuses the request (`Unavailable`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common import FieldViolation, InvalidArgument, PermissionDenied
from services.security._findings import Finding, to_violations
from services.security._gate import Gate
from services.security._inspector import Inspector
from services.security._params import ParamsValidator, check_shape, select_fields
from services.security._principal import Level, Principal
from services.security._sanitize import Redactor
from services.security._telemetry import VALIDATION_FAILURES

__all__ = ["Inspector", "ScreenInput", "ScreenOutcome", "Screener"]

_WORKFLOW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.\[\]*-]{1,128}$")
_MAX_FIELDS = 64
_PROMPT_BUDGET_FIELDS = 8  # all prompt fields of one request together: this many full-size prompts


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
    """Network address of the caller (bounds audit records of failed authentications per peer)."""
    params_bytes: int = 0
    """Serialized size of ``params``; large ones are checked on a worker thread, off the event loop."""
    convert: Callable[[], Awaitable[tuple[Mapping[str, Any], Mapping[str, Any] | None]]] | None = None
    """Gives ``params`` and ``params_schema`` from their wire form (then left empty), awaited
    only once the caller is authenticated and allowed: converting large params takes about a
    second, which no unauthenticated or refused caller gets to spend."""


@dataclass(frozen=True)
class ScreenOutcome:
    """An allowed start: who, the sanitized params, what was redacted, warnings, and the audit id."""

    principal: Principal
    sanitized_params: Any
    redactions: dict[str, int]
    warnings: list[Finding] = field(default_factory=list)
    audit_id: str = ""


def _selected(params: Mapping[str, Any], specs: Sequence[str]) -> Iterator[tuple[str, object]]:
    """Each value the field specs designate, once (overlapping specs select nothing twice)."""
    seen: set[str] = set()
    for spec in dict.fromkeys(specs):
        for path, value in select_fields(params, spec):
            if path not in seen:
                seen.add(path)
                yield path, value


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

    def _findings(
        self, req: ScreenInput, params: Mapping[str, Any], validator: ParamsValidator | None
    ) -> list[Finding]:
        """Every finding about ``params``, ``req``'s. Thread-safe (reads only), so large params can be
        checked on a worker thread; ``validator`` is compiled beforehand, on the loop."""
        ins = self.inspector
        out = check_shape("params", params)
        if out:
            return out
        if validator is not None:
            out += validator.validate("params", params, shape_checked=True)
        budget = ins.prompt.limits.max_chars * _PROMPT_BUDGET_FIELDS
        for path, value in _selected(params, req.prompt_fields):
            budget -= len(value) if isinstance(value, str) else 0
            if budget < 0:  # many fields naming large prompts: bound the whole request, not each
                msg = f"prompt fields hold more than {_PROMPT_BUDGET_FIELDS} x prompt.max_chars characters"
                return [*out, Finding("PROMPTS_TOO_LONG", "prompt_fields", -1, msg)]
            out += ins.prompt.validate(path, value)
        if req.path_fields:
            paths = ins.path_validator()
            for path, value in _selected(params, req.path_fields):
                out += paths.validate(path, value)
        for path, value in _selected(params, req.trajectory_fields):
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
        params, schema = (req.params, req.params_schema) if req.convert is None else await req.convert()
        try:
            ins = self.inspector
            validator = (
                await ins.params_validator_async(schema, key=req.schema_key, size=req.params_bytes)
                if schema
                else None
            )
            # Every check is linear with bounded input; large params are checked on the pool.
            findings = await ins.run(req.params_bytes, self._findings, req, params, validator)
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
        # Redaction is linear but long for large params: on the check pool like the validation.
        sanitized, redactions = await self.inspector.run(req.params_bytes, self.redactor.redact_value, params)
        warnings = [f for f in findings if not f.blocking]
        audit_id = await record(
            True, f"rule {decision.rule}", redactions=redactions, warnings=sorted({f.code for f in warnings})
        )
        return ScreenOutcome(principal, sanitized, redactions, warnings, audit_id)
