"""The security service's metric families (default registry, ``vigil_security_...``).

Defined once here, beside nothing else, so `_audit` and `_screen` only call
``.labels(...).inc()`` and a reader finds every security metric name in one place.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["AUDIT_CHAIN_OK", "AUDIT_EVENTS", "AUDIT_HEAD_SEQ", "VALIDATION_FAILURES"]

AUDIT_EVENTS = Counter(
    "vigil_security_audit_events_total", "Audit log entries written, by decision.", ["action", "decision"]
)
VALIDATION_FAILURES = Counter(
    "vigil_security_validation_failures_total", "Inputs refused by validation, by kind.", ["kind"]
)
AUDIT_HEAD_SEQ = Gauge(
    "vigil_audit_head_seq",
    "Sequence number of the newest audit record this process wrote or read: the exported chain anchor.",
    ["log"],
)
AUDIT_CHAIN_OK = Gauge(
    "vigil_audit_chain_ok", "1 while the last audit chain check found nothing wrong, 0 after it did.", ["log"]
)
