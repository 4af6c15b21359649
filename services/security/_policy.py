"""Authorization policy: ordered rules mapping ``action:resource`` patterns to requirements.

A policy file (YAML) looks like::

    rules:
      - match: "workflow.start:reports-*"   # fnmatch wildcards: * ? [abc]
        min_level: PRIVILEGED
        roles: [analyst]                    # any one of these (optional)
      - match: "workflow.start:*"
        min_level: AUTHENTICATED
      - match: "workflow.start:danger"
        deny: true

The first rule whose pattern matches decides; no matching rule means deny. A `Policy`
is immutable once built; `PolicyStore` swaps the whole object in one assignment on
reload, so a request sees either the old policy or the new one, never a mixture. An
invalid file on reload is reported and the previous policy stays in force.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from services.common import ConfigError, ConfigModel, PermissionDenied, every, get_logger, parse_yaml
from services.security._principal import Level, Principal

__all__ = ["Decision", "Policy", "PolicyError", "PolicyStore", "Rule"]

_log = get_logger("vigil.security.policy")
_MAX_POLICY_BYTES = 1 << 20
_CACHE_LIMIT = 4096


class PolicyError(Exception):
    """The policy file is missing or invalid; the message names the file and the rule."""


class Rule(ConfigModel):
    """One policy rule."""

    match: str = Field(min_length=1, max_length=300)
    """``action:resource`` pattern with fnmatch wildcards, e.g. ``workflow.start:*``."""
    min_level: Level | None = None
    """Lowest level allowed; unset means any level (roles may still be required)."""
    roles: tuple[str, ...] = ()
    """The principal needs at least one of these roles; empty means no role needed."""
    deny: bool = False
    """Deny matching actions outright (e.g. to carve an exception out of a wildcard)."""

    @field_validator("min_level", mode="before")
    @classmethod
    def _parse_level(cls, value: object) -> Level | None:
        return None if value is None else Level.parse(value)

    @model_validator(mode="after")
    def _has_requirement(self) -> Rule:
        if not self.deny and self.min_level is None and not self.roles:
            raise ValueError(
                "a rule needs min_level, roles, or deny: true (write min_level: PUBLIC to open it)"
            )
        return self


class _PolicyFile(ConfigModel):
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Outcome of an authorization check."""

    allowed: bool
    action: str
    reason: str
    required_level: Level | None = None
    required_roles: frozenset[str] = frozenset()
    rule: str | None = None
    """Pattern of the rule that decided; None when nothing matched (default deny)."""


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    regex: re.Pattern[str]
    roles: frozenset[str]


@dataclass(frozen=True)
class Policy:
    """An immutable, compiled rule list. Lookups of an action's rule are cached."""

    rules: tuple[Rule, ...]
    _compiled: tuple[_Compiled, ...] = field(init=False, repr=False)
    # action -> index of the first matching rule (-1: none). Only ever filled with entries
    # derived from the immutable rules, so sharing it between requests is safe.
    _cache: dict[str, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        compiled = tuple(
            _Compiled(r, re.compile(fnmatch.translate(r.match)), frozenset(r.roles)) for r in self.rules
        )
        object.__setattr__(self, "_compiled", compiled)

    @classmethod
    def from_rules(cls, rules: Iterable[Rule]) -> Policy:
        return cls(tuple(rules))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<policy>") -> Policy:
        """Parse and validate a policy document. Raises `PolicyError` naming source and rule."""
        try:
            data = parse_yaml(text, source)
        except ConfigError as exc:
            raise PolicyError(str(exc)) from None
        try:
            parsed = _PolicyFile.model_validate(data or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise PolicyError(f"{source}: {where}: {err['msg']}") from None
        return cls(parsed.rules)

    def _rule_index(self, action: str) -> int:
        idx = self._cache.get(action)
        if idx is None:
            idx = next((i for i, c in enumerate(self._compiled) if c.regex.match(action)), -1)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()  # bounded: attacker-chosen resource names cannot grow it
            self._cache[action] = idx
        return idx

    def decide(self, principal: Principal, action: str) -> Decision:
        """Decide whether ``principal`` may perform ``action`` (``verb:resource``)."""
        idx = self._rule_index(action)
        if idx < 0:
            return Decision(False, action, f"no policy rule allows '{action}' (deny by default)")
        c = self._compiled[idx]
        rule = c.rule
        if rule.deny:
            return Decision(False, action, f"'{action}' is denied by policy", rule=rule.match)
        if rule.min_level is not None and principal.level < rule.min_level:
            return Decision(
                False,
                action,
                f"'{action}' requires level {rule.min_level.name}; caller has {principal.level.name}",
                rule.min_level,
                c.roles,
                rule.match,
            )
        if not principal.has_any_role(c.roles):
            return Decision(
                False,
                action,
                f"'{action}' requires one of roles {sorted(c.roles)}",
                rule.min_level,
                c.roles,
                rule.match,
            )
        return Decision(True, action, "allowed", rule.min_level, c.roles, rule.match)

    def authorize(self, principal: Principal, action: str) -> Decision:
        """Like `decide` but raises `PermissionDenied` (naming the requirement) when denied."""
        decision = self.decide(principal, action)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        return decision


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class PolicyStore:
    """Holds the current `Policy` for a file and reloads it atomically when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reloads = 0
        self.last_error: str | None = None
        self._signature = _signature(path)
        self._policy = self._load()  # start-up: an invalid policy is fatal (PolicyError)

    @property
    def policy(self) -> Policy:
        """The policy in force. Read it once per request and use that object throughout."""
        return self._policy

    def _load(self) -> Policy:
        try:
            size = self.path.stat().st_size
            if size > _MAX_POLICY_BYTES:
                raise PolicyError(f"{self.path}: policy file is {size} bytes, over {_MAX_POLICY_BYTES}")
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{self.path}: cannot read policy: {exc}") from None
        return Policy.from_yaml(text, str(self.path))

    def reload(self) -> bool:
        """Re-read the file; swap in the new policy if valid. Returns True when swapped.

        An invalid file leaves the old policy in force and records ``last_error``.
        """
        self._signature = _signature(self.path)
        try:
            new = self._load()
        except PolicyError as exc:
            self.last_error = str(exc)
            _log.error("policy reload failed; keeping the previous policy: %s", exc)
            return False
        self._policy = new  # the single atomic swap: readers see old or new, never a mixture
        self.last_error = None
        self.reloads += 1
        _log.info(
            "policy reloaded from %s (%d rules)", self.path, len(new.rules), extra={"reloads": self.reloads}
        )
        return True

    def reload_if_changed(self) -> bool:
        """Reload when the file's mtime, size or inode changed since the last look."""
        if _signature(self.path) == self._signature:
            return False
        return self.reload()

    async def watch(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        """Poll the file for changes until ``stop`` is set (portable, unlike inotify)."""
        await every(stop, interval_s, self.reload_if_changed)

    def install_sighup(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Reload on SIGHUP. Returns False where signals cannot be installed (non-main thread)."""
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        except (NotImplementedError, RuntimeError, ValueError):
            return False
        return True

    def remove_sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        if os.name == "posix":
            loop.remove_signal_handler(signal.SIGHUP)
