"""API keys, JWTs and the Authenticator: what is accepted and every way a token is refused."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from services.common import ResourceExhausted, Unauthenticated
from services.security import (
    ApiKeyVerifier,
    AuthConfig,
    Authenticator,
    JWTConfig,
    JWTVerifier,
    KeyEntry,
    Level,
    Rate,
    hash_token,
    load_keys_file,
)
from tests.unit.security._support import FAST_N, fast_key

SECRET = b"s" * 48


def test_api_key_round_trip_and_entry_holds_no_secret() -> None:
    token, entry = fast_key("ci-bot", Level.PRIVILEGED, ("deploy",))
    assert token.startswith(f"vgl_{entry.id}_")
    secret = token.split("_", 2)[2]
    assert secret not in entry.model_dump_json() and token not in entry.hash
    p = ApiKeyVerifier([entry]).verify(token)
    assert (p.subject, p.level, p.roles, p.via, p.credential_id) == (
        "ci-bot", Level.PRIVILEGED, frozenset({"deploy"}), "api_key", entry.id,
    )  # fmt: skip


def test_same_token_hashes_differently_each_time() -> None:
    assert hash_token("vgl_x", n=FAST_N) != hash_token("vgl_x", n=FAST_N)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret, right id
        lambda t: "vgl_ffffffffffff_" + t.split("_", 2)[2],  # unknown id
        lambda t: t.upper(),
        lambda t: t + " ",
        lambda t: t[:20],
        lambda t: "vgl_",
        lambda t: t.replace("vgl_", "vgI_"),
    ],
)
def test_api_key_rejections(mutate) -> None:  # type: ignore[no-untyped-def]
    token, entry = fast_key("a", Level.ADMIN)
    verifier = ApiKeyVerifier([entry])
    verifier.verify(token)  # warm the cache: a cached success must not admit a near-miss
    with pytest.raises(Unauthenticated):
        verifier.verify(mutate(token))


def test_key_entry_rejects_bad_hash_and_level() -> None:
    _, entry = fast_key("a", Level.ADMIN)
    data = entry.model_dump()
    with pytest.raises(ValidationError):
        KeyEntry.model_validate({**data, "hash": "plaintext"})
    with pytest.raises(ValidationError):
        KeyEntry.model_validate({**data, "hash": "scrypt$3$8$1$AAAA$AAAA"})  # n not a power of two
    with pytest.raises(ValidationError):
        KeyEntry.model_validate({**data, "level": "ROOT"})
    assert KeyEntry.model_validate({**data, "level": "admin"}).level is Level.ADMIN


def test_duplicate_key_ids_are_refused() -> None:
    _, entry = fast_key("a", Level.ADMIN)
    with pytest.raises(ValueError, match="duplicate"):
        ApiKeyVerifier([entry, entry])


def test_keys_file_loading(tmp_path: Path) -> None:
    token, entry = fast_key("dev", Level.ADMIN)
    f = tmp_path / "keys.yaml"
    assert load_keys_file(f) == []  # missing file: no keys
    f.write_text(yaml.safe_dump([entry.model_dump(mode="json")]))
    auth = Authenticator(AuthConfig(keys_file=f))
    assert auth.authenticate(token).subject == "dev"
    f.write_text("- {id: nothex}\n")
    with pytest.raises(ValueError, match="entry 0"):
        load_keys_file(f)
    f.write_text("just a string")
    with pytest.raises(ValueError, match="list"):
        load_keys_file(f)


# --- JWT ---------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, object]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    out: dict[str, object] = {"rsa": rsa_key, "ec": ec_key}
    for name, key in (("rsa", rsa_key), ("ec", ec_key)):
        pub = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (tmp_path / f"{name}.pub").write_bytes(pub)
        out[f"{name}_pub"] = tmp_path / f"{name}.pub"
    (tmp_path / "hmac").write_bytes(SECRET)
    out["hmac"] = tmp_path / "hmac"
    return out


def claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "alice", "exp": now + 300, "iat": now, "iss": "vigil", "aud": "vigil-api", **extra}


def hs_verifier(keys: dict[str, object], **cfg: object) -> JWTVerifier:
    return JWTVerifier(
        JWTConfig(
            algorithms=("HS256",), hmac_secret_file=keys["hmac"], issuer="vigil", audience="vigil-api", **cfg
        )
    )


@pytest.mark.parametrize(("alg", "key_name"), [("RS256", "rsa"), ("ES256", "ec")])
def test_asymmetric_jwts(keys, alg, key_name) -> None:  # type: ignore[no-untyped-def]
    v = JWTVerifier(JWTConfig(algorithms=(alg,), public_key_file=keys[f"{key_name}_pub"], issuer="vigil"))
    token = jwt.encode(
        claims(vigil_level="PRIVILEGED", roles=["ops"], jti="j1"), keys[key_name], algorithm=alg
    )
    p = v.verify(token)
    assert (p.subject, p.level, p.roles, p.via, p.credential_id) == (
        "alice", Level.PRIVILEGED, frozenset({"ops"}), "jwt", "j1",
    )  # fmt: skip


def test_hs256_jwt_default_level(keys) -> None:  # type: ignore[no-untyped-def]
    p = hs_verifier(keys).verify(jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert p.level is Level.AUTHENTICATED


def _without(key: str) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in claims().items() if k != key}


# Payloads are built inside the test, not at collection: a time-relative claim computed when
# pytest collects goes stale once the suite runs longer than its margin.
@pytest.mark.parametrize(
    ("make_payload", "message"),
    [
        (lambda: claims(exp=int(time.time()) - 120), "expired"),
        (lambda: claims(nbf=int(time.time()) + 120), "not yet valid"),
        (lambda: claims(iss="evil"), "issuer"),
        (lambda: claims(aud="other"), "audience"),
        (lambda: _without("exp"), "exp"),
        (lambda: _without("sub"), "sub"),
        (lambda: _without("iss"), "iss"),
        (lambda: claims(vigil_level="ROOT"), "vigil_level"),
        (lambda: claims(roles="admin"), "roles"),
        (lambda: claims(sub=""), "sub"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "issuer",
        "audience",
        "no-exp",
        "no-sub",
        "no-iss",
        "bad-level",
        "roles",
        "empty-sub",
    ],
)
def test_hs256_jwt_rejections(keys, make_payload, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated, match=message):
        hs_verifier(keys).verify(jwt.encode(make_payload(), SECRET, algorithm="HS256"))


def test_leeway_is_honoured_and_bounded(keys) -> None:  # type: ignore[no-untyped-def]
    just_expired = jwt.encode(claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256")
    assert hs_verifier(keys, leeway_s=60).verify(just_expired).subject == "alice"
    with pytest.raises(Unauthenticated, match="expired"):
        hs_verifier(keys, leeway_s=0).verify(just_expired)
    with pytest.raises(ValidationError):
        JWTConfig(leeway_s=3600)


def test_level_above_cap_is_refused(keys) -> None:  # type: ignore[no-untyped-def]
    token = jwt.encode(claims(vigil_level="ADMIN"), SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="above"):
        hs_verifier(keys, max_level="PRIVILEGED").verify(token)


def test_wrong_signature_and_algorithm_attacks(keys) -> None:  # type: ignore[no-untyped-def]
    v = hs_verifier(keys)
    with pytest.raises(Unauthenticated):
        v.verify(jwt.encode(claims(), b"x" * 48, algorithm="HS256"))
    unsigned = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(Unauthenticated, match="algorithm"):
        v.verify(unsigned)
    # Algorithm confusion: an HS256 token keyed with the RSA *public* key must not pass an RS256 verifier.
    rs = JWTVerifier(JWTConfig(algorithms=("RS256",), public_key_file=keys["rsa_pub"]))
    header, payload, _ = jwt.encode(claims(), keys["rsa"], algorithm="RS256").split(".")
    import base64
    import hashlib
    import hmac

    forged_sig = hmac.new(
        keys["rsa_pub"].read_bytes(), f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    forged_header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    forged = f"{forged_header}.{payload}.{base64.urlsafe_b64encode(forged_sig).rstrip(b'=').decode()}"
    with pytest.raises(Unauthenticated, match="algorithm"):
        rs.verify(forged)


def test_jwt_config_errors(keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="hmac_secret_file"):
        JWTVerifier(JWTConfig(algorithms=("HS256",)))
    (tmp_path / "short").write_bytes(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        JWTVerifier(JWTConfig(algorithms=("HS256",), hmac_secret_file=tmp_path / "short"))
    with pytest.raises(ValueError, match="not a key"):
        JWTVerifier(JWTConfig(algorithms=("RS256",), public_key_file=keys["ec_pub"]))


@pytest.mark.parametrize("token", ["", "   ", "garbage", "a.b", "a.b.c", "x" * 9000, "vgl_zz"])
def test_authenticator_rejects_junk(keys, token) -> None:  # type: ignore[no-untyped-def]
    auth = Authenticator(AuthConfig(jwt=JWTConfig(algorithms=("HS256",), hmac_secret_file=keys["hmac"])))
    with pytest.raises(Unauthenticated):
        auth.authenticate(token)


def test_authenticator_without_jwt_refuses_jwts() -> None:
    with pytest.raises(Unauthenticated, match="JWTs are not accepted"):
        Authenticator(AuthConfig()).authenticate(jwt.encode(claims(), SECRET, algorithm="HS256"))


def test_authenticator_accepts_both_kinds(keys) -> None:  # type: ignore[no-untyped-def]
    token, entry = fast_key("svc", Level.ADMIN)
    auth = Authenticator(
        AuthConfig(api_keys=(entry,), jwt=JWTConfig(algorithms=("HS256",), hmac_secret_file=keys["hmac"]))
    )
    assert auth.authenticate(token).via == "api_key"
    assert auth.authenticate(jwt.encode(claims(), SECRET, algorithm="HS256")).via == "jwt"


def test_slow_verifications_are_throttled_per_key_id() -> None:
    clock = [0.0]
    token, entry = fast_key("a", Level.ADMIN)
    other_token, other = fast_key("b", Level.ADMIN)
    verifier = ApiKeyVerifier([entry, other], attempts_per_s=1, burst=3, now=lambda: clock[0])
    verifier.verify(token)  # 1 slow verification, then cached
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.verify(wrong)
    with pytest.raises(ResourceExhausted) as exc:
        verifier.verify(wrong)
    assert exc.value.retry_after_s == pytest.approx(1.0)
    assert verifier.verify(token).subject == "a"  # the cached legitimate token is unaffected
    assert verifier.verify(other_token).subject == "b"  # other key ids are unaffected
    clock[0] += 1
    with pytest.raises(Unauthenticated):
        verifier.verify(wrong)


def test_verified_jwts_are_cached_until_exp(keys) -> None:  # type: ignore[no-untyped-def]
    clock = [time.time()]
    verifier = JWTVerifier(
        JWTConfig(algorithms=("HS256",), hmac_secret_file=keys["hmac"], issuer="vigil", audience="vigil-api"),
        now=lambda: clock[0],
    )
    payload = claims()
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # served from the cache
    clock[0] = float(payload["exp"]) + 1  # type: ignore[arg-type]
    assert verifier.verify(token) is not first  # past exp the cache entry is not used
    with pytest.raises(Unauthenticated):
        verifier.verify(token[:-2] + "xx")  # a near-miss is never served from the cache


def test_jwt_rate_limit_claim(keys) -> None:  # type: ignore[no-untyped-def]
    v = hs_verifier(keys)
    own = v.verify(jwt.encode(claims(vigil_rate_limit=50), SECRET, algorithm="HS256"))
    assert own.rate == Rate(50.0, 100.0)
    free = v.verify(jwt.encode(claims(sub="svc", vigil_rate_limit="unlimited"), SECRET, algorithm="HS256"))
    assert free.rate is not None and free.rate.unlimited
    assert v.verify(jwt.encode(claims(sub="plain"), SECRET, algorithm="HS256")).rate is None
    with pytest.raises(Unauthenticated, match="vigil_rate_limit"):
        v.verify(jwt.encode(claims(sub="bad", vigil_rate_limit=-3), SECRET, algorithm="HS256"))
