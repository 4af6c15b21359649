"""What the redaction tests share: the corpus, text dense in the recognisers' needs, an
example of each recogniser, and the reference search (one regex joining every recogniser)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from services.security import Redactor

DATA = Path(__file__).parents[2] / "data"
CORPUS = [json.loads(line) for line in (DATA / "redaction_corpus.jsonl").read_text().splitlines()]

NEEDY = st.lists(
    st.sampled_from(
        [
            *"aZ09.:@=~-_/+ \"'\n",
            "eyJ",
            "Bearer ",
            "ya29.",
            "AKIA",
            "vgl_",
            "sk-",
            "ghp_",
            "xoxb-",
            "hooks.slack.com/services/",
            "password",
            "://",
            "-----BEGIN RSA PRIVATE KEY-----",
            "4111 1111 ",
        ]
    ),
    max_size=40,
).map("".join)


def spans(matches: Any) -> list[tuple[int, int, str | None]]:
    return [(m.start(), m.end(), m.lastgroup) for m in matches]


def joined(r: Redactor, text: str) -> list[tuple[int, int, str | None]]:
    """The reference: what ``re.sub`` of every recogniser joined would replace in ``text``."""
    return spans(re.compile("|".join(r._parts)).finditer(text))


REDACTOR = Redactor()
RECOGNISER_EXAMPLES = {
    "private_key": ["-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----"],
    "bearer_token": ["Authorization: BEARER abc.def-123"],
    "basic_auth": ["Authorization: Basic dXNlcjpwYXNz"],
    "api_key": ["vgl_0123456789ab_ABCDEFGHIJKLMNOPQRSTUV", "sk-proj-ABCDEFGHIJKLMNOPQRSTUV"],
    "aws_credentials": ["AKIAABCDEFGHIJKLMNOP,abcdefghijABCDEFGHIJabcdefghijABCDEFGHIJ"],
    "aws_access_key": ["ASIAABCDEFGHIJKLMNOP"],
    "gcp_api_key": ["AIza" + "a" * 35],
    "gcp_token": ["ya29." + "a" * 30],
    "azure_secret": ["abc1Q~" + "a" * 32],
    "github_token": ["ghp_" + "a" * 36, "github_pat_" + "a" * 30],
    "slack_token": ["xoxb-1234567890-abc"],
    "slack_webhook": ["Hooks.Slack.com/services/T000/B000/XXXX"],
    "jwt": ["eyJhbGciOi.eyJzdWIiOi.sig"],
    "password": ["postgres://user:secretpw@db"],
    "secret": ["password=hunter2", 'api_key: "abc"'],
    "email": ["ops@example.com"],
    "card": ["4111 1111 1111 1111"],
    "ipv4": ["10.1.2.3"],
    "ipv6": ["fe80::1:2"],
    "phone": ["+1 415 555 0100"],
}
