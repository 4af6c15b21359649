"""The gate every request passes: authenticate, rate-limit, authorize, and audit the outcome.

Invariant: no decision leaves the gate unless its audit record was written; failed
authentications beyond a rate are the one exception: they are counted and written as one
summary record (see `_failaudit`). If the
audit write fails, `AuditLog.append_async` raises `Unavailable` and the decision is refused.
Nothing here blocks the event loop: records go through the audit log's group-commit writer
thread and first-time API key verification (scrypt) runs on a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common import PermissionDenied, ResourceExhausted, Unauthenticated, Unavailable
from services.security._audit import AuditLog, AuditRecord
from services.security._auth import Authenticator
from services.security._failaudit import FailureAuditConfig, FailureAuditLimiter
from services.security._policy import Decision, PolicyStore
from services.security._principal import Level, Principal
from services.security._ratelimit import RateLimiter

__all__ = ["ANONYMOUS", "Gate", "TokenSource"]

ANONYMOUS = "anonymous"

TokenSource = str | Callable[[], str]
"""A bearer token, or a callable returning it (raising `Unauthenticated` when there is none)."""


class Gate:
    """Authentication, rate limiting and authorization with auditing. No gRPC dependency."""

    def __init__(
        self,
        auth: Authenticator,
        policy: PolicyStore,
        limiter: RateLimiter,
        audit: AuditLog,
        failures: FailureAuditLimiter | None = None,
    ) -> None:
        self.auth = auth
        self.policy = policy
        self.limiter = limiter
        self.audit = audit
        self.failures = failures or FailureAuditLimiter(FailureAuditConfig())

    async def authenticate(
        self, token: TokenSource, *, action: str, resource: str = "", request_id: str = "", peer: str = ""
    ) -> Principal:
        """Return the token's principal, rate-limited per subject.

        ``token`` is the token, or a callable that extracts it (e.g. from request metadata):
        extraction runs inside the audited path, so a missing or malformed credential is
        recorded like any other failed authentication.

        Failures are audited one by one up to the per-``peer`` and global bounds of
        ``failures``; beyond them they are counted into a periodic summary record
        (`flush_failures`). The refusal is raised either way.

        Raises:
            Unauthenticated: after auditing (or counting) the failure.
            ResourceExhausted: the subject's bucket is empty, or too many slow key verifications
                for one key id (the latter audited like a failure).
            Unavailable: the failure could not be audited.
        """
        try:
            principal = await self.auth.authenticate_async(token if isinstance(token, str) else token())
        except (Unauthenticated, ResourceExhausted) as exc:
            if self.failures.admit(peer or "unknown"):
                await self.audit.append_async(
                    action=action,
                    resource=resource,
                    decision="DENY",
                    subject=ANONYMOUS,
                    reason=exc.message,
                    request_id=request_id,
                    details={"peer": peer} if peer else {},
                )
            raise
        limits = self.limiter.config
        self.limiter.check(
            principal.subject, rate=limits.rate_for(principal.subject, principal.roles, principal.rate)
        )
        return principal

    async def flush_failures(self, *, force: bool = False) -> int:
        """Write the summary of failures not recorded one by one, when due (or ``force``d).

        Returns how many failures the summary accounts for (0: nothing written).

        Raises:
            Unavailable: the summary could not be written; its counts are kept for the next one.
        """
        counts = self.failures.take_summary(force=force)
        if counts is None:
            return 0
        total = sum(counts.values())
        try:
            await self.audit.append_async(
                action="authenticate.failures",
                decision="DENY",
                subject=ANONYMOUS,
                reason=f"{total} more failed authentications (not recorded one by one)",
                details={"count": total, "peers": len(counts), "top_peers": dict(counts.most_common(20))},
            )
        except Unavailable:
            self.failures.give_back(counts)
            raise
        return total

    def decide(
        self, principal: Principal, action: str, resource: str, min_level: Level | None = None
    ) -> Decision:
        """Policy decision for ``action:resource``, made stricter by ``min_level`` when given."""
        decision = self.policy.policy.decide(principal, f"{action}:{resource}")
        if decision.allowed and min_level is not None and principal.level < min_level:
            reason = (
                f"'{action}:{resource}' requires level {min_level.name}; caller has {principal.level.name}"
            )
            return Decision(False, decision.action, reason, min_level, decision.required_roles, decision.rule)
        if (
            decision.allowed
            and min_level is not None
            and (decision.required_level or Level.PUBLIC) < min_level
        ):
            return Decision(
                True, decision.action, decision.reason, min_level, decision.required_roles, decision.rule
            )
        return decision

    async def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str,
        *,
        request_id: str = "",
        min_level: Level | None = None,
        audit_action: str = "authorize",
    ) -> tuple[Decision, AuditRecord]:
        """Decide, audit the decision, and raise `PermissionDenied` (naming the requirement) on denial."""
        decision = self.decide(principal, action, resource, min_level)
        record = await self.audit.append_async(
            action=audit_action,
            resource=f"{action}:{resource}",
            decision="ALLOW" if decision.allowed else "DENY",
            subject=principal.subject,
            reason=decision.reason if not decision.allowed else f"rule {decision.rule}",
            request_id=request_id,
            details={
                "level": principal.level.name,
                "via": principal.via,
                "credential": principal.credential_id,
            },
        )
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        return decision, record

    async def require_level(
        self,
        token: TokenSource,
        level: Level,
        *,
        action: str,
        request_id: str = "",
        audit_allowed: bool = False,
        peer: str = "",
    ) -> Principal:
        """Guard for the service's own RPCs: the caller needs at least ``level`` (fixed by the contract).

        Denials are always audited; allowed calls only when ``audit_allowed`` (admin actions).
        """
        principal = await self.authenticate(token, action=action, request_id=request_id, peer=peer)
        if principal.level < level:
            reason = f"'{action}' requires level {level.name}; caller has {principal.level.name}"
            await self.audit.append_async(
                action=action,
                decision="DENY",
                subject=principal.subject,
                reason=reason,
                request_id=request_id,
            )
            raise PermissionDenied(reason)
        if audit_allowed:
            await self.audit.append_async(
                action=action,
                decision="ALLOW",
                subject=principal.subject,
                reason=f"level {principal.level.name}",
                request_id=request_id,
            )
        return principal
