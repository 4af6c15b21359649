"""The security service's operations in domain terms (the servicer only translates protobuf).

Every operation: check the request's own fields, let the gate authenticate (and authorize)
the caller, do the work on the core's domain objects, and write the audit record the work
calls for. Errors are domain errors (`services.common`); the shared runtime maps them to
status codes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from services.common import FailedPrecondition, FieldViolation, InvalidArgument, VigilError
from services.security._artifacts import ArtifactResult
from services.security._audit import AuditFilter, AuditRecord, VerifyResult
from services.security._core import SecurityCore
from services.security._findings import Finding, to_violations
from services.security._policy import Decision
from services.security._principal import Level, Principal
from services.security._screen import ScreenInput, ScreenOutcome
from services.security._trajectory import TrajectoryValidator

__all__ = [
    "Call",
    "ParamsInput",
    "PathInput",
    "PromptInput",
    "SecurityOperations",
    "TrajectoryInput",
    "Validated",
    "ValidationInput",
]

_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_RESOURCE = re.compile(r"^[^\x00-\x1f\x7f]{0,256}$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{0,128}$")


T = TypeVar("T")
Converter: TypeAlias = Callable[[], Awaitable[T]]
"""Gives an input from its wire form, awaited only once the caller is authenticated: converting
a large Struct takes about a second, which no unauthenticated caller gets to spend."""


@dataclass(frozen=True)
class Call:
    """Who calls and from where: the token source (extracted inside the gate, so a missing or
    malformed header is audited), the peer address and the caller's request id."""

    token: Callable[[], str]
    peer: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class PromptInput:
    text: str


@dataclass(frozen=True)
class PathInput:
    root: str
    path: str


@dataclass(frozen=True)
class TrajectoryInput:
    points: Sequence[Any] | Callable[[], Sequence[Any]]
    """The points, or a function making them (called where the check runs, off the loop when large)."""
    require_monotonic_time: bool
    size: int = 0
    """Serialized bytes of the input: large ones are checked on the check pool."""


@dataclass(frozen=True)
class ParamsInput:
    schema: Any
    params: Any
    size: int = 0
    """Serialized bytes of schema and params: large ones are compiled and checked on the pool."""


ValidationInput = PromptInput | PathInput | TrajectoryInput | ParamsInput
"""One ValidateInput request's input; its kind selects the validator."""

_KIND = {PromptInput: "prompt", PathInput: "path", TrajectoryInput: "trajectory", ParamsInput: "params"}


@dataclass(frozen=True)
class Validated:
    findings: list[Finding]
    canonical_path: str = ""


def check_request_id(request_id: str) -> str:
    if not _REQUEST_ID.match(request_id):
        raise InvalidArgument(
            "bad request_id",
            [FieldViolation("request_id", "at most 128 printable ASCII characters, no spaces", "BAD_ID")],
        )
    return request_id


def _check_authorize(action: str, resource: str) -> None:
    bad = []
    if not _ACTION.match(action):
        bad.append(FieldViolation("action", "1-64 of [a-z0-9_.-], starting with a letter", "BAD_ACTION"))
    if not _RESOURCE.match(resource):
        bad.append(
            FieldViolation("resource", "at most 256 characters, no control characters", "BAD_RESOURCE")
        )
    if bad:
        raise InvalidArgument("malformed authorize request", bad)


def _check_dest_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidArgument(
            "dest_name must be a plain file name",
            [FieldViolation("dest_name", "a plain file name", "BAD_NAME")],
        )


def _check_trajectory(
    validator: TrajectoryValidator, points: Sequence[Any] | Callable[[], Sequence[Any]]
) -> list[Finding]:
    return validator.validate("trajectory.points", points() if callable(points) else points)


