"""Client of the security service: Screen once per StartRun (fail closed), VerifyArtifact.

Transport retries are gRPC's own: the channel's service config retries UNAVAILABLE with
backoff, within the call's deadline. A RESOURCE_EXHAUSTED refusal (the caller's rate limit)
is waited out as its RetryInfo says, within the same deadline (`RetryAfter`): every call
here is safe to repeat (a refused Screen wrote nothing; the others only read).

The security service's decision is passed through as the matching domain error (with
BadRequest field violations and RetryInfo preserved); anything that prevents a decision is
Unavailable, so no run starts without one.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from google.protobuf.struct_pb2 import Struct

from services.common import (
    FAST_RECONNECT,
    INLINE_ONLY,
    ClientTLSConfig,
    Offload,
    PooledStub,
    RetryAfter,
    SecurityLevel,
    Unauthenticated,
    Unavailable,
    VigilError,
    client_interceptors,
    from_rpc_error,
    pooled_channels,
    struct_to_dict,
)
from services.workflow._policies import CircuitBreaker
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._screen_stream import ScreenStreams
from vigil.security.v1 import security_pb2 as _spb
from vigil.security.v1 import security_pb2_grpc as _spb_grpc

if TYPE_CHECKING:
    from services.security import Principal

__all__ = [
    "SECURITY_SERVICE_CONFIG",
    "Caller",
    "LocalCallers",
    "Screened",
    "SecurityClient",
    "TokenVerifier",
    "error_from_rpc",
]

SECURITY_SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": "vigil.security.v1.SecurityService"}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}

SECURITY_CHANNELS = 4
"""Connections to the security service (its replicas share one port)."""
_AUTH_CACHE_MAX = 10_000


class TokenVerifier(Protocol):
    """`services.security.KeyMaterialAuthenticator`: a token -> its principal, locally."""

    async def authenticate_async(self, token: str) -> Principal: ...


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of a read or cancel RPC."""

    subject: str
    level: SecurityLevel

    @property
    def privileged(self) -> bool:
        return self.level >= SecurityLevel.PRIVILEGED

    @property
    def admin(self) -> bool:
        """ADMIN callers may see, cancel and retry every principal's runs (others only their own)."""
        return self.level >= SecurityLevel.ADMIN


@dataclass(frozen=True)
class Screened:
    """An allowed start: who asked, and the params the handler will receive."""

    subject: str
    level: SecurityLevel
    params: dict[str, Any]
    audit_id: str = ""
    redactions: dict[str, int] = field(default_factory=dict)

    @property
    def privileged(self) -> bool:
        return self.level >= SecurityLevel.PRIVILEGED


# The security service's answers: passed through as they are, never counted by the breaker
# (`counts_against_breaker`), so one caller's bad token or missing file refuses nobody else.
_DECISIONS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_RETRY_AFTER_S = 0.5
"""Retry delay advised for a call refused because the security service is unreachable."""


def error_from_rpc(err: grpc.aio.AioRpcError, what: str) -> VigilError:
    """The domain error for a failed call to the security service (its decision stands)."""
    if err.code() in _DECISIONS:
        return from_rpc_error(err)
    # No decision (unreachable, timed out, broken): fail closed, retryable.
    return Unavailable(
        f"security service unavailable for {what}: {err.code().name} {err.details() or ''}".strip(),
        retry_after_s=_RETRY_AFTER_S,
    )


class LocalCallers:
    """Callers of reads verified here from the security key material (no RPC, so reads work
    while the security service is down); the same rules as its Authenticate."""

    def __init__(self, auth: TokenVerifier) -> None:
        self._auth = auth

    async def authenticate(self, token: str, remaining_s: float | None = None) -> Caller:
        """Who ``token`` belongs to; raises Unauthenticated (or Unavailable: unreadable keys)."""
        if not token:
            raise Unauthenticated("missing bearer token")
        principal = await self._auth.authenticate_async(token)
        return Caller(principal.subject, principal.level)


