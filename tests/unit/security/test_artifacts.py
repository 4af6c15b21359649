"""VerifyArtifact (streamed digest, manifest) and secure download against a local HTTPS server + test CA."""

from __future__ import annotations

import hashlib
import http.server
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common import DeadlineExceeded, InvalidArgument, NotFound, Unavailable
from services.security import ArtifactVerifier, DownloadConfig, PathValidator, SecureDownloader, sha256_file
from tests.unit.security._support import CertFiles, body_route, https_server, make_ca_and_cert

PAYLOAD = b"model weights v1\n" * 1000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "artifacts"
    r.mkdir()
    (r / "model.bin").write_bytes(PAYLOAD)
    return r


@pytest.fixture
def verifier(root: Path) -> ArtifactVerifier:
    return ArtifactVerifier(PathValidator([root]))


def test_streamed_digest_of_a_multi_chunk_file(tmp_path: Path) -> None:
    big = tmp_path / "big"
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with big.open("wb") as f:
        for _ in range(5):
            f.write(chunk)
        f.write(b"tail")
    assert sha256_file(big) == (hashlib.sha256(chunk * 5 + b"tail").hexdigest(), 5 * len(chunk) + 4)


def test_verify_match_and_mismatch_is_reported_not_raised(verifier: ArtifactVerifier) -> None:
    ok = verifier.verify("model.bin", expected_sha256=DIGEST.upper())
    assert ok.match and ok.sha256 == DIGEST and ok.size == len(PAYLOAD)
    bad = verifier.verify("model.bin", expected_sha256="sha256:" + "0" * 64)
    assert not bad.match and bad.sha256 == DIGEST and bad.reason == "digest mismatch"