class SecurityOperations:
    """Authenticate, authorize, validate, screen, sanitize, artifacts and audit queries."""

    def __init__(self, core: SecurityCore) -> None:
        self.core = core

    async def convert(self, size: int, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)``, a conversion of a ``size``-byte message part, where a check of that
        size runs (`CheckPool`): a 4 MiB Struct of small entries takes about a second to
        convert each way, which must not be spent on the event loop."""
        return await self.core.inspector.run(size, fn, *args)

    async def _caller(
        self, call: Call, level: Level, action: str, *, audit_allowed: bool = False
    ) -> Principal:
        return await self.core.gate.require_level(
            call.token,
            level,
            action=action,
            peer=call.peer,
            request_id=call.request_id,
            audit_allowed=audit_allowed,
        )

    async def authenticate(self, call: Call) -> Principal:
        check_request_id(call.request_id)
        return await self.core.gate.authenticate(
            call.token, action="authenticate", peer=call.peer, request_id=call.request_id
        )

    async def authorize(
        self, call: Call, action: str, resource: str
    ) -> tuple[Principal, Decision, AuditRecord]:
        """Authenticate the token, then decide ``action:resource`` (audited; PermissionDenied on deny)."""
        _check_authorize(action, resource)
        rid = check_request_id(call.request_id)
        gate = self.core.gate
        principal = await gate.authenticate(
            call.token, action="authorize", resource=resource, request_id=rid, peer=call.peer
        )
        decision, record = await gate.authorize(principal, action, resource, request_id=rid)
        return principal, decision, record

    async def validate(
        self, call: Call, item: ValidationInput | None, convert: Converter[ValidationInput] | None = None
    ) -> Validated:
        """Run the validator of the input's kind; blocking findings are audited and refused.
        ``convert`` gives the input from its wire form once the caller is authenticated."""
        rid = check_request_id(call.request_id)
        principal = await self._caller(call, Level.AUTHENTICATED, "validate")
        if convert is not None:
            item = await convert()
        ins = self.core.inspector
        canonical = ""
        # Limits first, then linear-time checks, inline or on the check pool by input size.
        if isinstance(item, PromptInput):
            findings = await ins.check_prompt("prompt.text", item.text)
        elif isinstance(item, PathInput):
            findings, real = await ins.check_path(item.root, "path.path", item.path)
            canonical = str(real) if real is not None else ""
        elif isinstance(item, TrajectoryInput):
            validator = ins.trajectory_timed if item.require_monotonic_time else ins.trajectory_untimed
            findings = await ins.run(item.size, _check_trajectory, validator, item.points)
        elif isinstance(item, ParamsInput):
            findings = await ins.check_params(item.schema, item.params, item.size)
        else:
            raise InvalidArgument(
                "no input given",
                [FieldViolation("input", "set one of prompt, path, trajectory, params", "REQUIRED")],
            )
        blocking = [f for f in findings if f.blocking]
        if blocking:
            kind = _KIND[type(item)]
            await self.core.audit.append_async(
                action="validate",
                resource=kind,
                decision="DENY",
                subject=principal.subject,
                reason=f"validation failed: {', '.join(sorted({f.code for f in blocking}))}",
                request_id=rid,
            )
            raise InvalidArgument(f"{kind} input failed validation", to_violations(blocking))
        return Validated(findings, canonical)

    async def screen(self, req: ScreenInput) -> ScreenOutcome:
        check_request_id(req.request_id)
        return await self.core.screener.screen(req)

    def cached_schema(self, key: bytes) -> Mapping[str, Any] | None:
        """A params schema converted before under ``key`` (a workflow sends the same one each time)."""
        return self.core.inspector.cached_schema(key)

    async def sanitize(
        self, call: Call, text: str, data: Any, size: int = 0, convert: Converter[Any] | None = None
    ) -> tuple[str, Any, dict[str, int]]:
        """Redact ``text`` and every string in ``data`` (``size``: their serialized bytes); counts
        by kind across both. InvalidArgument when ``text`` is over `validation.sanitize_max_chars`.
        ``convert`` gives ``data`` from its wire form once the caller is authenticated."""
        check_request_id(call.request_id)
        await self._caller(call, Level.AUTHENTICATED, "sanitize")
        if convert is not None:
            data = await convert()
        return await self.core.inspector.sanitize(text, data, size)

    async def verify_artifact(self, call: Call, path: str, sha256: str, manifest_path: str) -> ArtifactResult:
        """Hash ``path`` and compare (audited either way, refusals too)."""
        rid = check_request_id(call.request_id)
        principal = await self._caller(call, Level.AUTHENTICATED, "artifact.verify")
        try:
            result = await asyncio.to_thread(self.core.verifier.verify, path, sha256, manifest_path)
        except VigilError as exc:  # a refused verification is a decision too: audit it, then refuse
            await self.core.audit.append_async(
                action="artifact.verify",
                resource=path,
                decision="DENY",
                subject=principal.subject,
                reason=f"refused ({exc.code.name}): {exc.message}"[:500],
                request_id=rid,
            )
            raise
        await self._audit_artifact("artifact.verify", path, result, principal, rid, "digest matches")
        return result

    async def fetch_artifact(self, call: Call, url: str, sha256: str, dest_name: str) -> ArtifactResult:
        """Download ``url`` into the artifact root as ``dest_name``, kept only if the digest matches."""
        rid = check_request_id(call.request_id)
        principal = await self._caller(call, Level.PRIVILEGED, "artifact.fetch", audit_allowed=True)
        downloader = self.core.downloader
        if downloader is None:
            raise FailedPrecondition("FetchArtifact is disabled: no artifact_root is configured")
        _check_dest_name(dest_name)
        result = await asyncio.to_thread(downloader.download, url, sha256, dest_name)
        await self._audit_artifact("artifact.fetch", dest_name, result, principal, rid, "stored")
        if not result.match:
            got, want = result.sha256, result.expected_sha256
            raise FailedPrecondition(f"downloaded artifact has sha256 {got}, expected {want}; nothing stored")
        return result

    async def _audit_artifact(
        self, action: str, resource: str, result: ArtifactResult, principal: Principal, rid: str, ok: str
    ) -> None:
        """Record an artifact check: ALLOW when the digest matched, else DENY with the reason."""
        await self.core.audit.append_async(
            action=action,
            resource=resource,
            decision="ALLOW" if result.match else "DENY",
            subject=principal.subject,
            reason=result.reason or ok,
            request_id=rid,
        )

    async def list_audit(
        self, call: Call, flt: AuditFilter, page_size: int, page_token: str
    ) -> tuple[Sequence[AuditRecord], str]:
        check_request_id(call.request_id)
        await self._caller(call, Level.ADMIN, "audit.list", audit_allowed=True)
        return await asyncio.to_thread(self.core.audit.list, flt, page_size=page_size, page_token=page_token)

    async def verify_audit(self, call: Call) -> VerifyResult:
        check_request_id(call.request_id)
        await self._caller(call, Level.ADMIN, "audit.verify", audit_allowed=True)
        return await asyncio.to_thread(self.core.audit.verify)
