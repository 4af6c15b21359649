"""Path validation: decode every encoding, reject traversal forms, canonicalize, require containment.

Order matters: first look at every *form* the path could take once some layer decodes
it (raw, percent-decoded repeatedly, NFKC-folded) and reject traversal, NUL, backslash,
drive and UNC forms in any of them; only then resolve symlinks with ``realpath`` and
require the result to be the root itself or under ``root + os.sep`` (the trailing
separator stops ``/data`` from admitting ``/data-evil``).
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote_to_bytes

from services.security._findings import Finding

__all__ = ["PathValidator"]

_MAX_DECODE_ROUNDS = 4
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_IIS_UNICODE = re.compile(r"%u[0-9A-Fa-f]{4}", re.IGNORECASE)
_CONTROL = re.compile(r"[\x01-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_UNC = re.compile(r"^(?:\\\\|//|\\/|/\\)")
# ".." and forms Windows treats the same after stripping trailing dots and spaces ("...", ".. ").
_DOTDOT = re.compile(r"^\.\.[. ]*$")
# Slash and dot look-alikes that NFKC does not fold (e.g. U+2215 DIVISION SLASH).
_LOOKALIKES = str.maketrans(
    {"\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u2024": ".", "\uff0e": ".", "\u3002": "."}
)


def _decoded_forms(value: str) -> tuple[list[str], list[Finding]]:
    """Every string the path may become after percent-decoding and Unicode folding."""
    problems: list[Finding] = []
    forms = [value]
    cur = value
    if _IIS_UNICODE.search(cur):
        cur = _IIS_UNICODE.sub(lambda m: chr(int(m.group()[2:], 16)), cur)
        forms.append(cur)
    for _ in range(_MAX_DECODE_ROUNDS):
        if _PERCENT.search(cur) is None:
            break
        try:
            nxt = unquote_to_bytes(cur).decode("utf-8")
        except UnicodeDecodeError as exc:
            # Overlong UTF-8 (%c0%ae is a forbidden 2-byte '.') and other invalid sequences.
            problems.append(
                Finding("PATH_BAD_ENCODING", "", exc.start, "invalid UTF-8 after percent-decoding")
            )
            break
        forms.append(nxt)
        cur = nxt
    folded = unicodedata.normalize("NFKC", cur).translate(_LOOKALIKES)
    if folded != cur:
        if any(folded.count(c) > cur.count(c) for c in "./\\"):
            problems.append(
                Finding("PATH_LOOKALIKE", "", 0, "Unicode look-alikes of '.', '/' or '\\' in path")
            )
        forms.append(folded)
    return forms, problems


class PathValidator:
    """Validates user-supplied paths against configured roots."""

    def __init__(self, roots: Sequence[Path], *, allow_absolute: bool = False, max_chars: int = 4096) -> None:
        # Roots are canonicalized once: containment is checked against real paths only.
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)
        self._root_strs = tuple(str(r) for r in self.roots)
        self.allow_absolute = allow_absolute
        self.max_chars = max_chars

    def validate(self, field: str, value: object) -> list[Finding]:
        """Return findings for ``value`` (empty when it is a safe path inside a root)."""
        return self._resolved(field, value)[0]

    def contains(self, path: str) -> bool:
        """True when the canonical ``path`` is one of the roots or below one."""
        return _inside(path, self._root_strs)

    def resolve(self, field: str, value: object) -> tuple[list[Finding], Path | None]:
        """Return (findings, canonical path). The path is None whenever there is a finding."""
        findings, real = self._resolved(field, value)
        return findings, None if real is None else Path(real)

    def _resolved(self, field: str, value: object) -> tuple[list[Finding], str | None]:
        """`resolve` with the canonical path as a string (`validate` needs no Path object)."""
        if not isinstance(value, str):
            return [
                Finding("NOT_TEXT", field, -1, f"expected a path string, got {type(value).__name__}")
            ], None
        if not value:
            return [Finding("PATH_EMPTY", field, -1, "path is empty")], None
        if len(value) > self.max_chars:
            return [
                Finding("PATH_TOO_LONG", field, self.max_chars, f"longer than {self.max_chars} characters")
            ], None
        findings = self._lexical(field, value)
        if findings:
            return findings, None
        if not self.roots:
            return [Finding("PATH_NO_ROOTS", field, -1, "no allowed roots are configured")], None
        return self._contain(field, value)

    def _lexical(self, field: str, value: str) -> list[Finding]:
        out: dict[str, Finding] = {}

        def add(code: str, pos: int, msg: str) -> None:
            out.setdefault(code, Finding(code, field, pos, msg))

        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            add("PATH_BAD_ENCODING", exc.start, "path is not valid Unicode (lone surrogate)")
        if _IIS_UNICODE.search(value):
            add("PATH_ENCODED", value.lower().find("%u"), "%u-encoded characters are not allowed")
        if _PERCENT.search(value):
            add("PATH_ENCODED", value.find("%"), "percent-encoded characters are not allowed in paths")
        forms, problems = _decoded_forms(value)
        for p in problems:
            add(p.code, p.position, p.message)
        for form in forms:
            if "\x00" in form:
                add("PATH_NUL", form.index("\x00"), "NUL byte in path")
            m = _CONTROL.search(form)
            if m:
                add("PATH_CONTROL_CHAR", m.start(), f"control character U+{ord(m.group()):04X} in path")
            if _UNC.match(form):
                add("PATH_UNC", 0, "UNC or network path forms are not allowed")
            elif _DRIVE.match(form):
                add("PATH_WINDOWS_DRIVE", 0, "Windows drive paths are not allowed")
            if "\\" in form:
                add("PATH_BACKSLASH", form.index("\\"), "backslash in path")
            if form.startswith("/") and not self.allow_absolute:
                add("PATH_ABSOLUTE", 0, "absolute paths are not allowed; give a path relative to the root")
            pos = 0
            for seg in re.split(r"[/\\]", form):
                if _DOTDOT.match(seg):
                    add("PATH_TRAVERSAL", pos, "'..' path traversal is not allowed")
                pos += len(seg) + 1
        return list(out.values())

    def _contain(self, field: str, value: str) -> tuple[list[Finding], str | None]:
        cand = value if value.startswith("/") else os.path.join(self._root_strs[0], value)
        try:
            real = _realpath(cand, self._root_strs)
        except (OSError, ValueError):
            return [Finding("PATH_UNRESOLVABLE", field, -1, "path cannot be resolved")], None
        if _inside(real, self._root_strs):
            return [], real
        if _inside(os.path.normpath(cand), self._root_strs):
            msg = "path resolves through a symlink outside the roots"
            return [Finding("PATH_SYMLINK_ESCAPE", field, -1, msg)], None
        return [Finding("PATH_OUTSIDE_ROOT", field, -1, "path is outside the allowed roots")], None


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    """``path`` is a root or under ``root + sep`` (so ``/data`` never admits ``/data-evil``)."""
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _realpath(path: str, roots: tuple[str, ...]) -> str:
    """``os.path.realpath``, skipping the lstat calls for the (already canonical) root prefix.

    Lexically rejected paths never reach here, so ``path`` has no ``..``. Below a canonical
    root, a path none of whose components is a symlink is its own canonical form; the first
    symlink (or anything unusual) hands the whole path to ``os.path.realpath``.
    """
    path = os.path.normpath(path)
    root = next((r for r in roots if path == r or path.startswith(r.rstrip(os.sep) + os.sep)), None)
    if root is None:
        return os.path.realpath(path)
    current = root
    for part in path[len(root) :].split(os.sep):
        if not part:
            continue
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return path  # nothing exists from here down, so nothing below can be a symlink
        if stat.S_ISLNK(mode):
            return os.path.realpath(path)
    return path
