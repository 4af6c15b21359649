"""Artifact integrity: streamed SHA-256 verification and digest-checked HTTPS downloads.

A digest mismatch is a *result* (``match=False``), not an error: the caller asked
"is this the right file?" and "no" is an answer. Bad requests (paths outside the
roots, malformed digests, disallowed URLs) raise `InvalidArgument`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import ssl
import stat
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from pydantic import Field

from services.common import (
    ConfigModel,
    DeadlineExceeded,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.security._findings import Finding, to_violations
from services.security._paths import PathValidator

__all__ = ["ArtifactResult", "ArtifactVerifier", "DownloadConfig", "SecureDownloader", "sha256_file"]

_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_MANIFEST_BYTES = 16 << 20


class DownloadConfig(ConfigModel):
    """Secure download settings."""

    allowed_hosts: tuple[str, ...] = ()
    """Hosts (``name`` or ``name:port``) artifacts may be fetched from; empty disables downloads."""
    max_bytes: int = Field(default=1 << 30, ge=1, le=1 << 40)
    """Largest artifact accepted; the transfer is aborted past it."""
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """Deadline for the whole transfer (also the per-read socket timeout)."""
    ca_file: Path | None = None
    """PEM bundle of CAs to trust instead of the system store (private artifact servers, tests)."""


@dataclass(frozen=True)
class ArtifactResult:
    """Outcome of a verification or a download."""

    path: str
    sha256: str
    expected_sha256: str
    match: bool
    size: int
    reason: str = ""
    canonical_path: str = ""
    """Absolute path that was hashed (or stored)."""


def sha256_file(path: Path) -> tuple[str, int]:
    """Return (hex SHA-256, size) of ``path``, read in 1 MiB chunks (constant memory)."""
    with open(path, "rb") as f:
        return _sha256_stream(f)


def _sha256_stream(f: BinaryIO) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := f.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def _expected(field: str, value: str) -> str:
    digest = value.strip().lower().removeprefix("sha256:")
    if not _HEX64.match(digest):
        raise InvalidArgument(
            f"{field} must be 64 hex characters (SHA-256)",
            [FieldViolation(field, "must be 64 hex characters (SHA-256)", "BAD_DIGEST")],
        )
    return digest


def _escaped(field: str) -> InvalidArgument:
    msg = "path resolves through a symlink outside the roots"
    return InvalidArgument(f"{field}: {msg}", [FieldViolation(field, msg, "PATH_SYMLINK_ESCAPE")])


def open_inside(field: str, real: Path, roots: Sequence[PathValidator]) -> BinaryIO:
    """Open the validated regular file ``real`` for reading, still inside ``roots`` when opened.

    Validation and open are two steps; a symlink swapped in between must not lead outside
    the roots. ``O_NOFOLLOW`` refuses a final component that became a symlink (``real`` is
    canonical, so it held none), and the opened descriptor's own path (``/proc/self/fd``)
    must be inside a root, which catches a directory above it swapped for a symlink.

    Raises:
        InvalidArgument: the file escaped the roots, is a directory or not a regular file.
        FileNotFoundError, OSError: as ``open`` (mapped by the caller).
    """
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a symlink now
            raise _escaped(field) from None
        raise
    try:
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # no /proc: the canonical path now must still name this very file
            opened = os.path.realpath(real)
            if not os.path.samestat(os.stat(opened), os.fstat(fd)):
                raise _escaped(field) from None
        if not any(root.contains(opened) for root in roots):
            raise _escaped(field)
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(mode):
            raise InvalidArgument(
                f"{field} is not a regular file", [FieldViolation(field, "not a regular file", "NOT_A_FILE")]
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _checked_path(paths: PathValidator, field: str, value: str) -> Path:
    findings, real = paths.resolve(field, value)
    if real is None:
        raise InvalidArgument(f"{field} is not an allowed path", to_violations(findings))
    return real


class ArtifactVerifier:
    """Verifies files under the allowed roots against a digest or a ``sha256sum``-style manifest."""

    def __init__(self, *roots: PathValidator, before_open: Callable[[Path], None] | None = None) -> None:
        """One validator per root; a relative path names a file in the first root that has it.

        ``before_open`` is a fault-injection point for tests: it runs between a path's
        validation and its open (where a concurrent symlink swap would happen).
        """
        self.roots = roots
        self._before_open = before_open

    def _locate(self, field: str, value: str) -> Path:
        accepted: list[Path] = []
        refused: list[Finding] = []
        for paths in self.roots:
            findings, real = paths.resolve(field, value)
            if any(f.code == "PATH_SYMLINK_ESCAPE" for f in findings):
                # The path exists in this root and leads out of it: that is the answer, whatever
                # a later root holds (falling through would answer NOT_FOUND and hide the escape).
                raise InvalidArgument(f"{field} is not an allowed path", to_violations(findings))
            if real is None:
                refused = refused or findings
            elif real.exists():
                return real
            else:
                accepted.append(real)
        if accepted:
            return accepted[0]  # valid but missing: hashing it reports NotFound
        raise InvalidArgument(f"{field} is not an allowed path", to_violations(refused))

    def verify(self, path: str, expected_sha256: str = "", manifest_path: str = "") -> ArtifactResult:
        """Hash ``path`` and compare. Exactly one of ``expected_sha256`` / ``manifest_path`` is required.

        Raises:
            InvalidArgument: bad path, digest, or manifest; NotFound: the file does not exist.
        """
        if bool(expected_sha256) == bool(manifest_path):
            raise InvalidArgument(
                "give exactly one of expected_sha256 or manifest_path",
                [FieldViolation("expected_sha256", "exactly one of expected_sha256/manifest_path", "ONE_OF")],
            )
        real = self._locate("path", path)
        if manifest_path:
            expected, reason = self._from_manifest(self._locate("manifest_path", manifest_path), real)
            if not expected:
                actual, size = self._hash("path", real)
                return ArtifactResult(path, actual, "", False, size, reason, str(real))
        else:
            expected = _expected("expected_sha256", expected_sha256)
        actual, size = self._hash("path", real)
        match = actual == expected
        reason = "" if match else "digest mismatch"
        return ArtifactResult(path, actual, expected, match, size, reason, str(real))

    def _open(self, field: str, real: Path) -> BinaryIO:
        if self._before_open is not None:
            self._before_open(real)
        return open_inside(field, real, self.roots)

    def _hash(self, field: str, real: Path) -> tuple[str, int]:
        try:
            with self._open(field, real) as f:
                return _sha256_stream(f)
        except FileNotFoundError:
            raise NotFound(f"{field}: no such file") from None
        except IsADirectoryError:
            raise InvalidArgument(
                f"{field} is a directory", [FieldViolation(field, "is a directory", "NOT_A_FILE")]
            ) from None
        except OSError as exc:
            raise Unavailable(f"{field}: cannot read file ({exc.strerror})") from None

    def _from_manifest(self, manifest: Path, artifact: Path) -> tuple[str, str]:
        """Return (expected digest, "") or ("", why not listed)."""
        try:
            with self._open("manifest_path", manifest) as f:
                raw = f.read(_MAX_MANIFEST_BYTES + 1)
            if len(raw) > _MAX_MANIFEST_BYTES:
                raise InvalidArgument(
                    "manifest too large", [FieldViolation("manifest_path", "too large", "TOO_LARGE")]
                )
            text = raw.decode("utf-8")
        except FileNotFoundError:
            raise NotFound("manifest_path: no such file") from None
        except (UnicodeDecodeError, IsADirectoryError):
            raise InvalidArgument(
                "manifest is not a text file",
                [FieldViolation("manifest_path", "not a UTF-8 text file", "BAD_MANIFEST")],
            ) from None
        for line in text.splitlines():
            digest, _, name = line.strip().partition(" ")
            name = name.strip().removeprefix("*")
            if not name or not _HEX64.match(digest.lower()):
                continue
            listed = os.path.realpath(manifest.parent / name)
            if listed == str(artifact):
                return digest.lower(), ""
        return "", "artifact is not listed in the manifest"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to a host or scheme we do not allow; refuse them all.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class SecureDownloader:
    """Downloads over HTTPS from allowed hosts into the artifact root, atomically and digest-checked."""

    def __init__(self, config: DownloadConfig, paths: PathValidator) -> None:
        self.config = config
        self.paths = paths
        ctx = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx), _RefuseRedirects()
        )
        self._hosts = {h.lower() for h in config.allowed_hosts}

    def _check_url(self, url: str) -> None:
        def bad(reason: str, text: str) -> InvalidArgument:
            return InvalidArgument(f"url {text}", [FieldViolation("url", text, reason)])

        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise bad("URL_MALFORMED", "is not a valid URL") from None
        if parts.scheme != "https":
            raise bad("URL_NOT_HTTPS", "must use https")
        if parts.username or parts.password:
            raise bad("URL_CREDENTIALS", "must not carry credentials")
        host = (parts.hostname or "").lower()
        if not host or (host not in self._hosts and f"{host}:{port}" not in self._hosts):
            raise bad("URL_HOST_NOT_ALLOWED", "host is not in the allowed download hosts")

    def download(self, url: str, expected_sha256: str, dest: str) -> ArtifactResult:
        """Fetch ``url`` to ``dest`` (relative to the artifact root) if its SHA-256 matches.

        On mismatch nothing is written at ``dest`` and the result says so.

        Raises:
            InvalidArgument: bad URL/digest/destination; DeadlineExceeded: too slow;
            Unavailable: network/TLS/HTTP failure.
        """
        self._check_url(url)
        expected = _expected("expected_sha256", expected_sha256)
        target = _checked_path(self.paths, "dest", dest)
        cfg = self.config
        deadline = time.monotonic() + cfg.timeout_s
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = self._fetch(url, out, deadline)
                if digest == expected:
                    out.flush()
                    os.fsync(out.fileno())
            if digest != expected:
                return ArtifactResult(dest, digest, expected, False, size, "digest mismatch; nothing stored")
            os.replace(tmp, target)  # atomic: readers see no file or the whole verified file
            return ArtifactResult(dest, digest, expected, True, size, canonical_path=str(target))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _fetch(self, url: str, out: BinaryIO, deadline: float) -> tuple[str, int]:
        cfg = self.config
        h = hashlib.sha256()
        size = 0
        try:
            with self._opener.open(url, timeout=cfg.timeout_s) as resp:
                length = resp.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > cfg.max_bytes:
                    raise InvalidArgument(
                        "artifact is larger than the size cap",
                        [FieldViolation("url", f"artifact larger than {cfg.max_bytes} bytes", "TOO_LARGE")],
                    )
                while chunk := resp.read(64 << 10):
                    size += len(chunk)
                    if size > cfg.max_bytes:
                        raise InvalidArgument(
                            "artifact is larger than the size cap",
                            [
                                FieldViolation(
                                    "url", f"artifact larger than {cfg.max_bytes} bytes", "TOO_LARGE"
                                )
                            ],
                        )
                    if time.monotonic() > deadline:
                        raise DeadlineExceeded(f"download took longer than {cfg.timeout_s}s")
                    h.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"download failed: HTTP {exc.code}") from None
        except TimeoutError:
            raise DeadlineExceeded(f"download took longer than {cfg.timeout_s}s") from None
        except (urllib.error.URLError, ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise DeadlineExceeded(f"download took longer than {cfg.timeout_s}s") from None
            raise Unavailable(f"download failed: {str(reason)[:200]}") from None
        return h.hexdigest(), size
