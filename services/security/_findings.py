"""A validation finding: what is wrong, where, with a stable code. Validators return these."""

from __future__ import annotations

from dataclasses import dataclass

from services.common import FieldViolation

__all__ = ["Finding", "to_violations"]


@dataclass(frozen=True)
class Finding:
    """One problem found in an input.

    Attributes:
        code: Stable machine-readable reason, e.g. ``PATH_TRAVERSAL``.
        field: Dotted path of the field, e.g. ``params.files[2]``.
        position: Character (or element) index in the field where it was found; -1 if not applicable.
        message: Human-readable description, never echoing secrets.
    """

    code: str
    field: str
    position: int
    message: str
    blocking: bool = True
    """False for warnings: reported but the request may proceed."""

    def to_violation(self) -> FieldViolation:
        where = f" (at {self.position})" if self.position >= 0 else ""
        return FieldViolation(field=self.field, description=f"{self.message}{where}", reason=self.code)


def to_violations(findings: list[Finding]) -> list[FieldViolation]:
    """One `FieldViolation` per blocking finding, in order (for ``INVALID_ARGUMENT`` BadRequest details)."""
    return [f.to_violation() for f in findings if f.blocking]
