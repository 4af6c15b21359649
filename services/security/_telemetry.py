"""The security service's metric families (default registry, ``vigil_security_...``).

Defined once here, beside nothing else, so `_audit` and `_screen` only call
``.labels(...).inc()`` and a reader finds every security metric name in one place.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["AUDIT_EVENTS", "VALIDATION_FAILURES"]

AUDIT_EVENTS = Counter(
    "vigil_security_audit_events_total", "Audit log entries written, by decision.", ["action", "decision"]
)
VALIDATION_FAILURES = Counter(
    "vigil_security_validation_failures_total", "Inputs refused by validation, by kind.", ["kind"]
)