def _level(principal: _spb.Principal) -> SecurityLevel:
    """The caller's level; UNSPECIFIED (or a newer service's unknown level) is PUBLIC, the least."""
    level = SecurityLevel.from_proto(principal.level)
    return SecurityLevel.PUBLIC if level is None else level


def _struct(value: dict[str, Any] | None) -> Struct:
    s = Struct()
    if value:
        s.update(value)
    return s


# Screening params of many small entries near the 256 KiB default limit takes the security
# service about a second of CPU on one check thread, so four at once queue for about four:
# a fixed 2 s deadline failed them (and counted against the breaker) though nothing was down.
_SCREEN_S_PER_BYTE = 1.0 / (64 << 10)


class SecurityClient:
    """Async client of ``vigil.security.v1.SecurityService`` over one channel."""

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 2.0,
        service_token: Callable[[], str | None] | None = None,
        auth_cache_s: float = 30.0,
        stream: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        breaker: CircuitBreaker | None = None,
        tls: ClientTLSConfig | None = None,
        retry_after: RetryAfter | None = None,
        offload: Offload | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._offload = offload or INLINE_ONLY  # where large screened params are converted back
        self._retry_after = retry_after or RetryAfter(max_attempts=3, max_wait_s=1.0)
        self._service_token = service_token or (lambda: None)
        # Successful authentications of read/cancel callers, by token digest (never the token):
        # reads keep working for recent callers through a short security outage, and a revoked
        # token stops working within auth_cache_s. StartRun never uses it (Screen every time).
        self._auth_cache: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._auth_cache_s, self._mono = auth_cache_s, monotonic
        # The dependency's breaker: while security keeps failing, calls fail fast (UNAVAILABLE)
        # instead of each waiting out connection attempts; its answers (auth, validation,
        # not found: `counts_against_breaker`) never count as failures.
        self.breaker = breaker or CircuitBreaker(
            "security", monotonic, window_s=10, min_calls=5, failure_rate=0.5, open_s=1.0, half_open_probes=1
        )
        # A few connections, spread by the kernel over the security replicas sharing the port:
        # a dying replica costs a retry on another connection, not a failed call. TLS/mTLS
        # when configured: the end caller's token travels in every Screen request.
        channels = pooled_channels(
            address,
            SECURITY_CHANNELS,
            SECURITY_SERVICE_CONFIG,
            tls=tls,
            # Trace context to security (none when off); unary only: ScreenStream uses read/write.
            interceptors=client_interceptors(streams=False),
            options=[
                # Reconnect quickly after an outage, or every run is refused although security is back.
                *FAST_RECONNECT,
            ],
        )
        self._stub = PooledStub(_spb_grpc.SecurityServiceStub, channels)
        # Screen on one long-lived stream per connection (unary when off or unsupported); each
        # screening carries its own trace context, so a run's trace crosses into security either way.
        self._screens: ScreenStreams | None = (
            ScreenStreams(channels, self._stub.Screen, monotonic=monotonic) if stream else None
        )
        # Each policy's input schema as a Struct, built once: policies are frozen and few.
        self._schemas: dict[int, tuple[WorkflowPolicy, Struct]] = {}

    def _schema_struct(self, policy: WorkflowPolicy) -> Struct:
        # Keyed by identity; the policy is kept in the entry so its id is never reused.
        entry = self._schemas.get(id(policy))
        if entry is None:
            entry = self._schemas[id(policy)] = (policy, _struct(policy.input_schema))
        return entry[1]

    async def close(self) -> None:
        if self._screens is not None:
            await self._screens.close()
        await self._stub.close()

    async def _call(
        self,
        method: Any,
        request: Any,
        deadline_s: float,
        metadata: tuple[tuple[str, str], ...] | None,
        what: str,
    ) -> Any:
        """One RPC through the dependency's breaker, all attempts within ``deadline_s``;
        failures become domain errors."""
        end = time.monotonic() + deadline_s

        async def attempt() -> Any:
            timeout = max(0.001, end - time.monotonic())
            try:
                return await method(request, timeout=timeout, metadata=metadata)
            except grpc.aio.AioRpcError as err:
                raise error_from_rpc(err, what) from None

        return await self._retry_after.call(lambda: self.breaker.call(attempt), budget_s=deadline_s)

    def _timeout(self, remaining_s: float | None, params_bytes: int = 0) -> float:
        """``security_timeout_s``, plus `_SCREEN_S_PER_BYTE` for each byte of params screened
        (the screening is linear in their size), never past the caller's own deadline."""
        timeout = self._timeout_s + params_bytes * _SCREEN_S_PER_BYTE
        return timeout if remaining_s is None else max(0.001, min(timeout, remaining_s))

    async def screen(
        self,
        *,
        token: str,
        workflow: str,
        params: dict[str, Any],
        policy: WorkflowPolicy,
        request_id: str,
        remaining_s: float | None = None,
        params_message: Struct | None = None,
    ) -> Screened:
        """Authorize, validate and sanitize a start; raises the security service's decision.
        ``params_message``: ``params`` as the caller sent them, forwarded as they are."""
        request = _spb.ScreenRequest(
            token=token,
            workflow=workflow,
            params=params_message if params_message is not None else _struct(params),
            params_schema=self._schema_struct(policy),
            required_level=SecurityLevel.parse(policy.required_level).to_proto(),
            prompt_fields=policy.prompt_fields,
            path_fields=policy.path_fields,
            trajectory_fields=policy.trajectory_fields,
            request_id=request_id,
        )
        # The token travels in the request (Screen reads it there), not also as metadata:
        # each metadata entry costs both ends ~20 us per call.
        method = self._stub.Screen if self._screens is None else self._screens.Screen
        timeout = self._timeout(remaining_s, request.params.ByteSize())
        resp = await self._call(method, request, timeout, None, "Screen")
        sanitized = resp.sanitized_params
        return Screened(
            subject=resp.principal.subject,
            level=_level(resp.principal),
            params=await self._offload.run(sanitized.ByteSize(), struct_to_dict, sanitized),
            audit_id=resp.audit_id,
            redactions=dict(resp.redactions),
        )

    async def authenticate(self, token: str, remaining_s: float | None = None) -> Caller:
        """Who ``token`` belongs to; raises Unauthenticated, or Unavailable (fail closed)."""
        if not token:
            raise Unauthenticated("missing bearer token")
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._auth_cache.get(key)
        if cached is not None and cached[1] > self._mono():
            return cached[0]
        resp = await self._call(
            self._stub.Authenticate,
            _spb.AuthenticateRequest(token=token),
            self._timeout(remaining_s),
            (("authorization", f"Bearer {token}"),),
            "Authenticate",
        )
        caller = Caller(resp.principal.subject, _level(resp.principal))
        self._auth_cache[key] = (caller, self._mono() + self._auth_cache_s)
        self._auth_cache.move_to_end(key)
        while len(self._auth_cache) > _AUTH_CACHE_MAX:
            self._auth_cache.popitem(last=False)
        return caller

    async def verify_artifact(self, path: str, sha256: str) -> dict[str, Any]:
        """VerifyArtifact with the service's own token; a mismatch is a result, not an error."""
        token = self._service_token()
        if not token:
            raise Unauthenticated("no service token available for VerifyArtifact (service_token_file)")
        metadata = (("authorization", f"Bearer {token}"),)
        request = _spb.VerifyArtifactRequest(path=path, expected_sha256=sha256)
        resp = await self._call(
            self._stub.VerifyArtifact, request, self._timeout_s * 5, metadata, "VerifyArtifact"
        )
        return {
            "match": resp.match,
            "actual_sha256": resp.actual_sha256,
            "expected_sha256": resp.expected_sha256,
            "size_bytes": resp.size_bytes,
            "canonical_path": resp.canonical_path,
            "message": resp.message,
        }
