"""Proto <-> domain translation for the security servicer (no logic, no decisions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from services.common import list_to_py, struct_to_dict
from services.security._audit import GENESIS, AuditRecord
from services.security._findings import Finding
from services.security._principal import Principal
from vigil.security.v1 import security_pb2 as _pb

__all__ = [
    "decision_name",
    "event_pb",
    "finding_pb",
    "principal_pb",
    "struct_from_py",
    "struct_to_py",
]


def principal_pb(p: Principal) -> _pb.Principal:
    return _pb.Principal(
        subject=p.subject,
        level=p.level.to_proto(),
        roles=sorted(p.roles),
        auth_method=p.via,
        credential_id=p.credential_id,
    )


def finding_pb(f: Finding) -> _pb.Finding:
    return _pb.Finding(
        code=f.code,
        field=f.field,
        position=max(-1, min(f.position, 2**31 - 1)),
        message=f.message,
        severity=_pb.SEVERITY_ERROR if f.blocking else _pb.SEVERITY_WARNING,
    )


def struct_to_py(value: Any) -> Any:
    """Struct/ListValue -> plain dicts/lists (scalars are already Python values)."""
    if isinstance(value, struct_pb2.Struct):
        return struct_to_dict(value)
    if isinstance(value, struct_pb2.ListValue):
        return list_to_py(value)
    return value


def struct_from_py(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


_DECISIONS = {_pb.DECISION_ALLOW: "ALLOW", _pb.DECISION_DENY: "DENY"}


def decision_name(value: int) -> str | None:
    return _DECISIONS.get(value)  # type: ignore[call-overload]


def event_pb(r: AuditRecord) -> _pb.AuditEvent:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(r.ts * 1e9))
    return _pb.AuditEvent(
        seq=r.seq,
        event_id=r.id,
        time=ts,
        subject=r.subject,
        action=r.action,
        resource=r.resource,
        decision=_pb.DECISION_ALLOW if r.decision == "ALLOW" else _pb.DECISION_DENY,
        reason=r.reason,
        request_id=r.request_id,
        prev_hash="" if r.prev_hash == GENESIS else r.prev_hash,
        hash=r.hash,
    )
