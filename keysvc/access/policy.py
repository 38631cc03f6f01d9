"""Role policy: principals -> roles -> rules, from a TOML file that is re-read when it changes.

```toml
[principals]                      # principal name -> roles (exact name, or a glob)
"spiffe://cc.example/ivr" = ["ivr"]
billing = ["billing"]
"spiffe://cc.example/desktop/*" = ["desktop"]

[[roles.ivr.rules]]
keys = ["pan", "ssn"]             # key name globs (default ["*"])
operations = ["tokenize", "redact"]
quota_per_minute = 60000          # items per minute per principal (0 = unlimited)

[[roles.desktop.rules]]
keys = ["pan"]
operations = ["detokenize"]
reveal = "masked"                 # full | masked | none (default masked)

[[roles.billing.rules]]
keys = ["pan"]
operations = ["detokenize"]
reveal = "full"
require_purpose = true
```

Evaluation is **default deny** and **first match**: the principal's roles are taken in
the order listed (exact entries before globs), each role's rules in file order, and the
first rule whose operation and key globs both match decides. Operations that name no
key (``redact``, most ``admin.*`` and ``governance.*`` calls) are matched with the empty
key name, which only the glob ``*`` matches. ``reveal = "none"`` on a detokenize rule
denies. Operation globs are allowed (``governance.*``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keysvc.errors import InvalidArgument

log = logging.getLogger(__name__)

OPERATIONS = frozenset(
    {
        "encrypt",
        "decrypt",
        "rewrap",
        "datakey",
        "tokenize",
        "detokenize",
        "retokenize",
        "redact",
        "admin.read",
        "admin.write",
        "admin.destroy",
        "governance.read",
        "governance.approve",
        "governance.incident",
        "governance.operators",
    }
)
REVEALS = ("full", "masked", "none")


class PolicyError(ValueError):
    """The policy file is malformed; the message names the place."""


@dataclass(frozen=True)
class Rule:
    role: str
    index: int
    keys: tuple[str, ...] = ("*",)
    operations: tuple[str, ...] = ()
    reveal: str = "masked"
    quota_per_minute: int = 0
    require_purpose: bool = False

    @property
    def name(self) -> str:
        return f"roles.{self.role}.rules[{self.index}]"

    def matches(self, operation: str, key: str) -> bool:
        return any(fnmatch.fnmatchcase(operation, o) for o in self.operations) and any(
            fnmatch.fnmatchcase(key, k) for k in self.keys
        )


@dataclass(frozen=True)
class Decision:
    """The outcome for one (principal, operation, key) and the reason, safe to show."""

    allowed: bool
    reason: str
    rule: Rule | None = None
    roles: tuple[str, ...] = ()

    @property
    def reveal(self) -> str:
        return self.rule.reveal if self.rule else "none"


@dataclass(frozen=True)
class Policy:
    principals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    roles: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def roles_of(self, principal: str) -> tuple[str, ...]:
        roles = list(self.principals.get(principal, ()))
        for pattern, more in self.principals.items():
            if (
                pattern != principal
                and any(c in pattern for c in "*?[")
                and fnmatch.fnmatchcase(principal, pattern)
            ):
                roles += [r for r in more if r not in roles]
        return tuple(roles)

    def decide(self, principal: str, operation: str, key: str = "", purpose: str = "") -> Decision:
        roles = self.roles_of(principal)
        if not roles:
            return Decision(False, f"principal {principal!r} has no roles (default deny)")
        for role in roles:
            for rule in self.roles.get(role, ()):
                if not rule.matches(operation, key):
                    continue
                if operation == "detokenize" and rule.reveal == "none":
                    return Decision(False, f"{rule.name} matches with reveal = none", rule, roles)
                if rule.require_purpose and not purpose.strip():
                    return Decision(False, f"{rule.name} requires a purpose", rule, roles)
                what = f" for key {key!r}" if key else ""
                return Decision(True, f"{rule.name} allows {operation}{what}", rule, roles)
        what = f" on key {key!r}" if key else ""
        return Decision(
            False, f"no rule of roles {', '.join(roles)} allows {operation}{what} (default deny)", None, roles
        )


def parse_policy(doc: Mapping[str, Any]) -> Policy:
    unknown = set(doc) - {"principals", "roles"}
    if unknown:
        raise PolicyError(f"unknown policy section {sorted(unknown)[0]!r}")
    principals: dict[str, tuple[str, ...]] = {}
    for name, roles in dict(doc.get("principals", {})).items():
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise PolicyError(f"principals.{name} must be a list of role names")
        principals[str(name)] = tuple(roles)
    parsed: dict[str, tuple[Rule, ...]] = {}
    for role, body in dict(doc.get("roles", {})).items():
        if not isinstance(body, dict) or set(body) - {"rules"}:
            raise PolicyError(f"roles.{role} must hold only a rules list")
        rules = []
        for i, raw in enumerate(body.get("rules", [])):
            rules.append(_rule(str(role), i, raw))
        parsed[str(role)] = tuple(rules)
    for name, roles in principals.items():
        for role in roles:
            if role not in parsed:
                raise PolicyError(f"principals.{name} names undefined role {role!r}")
    return Policy(principals, parsed)


def _rule(role: str, index: int, raw: Any) -> Rule:
    where = f"roles.{role}.rules[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a table")
    allowed = {"keys", "operations", "reveal", "quota_per_minute", "require_purpose"}
    extra = set(raw) - allowed
    if extra:
        raise PolicyError(f"{where}: unknown field {sorted(extra)[0]!r}")
    keys = raw.get("keys", ["*"])
    ops = raw.get("operations", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PolicyError(f"{where}.keys must be a list of globs")
    if not isinstance(ops, list) or not ops or not all(isinstance(o, str) for o in ops):
        raise PolicyError(f"{where}.operations must be a non-empty list")
    for op in ops:
        if not any(fnmatch.fnmatchcase(known, op) for known in OPERATIONS):
            raise PolicyError(f"{where}: unknown operation {op!r}")
    reveal = raw.get("reveal", "masked")
    if reveal not in REVEALS:
        raise PolicyError(f"{where}.reveal must be full, masked or none")
    quota = raw.get("quota_per_minute", 0)
    if not isinstance(quota, int) or isinstance(quota, bool) or quota < 0:
        raise PolicyError(f"{where}.quota_per_minute must be a non-negative integer")
    purpose = raw.get("require_purpose", False)
    if not isinstance(purpose, bool):
        raise PolicyError(f"{where}.require_purpose must be true or false")
    return Rule(role, index, tuple(keys), tuple(ops), str(reveal), quota, purpose)


def load_policy_file(path: str) -> Policy:
    try:
        with open(path, "rb") as fh:
            return parse_policy(tomllib.load(fh))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file is not valid TOML: {exc}") from None


class PolicySource:
    """The current policy, re-read when the file's mtime or size changes (checked at most every
    ``check_seconds``). A file that fails to parse keeps the previous policy and logs an error."""

    def __init__(
        self, path: str = "", *, check_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = path
        self._check = check_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._next = 0.0
        self._policy = Policy()
        if path:
            self._policy = load_policy_file(path)
            self._stamp = _stamp(path)

    @classmethod
    def static(cls, policy: Policy) -> PolicySource:
        source = cls()
        source._policy = policy
        return source

    def current(self) -> Policy:
        if not self._path or self._clock() < self._next:
            return self._policy
        with self._lock:
            now = self._clock()
            if now < self._next:
                return self._policy
            self._next = now + self._check
            try:
                stamp = _stamp(self._path)
            except OSError:
                log.error("policy file unreadable; keeping the previous policy")
                return self._policy
            if stamp != self._stamp:
                try:
                    self._policy = load_policy_file(self._path)
                    log.info("policy reloaded")
                except (PolicyError, OSError) as exc:
                    log.error("policy reload failed; keeping the previous policy", extra={"reason": str(exc)})
                self._stamp = stamp
            return self._policy


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size)


class Quotas:
    """Items per minute per (principal, rule), in fixed one-minute windows (per process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def take(self, principal: str, rule: Rule, items: int) -> bool:
        if rule.quota_per_minute <= 0:
            return True
        minute = int(self._clock() // 60)
        slot = (principal, rule.name)
        with self._lock:
            window, used = self._windows.get(slot, (minute, 0))
            if window != minute:
                used = 0
            if used + items > rule.quota_per_minute:
                self._windows[slot] = (minute, used)
                return False
            self._windows[slot] = (minute, used + items)
            return True


def check_operation(operation: str) -> None:
    if operation not in OPERATIONS:
        raise InvalidArgument("unknown operation")


def explain(
    policy: Policy, principal: str, operation: str, keys: Sequence[str], purpose: str
) -> list[Decision]:
    return [policy.decide(principal, operation, k, purpose) for k in (keys or [""])]
