"""Policy: first match decides, deny by default, wildcards, roles, atomic reload."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import pytest

from services.common import PermissionDenied
from services.security import Level, Policy, PolicyError, PolicyStore, Principal
from tests.conftest import eventually

POLICY = """
rules:
  - match: "workflow.start:danger"
    deny: true
  - match: "workflow.start:reports-*"
    min_level: PRIVILEGED
    roles: [analyst, auditor]
  - match: "workflow.start:ops.[ab]"
    roles: [ops]
  - match: "workflow.start:*"
    min_level: AUTHENTICATED
  - match: "health.*"
    min_level: ADMIN
"""


def who(level: Level, *roles: str) -> Principal:
    return Principal("u", level, frozenset(roles))


@pytest.fixture
def policy() -> Policy:
    return Policy.from_yaml(POLICY)


@pytest.mark.parametrize(
    ("principal", "action", "allowed", "why"),
    [
        (who(Level.AUTHENTICATED), "workflow.start:hello", True, "allowed"),
        (who(Level.PUBLIC), "workflow.start:hello", False, "requires level AUTHENTICATED"),
        (who(Level.ADMIN), "workflow.start:danger", False, "denied by policy"),
        (who(Level.PRIVILEGED, "analyst"), "workflow.start:reports-q3", True, "allowed"),
        (who(Level.ADMIN), "workflow.start:reports-q3", False, "roles"),
        (who(Level.AUTHENTICATED, "analyst"), "workflow.start:reports-q3", False, "level PRIVILEGED"),
        (who(Level.PUBLIC, "ops"), "workflow.start:ops.a", True, "allowed"),
        (who(Level.ADMIN), "workflow.start:ops.c", True, "allowed"),  # not [ab]: falls to the wildcard
        (who(Level.ADMIN), "health.heal:workflow", True, "allowed"),
        (who(Level.PRIVILEGED), "health.heal:workflow", False, "requires level ADMIN"),
        (who(Level.ADMIN), "keys.create:x", False, "deny by default"),
        (who(Level.ADMIN), "", False, "deny by default"),
        (who(Level.ADMIN), "workflow.startx:hello", False, "deny by default"),
    ],
)
def test_decisions(policy: Policy, principal: Principal, action: str, allowed: bool, why: str) -> None:
    d = policy.decide(principal, action)
    assert d.allowed is allowed
    assert why in d.reason


def test_authorize_raises_naming_required_level(policy: Policy) -> None:
    with pytest.raises(PermissionDenied, match="requires level ADMIN; caller has AUTHENTICATED"):
        policy.authorize(who(Level.AUTHENTICATED), "health.heal:x")
    assert policy.authorize(who(Level.ADMIN), "health.heal:x").rule == "health.*"


def test_decision_cache_is_bounded(policy: Policy) -> None:
    for i in range(5000):
        policy.decide(who(Level.ADMIN), f"workflow.start:w{i}")
    assert len(policy._cache) <= 4096


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{match: 'a:*'}]", "needs min_level"),
        ("rules: [{match: 'a:*', min_level: ROOT}]", "unknown security level"),
        ("rules: [{match: 'a:*', min_level: ADMIN, extra: 1}]", "rules.0.extra"),
        ("rules: {", "invalid YAML"),
        ("- 1", "valid dictionary"),
    ],
)
def test_invalid_policy_documents(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy.from_yaml(text, "p.yaml")


def test_empty_policy_denies_everything() -> None:
    assert not Policy.from_yaml("").decide(who(Level.ADMIN), "workflow.start:x").allowed


def write_policy(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # like an editor or a ConfigMap update: a new inode


def test_reload_swaps_atomically_and_keeps_old_on_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write_policy(path, "rules: [{match: 'workflow.start:*', min_level: ADMIN}]")
    store = PolicyStore(path)
    old = store.policy
    assert not old.decide(who(Level.AUTHENTICATED), "workflow.start:x").allowed
    write_policy(path, "rules: [{match: 'workflow.start:*', min_level: AUTHENTICATED}]")
    assert store.reload_if_changed() and store.reloads == 1
    assert store.policy.decide(who(Level.AUTHENTICATED), "workflow.start:x").allowed
    # A request holding the old object keeps a consistent view of it.
    assert not old.decide(who(Level.AUTHENTICATED), "workflow.start:x").allowed
    current = store.policy
    write_policy(path, "rules: [{match: broken")
    assert not store.reload_if_changed()
    assert store.policy is current and "invalid YAML" in (store.last_error or "")
    assert not store.reload_if_changed()  # unchanged since the failed attempt: no retry storm


def test_missing_policy_file_is_fatal_at_start(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        PolicyStore(tmp_path / "nope.yaml")


async def test_watch_picks_up_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write_policy(path, "rules: []")
    store = PolicyStore(path)
    stop = asyncio.Event()
    task = asyncio.create_task(store.watch(stop, interval_s=0.02))
    write_policy(path, "rules: [{match: 'x:*', min_level: PUBLIC}]")
    await eventually(lambda: store.policy.decide(who(Level.PUBLIC), "x:y").allowed)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_sighup_reloads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write_policy(path, "rules: []")
    store = PolicyStore(path)
    loop = asyncio.get_running_loop()
    assert threading.current_thread() is threading.main_thread()
    assert store.install_sighup(loop)
    try:
        write_policy(path, "rules: [{match: 'x:*', min_level: PUBLIC}]")
        os.kill(os.getpid(), signal.SIGHUP)
        await eventually(lambda: store.reloads == 1)
        assert store.policy.decide(who(Level.PUBLIC), "x:y").allowed
    finally:
        store.remove_sighup(loop)


def test_concurrent_readers_never_see_a_mixture(tmp_path: Path) -> None:
    """Readers racing reloads always see one of the two complete policies."""
    path = tmp_path / "policy.yaml"
    a = "rules: [{match: 'w:*', min_level: ADMIN}, {match: 'v:*', min_level: ADMIN}]"
    b = "rules: [{match: 'w:*', min_level: PUBLIC}, {match: 'v:*', min_level: PUBLIC}]"
    write_policy(path, a)
    store = PolicyStore(path)
    seen: set[tuple[bool, bool]] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            p = store.policy  # one read per "request"
            seen.add((p.decide(who(Level.PUBLIC), "w:1").allowed, p.decide(who(Level.PUBLIC), "v:1").allowed))

    t = threading.Thread(target=reader)
    t.start()
    for i in range(30):
        write_policy(path, b if i % 2 == 0 else a)
        store.reload()
    stop.set()
    t.join()
    assert seen <= {(True, True), (False, False)}
