"""The thin gRPC servicer of vigil.security.v1.SecurityService, and `build` for `run_main`.

Each method: read the caller's token/request id from metadata, translate the request
into domain calls on `SecurityCore`, translate the result back. Domain errors
propagate unchanged; the runtime maps them to status codes (with BadRequest and
RetryInfo details) in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import grpc

from services.common import (
    FailedPrecondition,
    FieldViolation,
    Instrumentation,
    InvalidArgument,
    SecurityLevel,
    Unavailable,
    VigilServer,
    bearer_token,
    every,
    optional_timestamp,
    publish_serving,
    security_level_pb,
)
from services.security._audit import AuditFilter
from services.security._config import SecurityConfig
from services.security._convert import (
    decision_name,
    event_pb,
    finding_pb,
    principal_pb,
    struct_from_py,
    struct_to_py,
)
from services.security._core import SecurityCore
from services.security._findings import Finding, to_violations
from services.security._principal import Level, Principal
from services.security._screen import ScreenInput
from vigil.security.v1 import security_pb2 as _pb
from vigil.security.v1 import security_pb2_grpc as _pb_grpc

__all__ = ["SERVICE_NAME", "SecurityServicer", "build"]

SERVICE_NAME = "vigil.security.v1.SecurityService"
_ANCHOR_EVERY_S = 60.0
_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_RESOURCE = re.compile(r"^[^\x00-\x1f\x7f]{0,256}$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{0,128}$")


def _caller_token(context: grpc.aio.ServicerContext, given: str = "") -> Callable[[], str]:
    """The token source for the gate: ``given`` if set, else the authorization metadata.

    Extraction is deferred to the gate so that a missing or malformed header is audited.
    """
    return lambda: given or bearer_token(context.invocation_metadata())


def _request_id(given: str, context: grpc.aio.ServicerContext) -> str:
    rid = given or next((str(v) for k, v in context.invocation_metadata() or () if k == "x-request-id"), "")
    if not _REQUEST_ID.match(rid):
        raise InvalidArgument(
            "bad request_id",
            [FieldViolation("request_id", "at most 128 printable ASCII characters, no spaces", "BAD_ID")],
        )
    return rid


def _epoch_s(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def _refuse(message: str, findings: list[Finding]) -> InvalidArgument:
    return InvalidArgument(message, to_violations(findings))


class SecurityServicer(_pb_grpc.SecurityServiceServicer):
    """Translates SecurityService RPCs to `SecurityCore` calls."""

    def __init__(self, core: SecurityCore) -> None:
        self.core = core

    async def _caller(
        self, context: grpc.aio.ServicerContext, level: Level, action: str, **kw: Any
    ) -> Principal:
        return await self.core.gate.require_level(
            _caller_token(context), level, action=action, peer=context.peer(), **kw
        )

    async def Authenticate(self, request: _pb.AuthenticateRequest, context: grpc.aio.ServicerContext) -> Any:
        principal = await self.core.gate.authenticate(
            _caller_token(context, request.token),
            action="authenticate",
            peer=context.peer(),
            request_id=_request_id("", context),
        )
        return _pb.AuthenticateResponse(principal=principal_pb(principal))

    async def Authorize(self, request: _pb.AuthorizeRequest, context: grpc.aio.ServicerContext) -> Any:
        bad = []
        if not _ACTION.match(request.action):
            bad.append(FieldViolation("action", "1-64 of [a-z0-9_.-], starting with a letter", "BAD_ACTION"))
        if not _RESOURCE.match(request.resource):
            bad.append(
                FieldViolation("resource", "at most 256 characters, no control characters", "BAD_RESOURCE")
            )
        if bad:
            raise InvalidArgument("malformed authorize request", bad)
        rid = _request_id(request.request_id, context)
        gate = self.core.gate
        principal = await gate.authenticate(
            _caller_token(context, request.token),
            action="authorize",
            resource=request.resource,
            request_id=rid,
            peer=context.peer(),
        )
        decision, record = await gate.authorize(principal, request.action, request.resource, request_id=rid)
        return _pb.AuthorizeResponse(
            decision=_pb.DECISION_ALLOW,
            principal=principal_pb(principal),
            required_level=security_level_pb(decision.required_level),
            matched_rule=decision.rule or "",
            audit_id=record.id,
        )

    async def ValidateInput(
        self, request: _pb.ValidateInputRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        rid = _request_id("", context)
        principal = await self._caller(context, Level.AUTHENTICATED, "validate", request_id=rid)
        ins = self.core.inspector
        kind = request.WhichOneof("input")
        canonical = ""
        if kind == "prompt":
            findings = ins.prompt.validate("prompt.text", request.prompt.text)
        elif kind == "path":
            findings, real = ins.path_validator(request.path.root).resolve("path.path", request.path.path)
            canonical = str(real) if real is not None else ""
        elif kind == "trajectory":
            traj = request.trajectory
            points = [{"t": p.t, "values": list(p.values)} for p in traj.points]
            validator = ins.trajectory_timed if traj.require_monotonic_time else ins.trajectory_untimed
            findings = validator.validate("trajectory.points", points)
        elif kind == "params":
            schema = struct_to_py(request.params.schema)
            params = struct_to_py(request.params.params)
            params_check = ins.params_validator(schema, "params.schema")
            # Off the loop: patterns run on RE2 (linear), but a large params value still takes a while.
            findings = await asyncio.to_thread(params_check.validate, "params.params", params)
        else:
            raise InvalidArgument(
                "no input given",
                [FieldViolation("input", "set one of prompt, path, trajectory, params", "REQUIRED")],
            )
        blocking = [f for f in findings if f.blocking]
        if blocking:
            await self.core.audit.append_async(
                action="validate",
                resource=kind,
                decision="DENY",
                subject=principal.subject,
                reason=f"validation failed: {', '.join(sorted({f.code for f in blocking}))}",
                request_id=rid,
            )
            raise _refuse(f"{kind} input failed validation", blocking)
        return _pb.ValidateInputResponse(findings=[finding_pb(f) for f in findings], canonical_path=canonical)

    async def Screen(self, request: _pb.ScreenRequest, context: grpc.aio.ServicerContext) -> Any:
        has_schema = request.HasField("params_schema") and len(request.params_schema.fields) > 0
        schema_key = request.params_schema.SerializeToString(deterministic=True) if has_schema else None
        schema = None
        if schema_key is not None:  # a workflow sends the same schema every time: convert it once
            schema = self.core.inspector.cached_schema(schema_key) or struct_to_py(request.params_schema)
        outcome = await self.core.screener.screen(
            ScreenInput(
                token=request.token,
                workflow=request.workflow,
                params=struct_to_py(request.params),
                params_schema=schema,
                required_level=SecurityLevel.from_proto(request.required_level),
                prompt_fields=list(request.prompt_fields),
                path_fields=list(request.path_fields),
                trajectory_fields=list(request.trajectory_fields),
                request_id=_request_id(request.request_id, context),
                peer=context.peer(),
                params_bytes=request.params.ByteSize(),
                schema_key=schema_key,
            )
        )
        return _pb.ScreenResponse(
            decision=_pb.DECISION_ALLOW,
            principal=principal_pb(outcome.principal),
            sanitized_params=struct_from_py(outcome.sanitized_params),
            redactions=outcome.redactions,
            findings=[finding_pb(f) for f in outcome.warnings],
            audit_id=outcome.audit_id,
        )

    async def Sanitize(self, request: _pb.SanitizeRequest, context: grpc.aio.ServicerContext) -> Any:
        await self._caller(context, Level.AUTHENTICATED, "sanitize", request_id=_request_id("", context))
        redactor = self.core.redactor
        text, counts = redactor.redact(request.text)
        data, data_counts = redactor.redact_value(struct_to_py(request.data))
        for kind, n in data_counts.items():
            counts[kind] = counts.get(kind, 0) + n
        return _pb.SanitizeResponse(text=text, data=struct_from_py(data), redactions=counts)

    async def VerifyArtifact(
        self, request: _pb.VerifyArtifactRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        rid = _request_id("", context)
        principal = await self._caller(context, Level.AUTHENTICATED, "artifact.verify", request_id=rid)
        result = await asyncio.to_thread(
            self.core.verifier.verify, request.path, request.expected_sha256, request.manifest_path
        )
        await self.core.audit.append_async(
            action="artifact.verify",
            resource=request.path,
            decision="ALLOW" if result.match else "DENY",
            subject=principal.subject,
            reason=result.reason or "digest matches",
            request_id=rid,
        )
        return _pb.VerifyArtifactResponse(
            match=result.match,
            actual_sha256=result.sha256,
            expected_sha256=result.expected_sha256,
            size_bytes=result.size,
            canonical_path=result.canonical_path,
            message=result.reason,
        )

    async def FetchArtifact(
        self, request: _pb.FetchArtifactRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        rid = _request_id("", context)
        principal = await self._caller(
            context, Level.PRIVILEGED, "artifact.fetch", request_id=rid, audit_allowed=True
        )
        downloader = self.core.downloader
        if downloader is None:
            raise FailedPrecondition("FetchArtifact is disabled: no artifact_root is configured")
        name = request.dest_name
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise InvalidArgument(
                "dest_name must be a plain file name",
                [FieldViolation("dest_name", "a plain file name", "BAD_NAME")],
            )
        result = await asyncio.to_thread(downloader.download, request.url, request.expected_sha256, name)
        await self.core.audit.append_async(
            action="artifact.fetch",
            resource=name,
            decision="ALLOW" if result.match else "DENY",
            subject=principal.subject,
            reason=result.reason or "stored",
            request_id=rid,
        )
        if not result.match:
            got, want = result.sha256, result.expected_sha256
            raise FailedPrecondition(f"downloaded artifact has sha256 {got}, expected {want}; nothing stored")
        return _pb.FetchArtifactResponse(
            path=result.canonical_path, sha256=result.sha256, size_bytes=result.size
        )

    async def ListAuditEvents(
        self, request: _pb.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        rid = _request_id("", context)
        await self._caller(context, Level.ADMIN, "audit.list", request_id=rid, audit_allowed=True)
        flt = AuditFilter(
            subject=request.subject or None,
            action=request.action or None,
            decision=decision_name(request.decision),
            since_ts=_epoch_s(optional_timestamp(request, "since")),
            until_ts=_epoch_s(optional_timestamp(request, "until")),
        )
        records, token = await asyncio.to_thread(
            self.core.audit.list, flt, page_size=request.page_size, page_token=request.page_token
        )
        return _pb.ListAuditEventsResponse(events=[event_pb(r) for r in records], next_page_token=token)

    async def VerifyAuditLog(
        self, request: _pb.VerifyAuditLogRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        rid = _request_id("", context)
        await self._caller(context, Level.ADMIN, "audit.verify", request_id=rid, audit_allowed=True)
        result = await asyncio.to_thread(self.core.audit.verify)
        return _pb.VerifyAuditLogResponse(
            ok=result.ok,
            records_checked=result.checked,
            first_bad_seq=result.first_bad_seq or 0,
            problem="; ".join(result.problems[:3]),
        )


def _audit_health(server: VigilServer, core: SecurityCore) -> Callable[[], Awaitable[None]]:
    """A job publishing NOT_SERVING while audit records cannot be written (every decision would be
    refused), and SERVING again once they can (only on a started server); it also logs the
    audit chain head now and then as an external anchor, and writes the summary of failed
    authentications that were not recorded one by one."""

    last_anchor = [time.monotonic()]

    async def job() -> None:
        if time.monotonic() - last_anchor[0] >= _ANCHOR_EVERY_S:
            last_anchor[0] = time.monotonic()
            core.audit.log_anchor()
        with contextlib.suppress(Unavailable):  # counts are kept; the probe below turns NOT_SERVING
            await core.gate.flush_failures()
        await publish_serving(server.health, ("", SERVICE_NAME), await asyncio.to_thread(core.audit.probe))

    return job


async def build(config: SecurityConfig) -> VigilServer:
    """Build the security server: domain core, servicer, policy reload (SIGHUP + file watch)."""
    core = SecurityCore.from_config(config)
    telemetry = Instrumentation("security", config.server)
    server = VigilServer(config.server, "security", interceptors=telemetry.server_interceptors)
    server.add_servicer(_pb_grpc.add_SecurityServiceServicer_to_server, SecurityServicer(core), SERVICE_NAME)
    policy = core.gate.policy
    loop = asyncio.get_running_loop()
    sighup = policy.install_sighup(loop)
    stop = asyncio.Event()
    watcher = asyncio.create_task(policy.watch(stop, config.policy_poll_s))
    prober = asyncio.create_task(every(stop, config.audit.health_probe_s, _audit_health(server, core)))

    async def shutdown() -> None:
        stop.set()
        await asyncio.gather(watcher, prober)
        if sighup:
            policy.remove_sighup(loop)
        with contextlib.suppress(Unavailable):  # logged by the audit log; nothing more to do at exit
            await core.gate.flush_failures(force=True)
        core.close()

    server.on_shutdown(shutdown)
    telemetry.attach(server)  # /metrics; spans flushed after the core has closed
    return server
