"""Path validator: dozens of traversal encodings, real symlink escapes, prefix traps, never-raises."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.security import Finding, PathValidator

TRAVERSALS = [
    "../etc/passwd",
    "..",
    "a/../../etc",
    "a/b/../../../x",
    "./../x",
    "..//x",
    "x/..",
    "%2e%2e/etc/passwd",
    "%2E%2E/etc",
    "%2e%2e%2fetc%2fpasswd",
    "..%2fetc",
    "%2e./x",
    ".%2e/x",
    "%252e%252e/etc",
    "%25252e%25252e/etc",
    "%252e%252e%252fetc",
    "%c0%ae%c0%ae/etc",
    "%c0%ae%c0%ae%c0%afetc",
    "%e0%80%ae%e0%80%ae/etc",
    "%f0%80%80%ae%f0%80%80%ae/x",
    "%c1%1c",
    "%c0%2f",
    "..\\etc\\passwd",
    "a\\..\\..\\x",
    "..%5cetc",
    "%5c..%5cx",
    "..%255cetc",
    "../\x00.png",
    "ok.txt\x00.png",
    "ok%00.txt",
    "ok%2500.txt",
    "/etc/passwd",
    "//etc/passwd",
    "/../etc",
    "%2fetc%2fpasswd",
    "C:\\Windows\\system32",
    "c:/windows/win.ini",
    "C:..\\x",
    "\\\\server\\share\\x",
    "//server/share/x",
    "\\\\?\\C:\\x",
    "\\\\.\\pipe\\x",
    "%5c%5cserver%5cshare",
    "\uff0e\uff0e/etc",  # fullwidth dots
    "\u2024\u2024/etc",  # one-dot leaders
    "..\u2215etc",  # division slash
    "..\uff0fetc",  # fullwidth solidus
    "%u002e%u002e/etc",
    "%U002E%U002E%U2215etc",
    "... /x",
    ".. /x",
    "x/.. ",
    "a/\x01b",
    "\udcc0\udcae/x",  # surrogate-escaped overlong bytes
]

SAFE = [
    "a.txt",
    "dir/file.bin",
    "dir/sub/deep/file",
    "./a.txt",
    "a..b.txt",
    "..hidden-looking",
    "x/y.z",
    "é/ü.txt",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "data"
    (r / "dir" / "sub" / "deep").mkdir(parents=True)
    (r / "a.txt").write_text("a")
    return r


@pytest.mark.parametrize("value", TRAVERSALS)
def test_traversal_corpus_is_rejected(root: Path, value: str) -> None:
    findings, real = PathValidator([root]).resolve("path", value)
    assert findings and real is None, value
    assert all(f.field == "path" and f.code.startswith("PATH_") for f in findings)


@pytest.mark.parametrize("value", SAFE)
def test_safe_paths_resolve_inside_root(root: Path, value: str) -> None:
    findings, real = PathValidator([root]).resolve("path", value)
    assert findings == []
    assert real is not None and str(real).startswith(str(root.resolve()) + os.sep)


def test_specific_codes(root: Path) -> None:
    v = PathValidator([root])

    def codes(p: str) -> set[str]:
        return {f.code for f in v.validate("p", p)}

    assert codes("../x") == {"PATH_TRAVERSAL"}
    assert codes("%2e%2e/x") == {"PATH_ENCODED", "PATH_TRAVERSAL"}
    assert "PATH_BAD_ENCODING" in codes("%c0%ae%c0%ae/x")
    assert "PATH_NUL" in codes("a\x00b")
    assert "PATH_BACKSLASH" in codes("a\\b")
    assert codes("/etc/passwd") == {"PATH_ABSOLUTE"}
    assert "PATH_WINDOWS_DRIVE" in codes("C:\\x")
    assert "PATH_UNC" in codes("\\\\srv\\share")
    assert "PATH_LOOKALIKE" in codes("\uff0e\uff0e/x")
    assert codes("") == {"PATH_EMPTY"}
    assert codes("a" * 5000) == {"PATH_TOO_LONG"}
    assert codes(None) == {"NOT_TEXT"}  # type: ignore[arg-type]


def test_symlink_escape_is_detected(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key").write_text("k")
    (root / "link").symlink_to(outside)
    (root / "filelink").symlink_to(outside / "key")
    (root / "inner").symlink_to(root / "dir")  # a symlink that stays inside is fine
    v = PathValidator([root])
    assert [f.code for f in v.validate("p", "link/key")] == ["PATH_SYMLINK_ESCAPE"]
    assert [f.code for f in v.validate("p", "filelink")] == ["PATH_SYMLINK_ESCAPE"]
    findings, real = v.resolve("p", "inner/sub")
    assert findings == [] and real == (root / "dir" / "sub").resolve()


def test_symlink_loop_does_not_raise(root: Path) -> None:
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    PathValidator([root]).validate("p", "loop1/x")  # any finding or none, but no exception


def test_root_prefix_trap(tmp_path: Path) -> None:
    """``/data`` must not admit ``/data-evil``: containment uses root + separator."""
    root = tmp_path / "data"
    evil = tmp_path / "data-evil"
    root.mkdir()
    evil.mkdir()
    (root / "escape").symlink_to(evil)
    v = PathValidator([root], allow_absolute=True)
    assert [f.code for f in v.validate("p", str(evil / "x"))] == ["PATH_OUTSIDE_ROOT"]
    assert [f.code for f in v.validate("p", "escape/x")] == ["PATH_SYMLINK_ESCAPE"]
    assert v.validate("p", str(root / "x")) == []
    assert v.validate("p", str(root)) == []


def test_root_itself_is_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    findings, path = PathValidator([tmp_path / "alias"]).resolve("p", "f.txt")
    assert findings == [] and path == real / "f.txt"


def test_no_roots_configured() -> None:
    assert [f.code for f in PathValidator([]).validate("p", "a")] == ["PATH_NO_ROOTS"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=120))
def test_never_raises_and_never_escapes(tmp_path_factory: pytest.TempPathFactory, value: str) -> None:
    root = tmp_path_factory.getbasetemp() / "prop-root"
    root.mkdir(exist_ok=True)
    findings, real = PathValidator([root]).resolve("p", value)
    assert all(isinstance(f, Finding) for f in findings)
    if real is not None:
        assert real == root.resolve() or str(real).startswith(str(root.resolve()) + os.sep)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["..", ".", "%2e", "%2f", "%25", "%c0%ae", "\\", "/", "a", "\x00", "\uff0e", "C:"]),
        max_size=12,
    )
)
def test_never_escapes_on_traversal_fragments(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    root = tmp_path_factory.getbasetemp() / "prop-root2"
    root.mkdir(exist_ok=True)
    _, real = PathValidator([root]).resolve("p", "".join(parts))
    if real is not None:
        assert real == root.resolve() or str(real).startswith(str(root.resolve()) + os.sep)
        assert ".." not in re.split(r"[/\\]", "".join(parts))
