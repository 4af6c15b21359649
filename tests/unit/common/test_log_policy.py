"""The log redaction hook: one policy per process, and the log rule that keeps addresses."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from services.common import keep_operational, set_log_redactor
from services.common._logging import JsonFormatter
from services.security import redact


@pytest.fixture
def policy() -> Iterator[None]:
    yield
    set_log_redactor(None)


def _line(msg: str) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, None, None)
    return str(json.loads(JsonFormatter().format(record))["msg"])


def test_log_rule_keeps_addresses_and_rewrites_secrets(policy: None) -> None:
    set_log_redactor(keep_operational(redact))
    assert _line("peer 10.20.30.40:443 closed") == "peer 10.20.30.40:443 closed"
    secret = _line("token sk-" + "a1B2" * 8)
    assert "a1B2" not in secret and "[REDACTED:api_key]" in secret


def test_a_later_policy_replaces_the_earlier_one(policy: None) -> None:
    """One slot: a raw redactor set first does not stay stacked under the log rule."""
    set_log_redactor(lambda text: redact(text)[0])
    assert "REDACTED" in _line("peer 10.20.30.40 closed")
    set_log_redactor(keep_operational(redact))
    assert _line("peer 10.20.30.40 closed") == "peer 10.20.30.40 closed"
    set_log_redactor(None)
    assert _line("token sk-" + "a1B2" * 8).endswith("a1B2")
