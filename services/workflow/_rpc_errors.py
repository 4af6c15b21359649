"""Client side of the error mapping: a failed RPC back into the domain error it stands for."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.common import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    VigilError,
)

__all__ = ["from_rpc_error"]

_SIMPLE: dict[grpc.StatusCode, type[VigilError]] = {
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def _status(err: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


def from_rpc_error(err: grpc.aio.AioRpcError) -> VigilError:
    """The domain error for ``err``, with BadRequest violations and RetryInfo kept.

    Codes without a domain class (UNKNOWN, INTERNAL, ...) become a plain VigilError carrying
    the code, so callers can still tell them apart.
    """
    code, message = err.code(), err.details() or ""
    status = _status(err)
    details = list(status.details) if status is not None else []
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = []
        for detail in details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                violations += [FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations]
        return InvalidArgument(message, violations)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry_after = 1.0
        for detail in details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                retry_after = info.retry_delay.ToTimedelta().total_seconds()
        return ResourceExhausted(message, retry_after_s=retry_after)
    cls = _SIMPLE.get(code)
    if cls is not None:
        return cls(message)
    generic = VigilError(f"{code.name}: {message}")
    generic.code = code
    return generic
