"""The thin gRPC servicer of vigil.security.v1.SecurityService.

Each method reads the caller's token, peer and request id from the call, translates the
request into one `SecurityOperations` call and translates the result back. Domain errors
propagate unchanged; the runtime maps them to status codes (with BadRequest and RetryInfo
details) in one place.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from functools import partial
from typing import Any

import grpc
from google.protobuf import struct_pb2

from services.common import SecurityLevel, bearer_token, optional_timestamp, security_level_pb
from services.security._audit import AuditFilter
from services.security._convert import (
    decision_name,
    event_pb,
    finding_pb,
    principal_pb,
    struct_from_py,
    struct_to_py,
)
from services.security._operations import (
    Call,
    ParamsInput,
    PathInput,
    PromptInput,
    SecurityOperations,
    TrajectoryInput,
    ValidationInput,
)
from services.security._screen import ScreenInput
from services.security._stream import serve_screen_stream
from vigil.security.v1 import security_pb2 as _pb
from vigil.security.v1 import security_pb2_grpc as _pb_grpc

__all__ = ["SecurityServicer"]


def _request_id(context: grpc.aio.ServicerContext, given: str = "") -> str:
    """``given``, else the ``x-request-id`` metadata (checked by the operation)."""
    return given or next((str(v) for k, v in context.invocation_metadata() or () if k == "x-request-id"), "")


def _call(context: grpc.aio.ServicerContext, *, token: str = "", request_id: str = "") -> Call:
    """The caller: ``token`` if given, else the authorization metadata (extracted by the gate)."""
    return Call(
        token=lambda: token or bearer_token(context.invocation_metadata()),
        peer=context.peer(),
        request_id=_request_id(context, request_id),
    )


def _epoch_s(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def _trajectory_points(traj: _pb.TrajectoryInput) -> list[dict[str, Any]]:
    return [{"t": p.t, "values": list(p.values)} for p in traj.points]


def _params_input(params: _pb.ParamsInput) -> ParamsInput:
    return ParamsInput(struct_to_py(params.schema), struct_to_py(params.params), params.ByteSize())


def _validation_input(request: _pb.ValidateInputRequest) -> ValidationInput | None:
    """The input to check; params inputs are converted by the caller (see `SecurityOperations.convert`)."""
    kind = request.WhichOneof("input")
    if kind == "prompt":
        return PromptInput(request.prompt.text)
    if kind == "path":
        return PathInput(request.path.root, request.path.path)
    if kind == "trajectory":
        traj = request.trajectory
        # Converted where the check runs: off the loop when the input is large.
        points = functools.partial(_trajectory_points, traj)
        return TrajectoryInput(points, traj.require_monotonic_time, traj.ByteSize())
    return None


class SecurityServicer(_pb_grpc.SecurityServiceServicer):
    """Translates SecurityService RPCs to `SecurityOperations` calls."""

    def __init__(self, ops: SecurityOperations, *, stream_max_in_flight: int = 256) -> None:
        self.ops = ops
        self.stream_max_in_flight = stream_max_in_flight

    async def Authenticate(self, request: _pb.AuthenticateRequest, context: grpc.aio.ServicerContext) -> Any:
        principal = await self.ops.authenticate(_call(context, token=request.token))
        return _pb.AuthenticateResponse(principal=principal_pb(principal))

    async def Authorize(self, request: _pb.AuthorizeRequest, context: grpc.aio.ServicerContext) -> Any:
        call = _call(context, token=request.token, request_id=request.request_id)
        principal, decision, record = await self.ops.authorize(call, request.action, request.resource)
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
        if request.WhichOneof("input") == "params":
            convert = partial(self.ops.convert, request.params.ByteSize(), _params_input, request.params)
            result = await self.ops.validate(_call(context), None, convert)  # converted once authenticated
        else:
            result = await self.ops.validate(_call(context), _validation_input(request))
        return _pb.ValidateInputResponse(
            findings=[finding_pb(f) for f in result.findings], canonical_path=result.canonical_path
        )

    async def Screen(self, request: _pb.ScreenRequest, context: grpc.aio.ServicerContext) -> Any:
        return await self._screen(request, context)

    async def ScreenStream(
        self, request_iterator: AsyncIterator[_pb.ScreenStreamRequest], context: grpc.aio.ServicerContext
    ) -> None:
        async def one(request: _pb.ScreenRequest) -> _pb.ScreenResponse:
            return await self._screen(request, context)

        await serve_screen_stream(request_iterator, context, one, self.stream_max_in_flight)

    async def _screen(self, request: _pb.ScreenRequest, context: grpc.aio.ServicerContext) -> Any:
        has_schema = request.HasField("params_schema") and len(request.params_schema.fields) > 0
        schema_key = request.params_schema.SerializeToString(deterministic=True) if has_schema else None
        size = request.params.ByteSize()

        async def convert() -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
            schema = None
            if schema_key is not None:  # a workflow sends the same schema every time: convert it once
                schema = self.ops.cached_schema(schema_key) or await self.ops.convert(
                    len(schema_key), struct_to_py, request.params_schema
                )
            return await self.ops.convert(size, struct_to_py, request.params), schema

        outcome = await self.ops.screen(
            ScreenInput(
                token=request.token,
                workflow=request.workflow,
                params={},
                convert=convert,  # once the caller is authenticated and allowed
                required_level=SecurityLevel.from_proto(request.required_level),
                prompt_fields=list(request.prompt_fields),
                path_fields=list(request.path_fields),
                trajectory_fields=list(request.trajectory_fields),
                request_id=_request_id(context, request.request_id),
                peer=context.peer(),
                params_bytes=size,
                schema_key=schema_key,
            )
        )
        return _pb.ScreenResponse(
            decision=_pb.DECISION_ALLOW,
            principal=principal_pb(outcome.principal),
            sanitized_params=await self._redacted_struct(
                request.params, outcome.sanitized_params, outcome.redactions, size
            ),
            redactions=outcome.redactions,
            findings=[finding_pb(f) for f in outcome.warnings],
            audit_id=outcome.audit_id,
        )

    async def Sanitize(self, request: _pb.SanitizeRequest, context: grpc.aio.ServicerContext) -> Any:
        size = request.data.ByteSize()
        convert = partial(self.ops.convert, size, struct_to_py, request.data)  # once authenticated
        text, data, counts = await self.ops.sanitize(
            _call(context), request.text, None, request.ByteSize(), convert
        )
        data_pb = await self._redacted_struct(request.data, data, counts, size)
        return _pb.SanitizeResponse(text=text, data=data_pb, redactions=counts)

    async def _redacted_struct(
        self, sent: struct_pb2.Struct, redacted: Mapping[str, Any], counts: Mapping[str, int], size: int
    ) -> struct_pb2.Struct:
        """The reply's Struct of ``redacted`` (the redaction of ``sent``, ``size`` bytes). Every
        replacement is counted, so with no counts nothing changed and ``sent`` goes back as it
        came, without a conversion."""
        return sent if not counts else await self.ops.convert(size, struct_from_py, redacted)

    async def VerifyArtifact(
        self, request: _pb.VerifyArtifactRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        result = await self.ops.verify_artifact(
            _call(context), request.path, request.expected_sha256, request.manifest_path
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
        result = await self.ops.fetch_artifact(
            _call(context), request.url, request.expected_sha256, request.dest_name
        )
        return _pb.FetchArtifactResponse(
            path=result.canonical_path, sha256=result.sha256, size_bytes=result.size
        )

    async def ListAuditEvents(
        self, request: _pb.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        flt = AuditFilter(
            subject=request.subject or None,
            action=request.action or None,
            decision=decision_name(request.decision),
            since_ts=_epoch_s(optional_timestamp(request, "since")),
            until_ts=_epoch_s(optional_timestamp(request, "until")),
        )
        records, token = await self.ops.list_audit(_call(context), flt, request.page_size, request.page_token)
        return _pb.ListAuditEventsResponse(events=[event_pb(r) for r in records], next_page_token=token)

    async def VerifyAuditLog(
        self, request: _pb.VerifyAuditLogRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        result = await self.ops.verify_audit(_call(context))
        return _pb.VerifyAuditLogResponse(
            ok=result.ok,
            records_checked=result.checked,
            first_bad_seq=result.first_bad_seq or 0,
            problem="; ".join(result.problems[:3]),
        )
