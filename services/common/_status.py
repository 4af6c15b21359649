"""The one place where domain errors become gRPC statuses (rich details included).

`InvalidArgument` carries `google.rpc.BadRequest` field violations and `ResourceExhausted`
(and `Unavailable`, when it knows a delay) a `google.rpc.RetryInfo`, packed into the standard
`grpc-status-details-bin` trailer by grpcio-status, so any gRPC client can decode them.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common._errors import (
    FieldViolation,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
    VigilError,
)

__all__ = [
    "bad_request_violations",
    "from_rpc_error",
    "retry_delay_s",
    "rpc_code",
    "rpc_error_from_status",
    "status_code",
    "status_proto",
    "to_grpc_status",
]

# Status messages travel in a trailer; keep them bounded so a huge echoed value cannot
# blow the metadata limit and turn a clear error into a transport failure.
MAX_MESSAGE_CHARS = 1000
MAX_VIOLATIONS = 100


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(err: VigilError) -> grpc.Status:
    """Build the gRPC status (code, message, rich details) for a domain error."""
    return rpc_status.to_status(status_proto(err))


def status_proto(err: VigilError) -> status_pb2.Status:
    """The google.rpc.Status (code, bounded message, rich details) a domain error stands for."""
    code: grpc.StatusCode = err.code
    details: list[any_pb2.Any] = []
    if isinstance(err, InvalidArgument) and err.violations:
        bad = error_details_pb2.BadRequest()
        for v in err.violations[:MAX_VIOLATIONS]:
            bad.field_violations.add(
                field=_clip(v.field, 200), description=_clip(v.description, 500), reason=_clip(v.reason, 100)
            )
        details.append(_pack(bad))
    retry_after_s = err.retry_after_s if isinstance(err, ResourceExhausted | Unavailable) else None
    if retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(max(retry_after_s, 0.0) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code.value[0], message=_clip(err.message), details=details)


_CODES = {c.value[0]: c for c in grpc.StatusCode}
_DETAILS_KEY = "grpc-status-details-bin"


def status_code(value: int) -> grpc.StatusCode:
    """The gRPC status code numbered ``value`` (google.rpc.Code numbering); UNKNOWN if none is."""
    return _CODES.get(value, grpc.StatusCode.UNKNOWN)


def rpc_error_from_status(status: status_pb2.Status) -> grpc.aio.AioRpcError:
    """The failed call a google.rpc.Status received in a message stands for (client side).

    A per-item status of a stream (e.g. ScreenStream) becomes exactly the error the unary call
    would have raised, details in its trailer, so `from_rpc_error` and every classification of
    failed calls apply unchanged. An unknown code is UNKNOWN.
    """
    code = status_code(status.code)
    trailer = grpc.aio.Metadata((_DETAILS_KEY, status.SerializeToString())) if status.details else None
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailer or grpc.aio.Metadata(), status.message)


def _details_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[any_pb2.Any]:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details whose code or message disagree with the call's: ignore them
        return []
    return list(status.details) if status is not None else []


def bad_request_violations(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[FieldViolation]:
    """Decode the BadRequest field violations of a failed call (client side)."""
    found: list[FieldViolation] = []
    for detail in _details_of(error):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend(FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations)
    return found


def retry_delay_s(error: grpc.aio.AioRpcError | grpc.RpcError) -> float | None:
    """Decode the RetryInfo delay of a failed call, in seconds (client side)."""
    for detail in _details_of(error):
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


# Each error class names its own code; this inverse is derived from them, never kept by hand.
_BY_CODE: dict[grpc.StatusCode, type[VigilError]] = {cls.code: cls for cls in VigilError.__subclasses__()}


def rpc_code(error: grpc.RpcError) -> grpc.StatusCode:
    """The status code of a failed call. ``grpc.RpcError`` declares no ``code()``, but every
    error a call raises (sync `grpc.Call`, `grpc.aio.AioRpcError`) has one; UNKNOWN otherwise."""
    code = getattr(error, "code", None)
    return code() if callable(code) else grpc.StatusCode.UNKNOWN


def from_rpc_error(error: grpc.aio.AioRpcError | grpc.RpcError) -> VigilError:
    """The domain error a failed call stands for (client side), rich details kept.

    The inverse of `to_grpc_status`: BadRequest violations and RetryInfo come back as
    `InvalidArgument.violations` and `ResourceExhausted.retry_after_s` (`Unavailable.retry_after_s`).
    Codes without a domain class (UNKNOWN, INTERNAL, ...) become a plain VigilError carrying the code.
    """
    code = rpc_code(error)
    details = getattr(error, "details", None)
    message = (details() if callable(details) else None) or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(message, bad_request_violations(error))
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        delay = retry_delay_s(error)
        if delay is None:
            return ResourceExhausted(message, advised=False)
        return ResourceExhausted(message, retry_after_s=delay)
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(message, retry_after_s=retry_delay_s(error))
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(message)
    generic = VigilError(f"{code.name}: {message}")
    generic.code = code
    return generic


# google.rpc.Code and grpc.StatusCode share numbering; assert it once at import.
assert grpc.StatusCode.INVALID_ARGUMENT.value[0] == code_pb2.INVALID_ARGUMENT
