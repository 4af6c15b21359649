"""Fuzzing the secondary file loaders (security policy, API key files): each raises only
its own documented error for bad content, never anything else, and never hangs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.security import Policy, PolicyError, load_keys_file
from tests.fuzz.test_config_fuzz import HOSTILE_FILES, values

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

RULE_KEYS = ["action", "min_level", "roles", "effect", "resource", "rules", "default"]
policy_docs = st.one_of(
    values,
    st.dictionaries(st.sampled_from(RULE_KEYS) | st.text(max_size=8), values, max_size=4),
    st.fixed_dictionaries(
        {"rules": st.lists(st.dictionaries(st.sampled_from(RULE_KEYS), values, max_size=4), max_size=4)}
    ),
)
KEY_FIELDS = ["id", "subject", "level", "roles", "salt", "hash", "n", "created"]
key_docs = st.one_of(
    values, st.lists(st.dictionaries(st.sampled_from(KEY_FIELDS), values, max_size=6), max_size=3)
)


def policy_or_error(text: str) -> None:
    try:
        Policy.from_yaml(text, source="fuzz.yaml")
    except PolicyError as exc:
        assert str(exc)


def keys_or_error(path: Path) -> None:
    try:
        assert isinstance(load_keys_file(path), list)
    except ValueError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(doc=policy_docs)
def test_policy_random_documents(doc: object) -> None:
    policy_or_error(yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(text=st.text(max_size=300))
def test_policy_random_text(text: str) -> None:
    policy_or_error(text)


# Hostile documents (deep nesting, 5,000-digit integers, alias bombs) once escaped these
# loaders as RecursionError/ValueError; both now parse through services.common.parse_yaml.
HOSTILE = [pytest.param(content, id=name) for name, content in HOSTILE_FILES.items()]


@pytest.mark.parametrize("content", HOSTILE)
@pytest.mark.timeout(20)
def test_policy_hostile(content: str) -> None:
    policy_or_error(content)


@FUZZ
@given(doc=key_docs)
def test_keys_file_random_documents(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    keys_or_error(path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_keys_file_garbage(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "keys.yaml"
    path.write_bytes(data)
    keys_or_error(path)


@pytest.mark.parametrize("content", HOSTILE)
@pytest.mark.timeout(20)
def test_keys_file_hostile(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    keys_or_error(path)