def test_verify_against_manifest(root: Path, verifier: ArtifactVerifier) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "other.bin").write_bytes(b"other")
    (root / "SHA256SUMS").write_text(f"{DIGEST}  model.bin\n{'1' * 64} *sub/other.bin\nnot a line\n")
    assert verifier.verify("model.bin", manifest_path="SHA256SUMS").match
    other = verifier.verify("sub/other.bin", manifest_path="SHA256SUMS")
    assert not other.match and other.expected_sha256 == "1" * 64
    (root / "unlisted.bin").write_bytes(b"u")
    unlisted = verifier.verify("unlisted.bin", manifest_path="SHA256SUMS")
    assert not unlisted.match and "not listed" in unlisted.reason


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"path": "../etc/passwd", "expected_sha256": DIGEST}, InvalidArgument),
        ({"path": "model.bin", "expected_sha256": "xyz"}, InvalidArgument),
        ({"path": "model.bin"}, InvalidArgument),
        ({"path": "model.bin", "expected_sha256": DIGEST, "manifest_path": "m"}, InvalidArgument),
        ({"path": "missing.bin", "expected_sha256": DIGEST}, NotFound),
        ({"path": ".", "expected_sha256": DIGEST}, InvalidArgument),
        ({"path": "model.bin", "manifest_path": "missing"}, NotFound),
        ({"path": "model.bin", "manifest_path": "../m"}, InvalidArgument),
    ],
)
def test_verify_bad_requests(
    verifier: ArtifactVerifier, kwargs: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        verifier.verify(**kwargs)


# --- secure download ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_ca_and_cert(tmp_path_factory.mktemp("tls"))


def downloader(root: Path, certs: CertFiles, port: int, **cfg: object) -> SecureDownloader:
    config = DownloadConfig(allowed_hosts=(f"localhost:{port}",), ca_file=certs.ca, **cfg)  # type: ignore[arg-type]
    return SecureDownloader(config, PathValidator([root]))


def slow_route(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "100")
    h.end_headers()
    h.wfile.write(b"x")
    h.wfile.flush()
    time.sleep(2)  # the fault: a server that stalls mid-body


def redirect_route(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(302)
    h.send_header("Location", "https://evil.example/x")
    h.send_header("Content-Length", "0")
    h.end_headers()


ROUTES = {
    "/model.bin": body_route(PAYLOAD),
    "/no-length": body_route(b"x" * 10_000, length=-1),
    "/huge": body_route(b"x" * 10_000),
    "/slow": slow_route,
    "/redirect": redirect_route,
}


def test_download_verifies_and_moves_atomically(root: Path, certs: CertFiles) -> None:
    with https_server(certs, ROUTES) as port:
        d = downloader(root, certs, port)
        result = d.download(f"https://localhost:{port}/model.bin", DIGEST, "fetched/model.bin")
    assert result.match and result.size == len(PAYLOAD)
    assert (root / "fetched" / "model.bin").read_bytes() == PAYLOAD
    assert not [p for p in (root / "fetched").iterdir() if p.name.startswith(".part-")]


def test_digest_mismatch_stores_nothing(root: Path, certs: CertFiles) -> None:
    with https_server(certs, ROUTES) as port:
        result = downloader(root, certs, port).download(
            f"https://localhost:{port}/model.bin", "0" * 64, "m.bin"
        )
    assert not result.match and result.sha256 == DIGEST
    assert sorted(p.name for p in root.iterdir()) == ["model.bin"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:{port}/model.bin", "URL_NOT_HTTPS"),
        ("https://127.0.0.1:{port}/model.bin", "URL_HOST_NOT_ALLOWED"),
        ("https://localhost:1/model.bin", "URL_HOST_NOT_ALLOWED"),
        ("https://user:pw@localhost:{port}/model.bin", "URL_CREDENTIALS"),
        ("https://localhost:99999999/x", "URL_MALFORMED"),
        ("file:///etc/passwd", "URL_NOT_HTTPS"),
        ("", "URL_NOT_HTTPS"),
    ],
)
def test_url_policy(root: Path, certs: CertFiles, url: str, reason: str) -> None:
    with https_server(certs, ROUTES) as port, pytest.raises(InvalidArgument) as exc:
        downloader(root, certs, port).download(url.format(port=port), DIGEST, "x.bin")
    assert exc.value.violations[0].reason == reason


def test_destination_must_stay_in_root(root: Path, certs: CertFiles) -> None:
    with https_server(certs, ROUTES) as port, pytest.raises(InvalidArgument):
        downloader(root, certs, port).download(f"https://localhost:{port}/model.bin", DIGEST, "../escape.bin")


def test_size_cap_by_header_and_by_stream(root: Path, certs: CertFiles) -> None:
    with https_server(certs, ROUTES) as port:
        d = downloader(root, certs, port, max_bytes=1000)
        with pytest.raises(InvalidArgument, match="size cap"):
            d.download(f"https://localhost:{port}/huge", DIGEST, "h.bin")
        with pytest.raises(InvalidArgument, match="size cap"):
            d.download(f"https://localhost:{port}/no-length", DIGEST, "l.bin")
    assert sorted(p.name for p in root.iterdir()) == ["model.bin"]


def test_untrusted_certificate_and_redirects_and_errors(root: Path, certs: CertFiles, tmp_path: Path) -> None:
    other_ca = make_ca_and_cert(tmp_path / "other")
    with https_server(certs, ROUTES) as port:
        untrusting = SecureDownloader(
            DownloadConfig(allowed_hosts=(f"localhost:{port}",), ca_file=other_ca.ca), PathValidator([root])
        )
        with pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.download(f"https://localhost:{port}/model.bin", DIGEST, "u.bin")
        d = downloader(root, certs, port)
        with pytest.raises(Unavailable, match="HTTP 302"):
            d.download(f"https://localhost:{port}/redirect", DIGEST, "r.bin")
        with pytest.raises(Unavailable, match="HTTP 404"):
            d.download(f"https://localhost:{port}/nope", DIGEST, "n.bin")


def test_timeout(root: Path, certs: CertFiles) -> None:
    with https_server(certs, ROUTES) as port, pytest.raises(DeadlineExceeded):
        downloader(root, certs, port, timeout_s=0.3).download(
            f"https://localhost:{port}/slow", DIGEST, "s.bin"
        )
    assert sorted(p.name for p in root.iterdir()) == ["model.bin"]


def test_relative_paths_search_the_roots_in_order(tmp_path: Path) -> None:
    data, artifacts = tmp_path / "data", tmp_path / "artifacts"
    data.mkdir()
    artifacts.mkdir()
    (artifacts / "fetched.bin").write_bytes(PAYLOAD)
    (data / "both.bin").write_bytes(b"data copy")
    (artifacts / "both.bin").write_bytes(b"artifact copy")
    verifier = ArtifactVerifier(PathValidator([data]), PathValidator([artifacts]))
    found = verifier.verify("fetched.bin", expected_sha256=DIGEST)
    assert found.match and found.canonical_path == str((artifacts / "fetched.bin").resolve())
    first = verifier.verify("both.bin", expected_sha256=hashlib.sha256(b"data copy").hexdigest())
    assert first.match and first.canonical_path == str((data / "both.bin").resolve())
    with pytest.raises(NotFound):
        verifier.verify("nowhere.bin", expected_sha256=DIGEST)
    with pytest.raises(InvalidArgument):
        verifier.verify("../artifacts/fetched.bin", expected_sha256=DIGEST)


SECRET = b"outside the root\n"


def _swap_file_for_symlink(target: Path) -> Callable[[Path], None]:
    def swap(real: Path) -> None:  # runs between validation and open, like a racing attacker
        real.unlink()
        real.symlink_to(target)

    return swap


def _swap_dir_for_symlink(outside_dir: Path) -> Callable[[Path], None]:
    def swap(real: Path) -> None:
        real.parent.rename(real.parent.with_name("moved"))
        real.parent.symlink_to(outside_dir, target_is_directory=True)

    return swap


@pytest.mark.parametrize("swap_dir", [False, True])
def test_a_symlink_swapped_in_after_validation_cannot_escape_the_root(
    tmp_path: Path, root: Path, swap_dir: bool
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.bin").write_bytes(SECRET)
    (root / "sub").mkdir()
    (root / "sub" / "model.bin").write_bytes(PAYLOAD)
    swap = _swap_dir_for_symlink(outside) if swap_dir else _swap_file_for_symlink(outside / "model.bin")
    verifier = ArtifactVerifier(PathValidator([root]), before_open=swap)
    with pytest.raises(InvalidArgument) as exc:
        verifier.verify("sub/model.bin", hashlib.sha256(SECRET).hexdigest())
    assert [v.reason for v in exc.value.violations] == ["PATH_SYMLINK_ESCAPE"]


def test_a_swapped_manifest_cannot_escape_the_root(tmp_path: Path, root: Path) -> None:
    outside = tmp_path / "outside.sha256"
    outside.write_text(f"{DIGEST}  model.bin\n")
    (root / "SHA256SUMS").write_text(f"{'0' * 64}  model.bin\n")

    def swap(real: Path) -> None:
        if real.name == "SHA256SUMS":
            _swap_file_for_symlink(outside)(real)

    verifier = ArtifactVerifier(PathValidator([root]), before_open=swap)
    with pytest.raises(InvalidArgument) as exc:
        verifier.verify("model.bin", manifest_path="SHA256SUMS")
    assert [v.reason for v in exc.value.violations] == ["PATH_SYMLINK_ESCAPE"]
