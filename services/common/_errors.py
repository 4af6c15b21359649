"""Domain errors: one root, structured fields, mapped to gRPC status in one place.

Domain code raises these; it never imports grpc to report a failure. The edge
(`services.common.status`) turns each into a gRPC status code with a message, and
`InvalidArgument` additionally into `google.rpc.BadRequest` field violations.
The mapping from class to code lives here, on the class, so a new error cannot be
added without choosing its code.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One reason a request field is invalid (maps to google.rpc.BadRequest.FieldViolation).

    Attributes:
        field: Dotted path of the offending field, e.g. ``params.path`` or ``points[3].t``.
        description: What is wrong, written for the caller.
        reason: Stable machine-readable code, e.g. ``PATH_TRAVERSAL``.
    """

    field: str
    description: str
    reason: str = ""


class VigilError(Exception):
    """Root of every error Vigil reports to callers.

    Subclasses set ``code``; the message is shown to the caller, so it must say
    what is wrong without leaking secrets.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VigilError):
    """The request is malformed or fails validation; carries field violations."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations: list[FieldViolation] = list(violations or [])


class Unauthenticated(VigilError):
    """No credentials, or credentials that are invalid or expired."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(VigilError):
    """The caller is known but lacks the level or role the action needs."""

    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(VigilError):
    """The named entity (run, workflow, component) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(VigilError):
    """A conflicting entity exists (e.g. idempotency key reused with another request)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(VigilError):
    """The system is not in a state that allows the operation (e.g. READ_ONLY)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(VigilError):
    """A concurrency conflict: another writer won (e.g. a fenced write after a lease moved)."""

    code = grpc.StatusCode.ABORTED


class Unavailable(VigilError):
    """A dependency cannot be reached; the caller may retry later.

    ``retry_after_s``, when known, is how long the caller should wait (sent as RetryInfo);
    None: the server has no estimate (clients use their own backoff).
    """

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(VigilError):
    """The operation did not finish within its deadline or timeout."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(VigilError):
    """The operation was cancelled by the caller."""

    code = grpc.StatusCode.CANCELLED


class ResourceExhausted(VigilError):
    """Load was shed or a rate limit hit; ``retry_after_s`` tells the caller when to retry.

    ``advised`` is False for a refusal received without RetryInfo (e.g. gRPC's own "message
    too large"): its delay is a guess, and clients do not wait it out (`RetryAfter`).
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float = 1.0, *, advised: bool = True) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.advised = advised


class Unimplemented(VigilError):
    """The RPC or feature is not built (yet); never answered with a fake result."""

    code = grpc.StatusCode.UNIMPLEMENTED
