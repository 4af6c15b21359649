"""Redaction: PII and secret shapes, Luhn, counts never values, configured patterns, never raises."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.security import RedactionPattern, Redactor, luhn_ok, redact
from services.security._recognisers import BUILTIN
from tests.unit.security._redaction_support import CORPUS, NEEDY, RECOGNISER_EXAMPLES, REDACTOR

DATA = Path(__file__).parents[2] / "data"

CASES = [
    ("contact alice@example.com today", "email"),
    ("a.b+tag@sub.example.co.uk", "email"),
    ("call +1 415-555-0132", "phone"),
    ("call (415) 555-0132", "phone"),
    ("tel 020 7946 0958", "phone"),
    ("+44 20 7946 0958", "phone"),
    ("card 4111 1111 1111 1111", "card"),
    ("card 4111-1111-1111-1111", "card"),
    ("amex 378282246310005", "card"),
    ("mc 5555555555554444", "card"),
    ("from 192.168.1.20 port", "ipv4"),
    ("8.8.8.8", "ipv4"),
    ("v6 2001:db8::1 here", "ipv6"),
    ("fe80::1%eth0", "ipv6"),
    ("2001:db8::1", "ipv6"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ipv6"),
    ("Authorization: Bearer abcdef123456.xyz", "bearer_token"),
    ("token vgl_0123456789ab_" + "A" * 43, "api_key"),
    ("sk-" + "a" * 40, "api_key"),
    ("AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
    ("ASIAIOSFODNN7EXAMPLE", "aws_access_key"),
    ("ghp_" + "b" * 36, "github_token"),
    ("password=hunter2", "secret"),
    ("card 4111.1111.1111.1111", "card"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nabc\n-----END PRIVATE KEY-----", "private_key"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----", "private_key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\ntruncated key without end", "private_key"),
]


@pytest.mark.parametrize(("text", "kind"), CASES)
def test_each_kind_is_redacted(text: str, kind: str) -> None:
    out, counts = redact(text)
    assert counts.get(kind, 0) >= 1, (out, counts)
    assert f"[REDACTED:{kind}]" in out


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "version 1.2.3 and 10.0",
        "at 12:30:45 on 2024-05-01",
        "order 12345",
        "999.999.999.999",
        "plain text with no secrets",
        "ratio 3:2",
        "listening on 127.0.0.1:50052 and [::1]:50052 and 0.0.0.0",
    ],
)
def test_lookalikes_are_kept(text: str) -> None:
    assert redact(text) == (text, {})


def test_counts_never_carry_values() -> None:
    text = "a@x.io b@y.io 4111111111111111 10.0.0.1"
    out, counts = redact(text)
    assert counts == {"email": 2, "card": 1, "ipv4": 1}
    for secret in ("a@x.io", "b@y.io", "4111111111111111", "10.0.0.1"):
        assert secret not in out and secret not in repr(counts)


POSITIVES = [c for c in CORPUS if "kind" in c]
NEGATIVES = [c["text"] for c in CORPUS if "kind" not in c]


def test_the_corpus_positives_are_redacted_and_negatives_survive() -> None:
    missed = []
    for case in POSITIVES:
        out, counts = redact(case["text"])
        if case["secret"] in out or case["kind"] not in counts:
            missed.append((case["text"], out, counts))
    mangled = [(t, *redact(t)) for t in NEGATIVES if redact(t) != (t, {})]
    print(
        f"redaction corpus: {len(POSITIVES) - len(missed)}/{len(POSITIVES)} positives redacted, "
        f"{len(NEGATIVES) - len(mangled)}/{len(NEGATIVES)} look-alikes unchanged"
    )
    assert len(POSITIVES) >= 100 and len(NEGATIVES) >= 100
    assert not missed, missed
    assert not mangled, mangled


def test_the_reviews_lookalike_survives_in_an_error_message() -> None:
    # A limit printed by Python: '1e9' was '[REDACTED:phone].0'.
    text = "value 1000000000.0 over the limit 1e9"
    assert redact(text) == (text, {})


def test_names_stay_and_quotes_match() -> None:
    assert redact('{"password": "p w", "n": 1}')[0] == '{"password": "[REDACTED:secret]", "n": 1}'
    assert redact("db_password='x y'")[0] == "db_password='[REDACTED:secret]'"
    assert redact("postgresql://vigil:pw@db/x")[0] == "postgresql://vigil:[REDACTED:password]@db/x"


def test_redaction_is_idempotent() -> None:
    for case in POSITIVES:
        once = redact(case["text"])[0]
        assert redact(once) == (once, {}), (case["text"], once)


def test_mapping_keys_are_redacted_and_kept_distinct() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    value = {"a@x.io": 1, "b@y.io": {"ghp_" + "c" * 36: "v"}, jwt: [1], "c@z.io": 3, 5: "n"}
    out, counts = Redactor().redact_value(value)
    assert out == {
        "[REDACTED:email]": 1,
        "[REDACTED:email]#2": {"[REDACTED:github_token]": "v"},
        "[REDACTED:jwt]": [1],
        "[REDACTED:email]#3": 3,
        5: "n",
    }
    assert counts == {"email": 3, "github_token": 1, "jwt": 1}


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_configured_patterns_and_nested_values() -> None:
    r = Redactor([RedactionPattern(kind="employee_id", regex=r"\bEMP-\d{6}\b")])
    value = {"who": "EMP-123456", "list": ["x@y.com", 5, None, {"deep": "EMP-000001"}], "n": 3}
    out, counts = r.redact_value(value)
    assert out == {
        "who": "[REDACTED:employee_id]",
        "list": ["[REDACTED:email]", 5, None, {"deep": "[REDACTED:employee_id]"}],
        "n": 3,
    }
    assert counts == {"employee_id": 2, "email": 1}
    assert value["who"] == "EMP-123456"  # input untouched


def test_bad_configured_pattern_fails_fast() -> None:
    with pytest.raises(re.error):
        Redactor([RedactionPattern(kind="bad", regex="(unclosed")])


EMAILS = st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.(com|org|io)", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    out, counts = redact(text)
    assert isinstance(out, str) and all(isinstance(v, int) and v > 0 for v in counts.values())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=" ,;\n", max_size=5), EMAILS, st.text(alphabet=" ,;\n", max_size=5))
def test_embedded_emails_never_survive(pre: str, email: str, post: str) -> None:
    out, counts = redact(f"x{pre} {email} {post}y")
    assert email not in out and counts["email"] == 1


def test_a_recogniser_needs_what_each_of_its_matches_holds() -> None:
    # A need absent from a text rules its recogniser out: it must occur in every match.
    for rec in BUILTIN:
        found = [m for m in (re.search(rec.regex, e) for e in RECOGNISER_EXAMPLES[rec.kind]) if m]
        assert found, f"no example for {rec.kind} {rec.regex[:40]}"
        for m in found:
            assert re.search(rec.needs, m.group()), (rec.kind, m.group())


def test_slack_webhooks_are_found_whatever_their_case() -> None:
    # The prefilter once required lowercase "hooks" although the recogniser ignores case.
    out, counts = Redactor().redact("see HOOKS.SLACK.COM/services/TABCD/BABCD/XXXXXXXX")
    assert counts == {"slack_webhook": 1}, out


def test_remembered_clean_texts_answer_alike_and_the_memo_holds_no_secret() -> None:
    # Short clean texts are remembered (audit fields repeat on every request); a text that had
    # something redacted is redacted afresh every time and never kept.
    r = Redactor()
    secret = "password=hunter2hunter2"
    for _ in range(3):
        assert r.redact("svc-backend") == ("svc-backend", {})
        assert r.redact("0123456789ab") == ("0123456789ab", {})
        out, counts = r.redact(secret)
        assert "hunter2" not in out and counts == {"secret": 1}
    assert secret not in r._clean and "0123456789ab" in r._clean


def test_the_clean_memo_is_bounded_and_skips_long_texts() -> None:
    r = Redactor()
    for i in range(10_000):
        r.redact(f"value-{i}")
    assert 0 < len(r._clean) <= 4096
    long_text = "x" * 1000
    assert r.redact(long_text) == (long_text, {})
    assert long_text not in r._clean


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=40) | NEEDY,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10) | NEEDY, inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_a_value_with_nothing_counted_comes_back_unchanged(value: Any) -> None:
    # Screen answers with the request's own params when nothing was counted (no conversion).
    out, counts = REDACTOR.redact_value(value)
    if not counts:
        assert out == value


def test_an_ipv6_zone_is_bounded() -> None:
    # An unbounded zone id made the whole-text match of a cut address one 50 ms regex call.
    assert redact("fe80::1:2%eth0 up") == ("[REDACTED:ipv6] up", {"ipv6": 1})
    out, counts = redact("fe80::1%" + "e" * 100 + " up")
    assert counts == {"ipv6": 1} and out.startswith("[REDACTED:ipv6]%eee")
