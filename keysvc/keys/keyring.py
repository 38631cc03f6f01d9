"""The keyring: logical keys, their versions and the data keys behind them.

Each key version has a random 256-bit DEK stored only wrapped by the KEK provider,
bound to (key name, version, purpose). Unwrapped DEKs live in a :class:`DekCache`.

Nonce budget (NIST SP 800-38D §8.3): AES-GCM with random 96-bit nonces may be used
at most 2^32 times per key. The keyring *counts*: before encrypting it reserves
encryptions from the version's persisted counter in blocks (``reservation_block``),
never letting the counter pass ``nonce_limit``. A reservation is persisted before
any nonce is used, and unused reservations are never returned, so a crash can only
waste budget, never reuse it. When the primary version's budget is spent the key is
rotated and encryption continues under the new version. A key's policy may set a lower
per-version budget (``rotate_after_encryptions``), enforced the same way.

Version states and their transitions (:data:`TRANSITIONS`; each is a compare-and-swap in
the store, recorded with who and when)::

    PRIMARY ──rotate──▶ ACTIVE ◀──enable── DISABLED
                          │  └──disable──▶    │
                          └──destroy──▶ SCHEDULED_FOR_DESTRUCTION ◀──destroy──┘
                 ACTIVE ◀──restore──┘        │ (destroy_after passed: scheduler / retention apply)
                                             ▼
                                         DESTROYED (wrapped DEK erased; terminal)

Only the primary encrypts; primary and active versions at or above the key's
``min_decryption_version`` decrypt. Other replicas see a change within
``metadata_ttl_seconds`` (the record cache): a refreshed record evicts the DEKs of
versions that may no longer be used.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from keysvc.crypto.context import dek_binding
from keysvc.errors import (
    AlreadyExists,
    DecryptionFailed,
    FailedPrecondition,
    InvalidArgument,
    KeyVersionDestroyed,
    NotFound,
)
from keysvc.kek.base import KekProvider
from keysvc.keys.cache import CachedDek, DekCache
from keysvc.keys.faults import checkpoint
from keysvc.store.base import Store
from keysvc.store.models import KeyPolicy, KeyRecord, Purpose, VersionEvent, VersionRecord, VersionState

log = logging.getLogger(__name__)

NIST_GCM_RANDOM_NONCE_LIMIT = 2**32
DEFAULT_DESTROY_GRACE_SECONDS = 7 * 86_400

S = VersionState
# target state -> states it may be reached from by an operator (destroyed only by the due job)
TRANSITIONS: dict[VersionState, frozenset[VersionState]] = {
    S.ACTIVE: frozenset({S.DISABLED, S.SCHEDULED_FOR_DESTRUCTION}),
    S.DISABLED: frozenset({S.ACTIVE}),
    S.SCHEDULED_FOR_DESTRUCTION: frozenset({S.ACTIVE, S.DISABLED}),
}
_USABLE = (S.PRIMARY, S.ACTIVE)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class KeyringSettings:
    nonce_limit: int = NIST_GCM_RANDOM_NONCE_LIMIT
    reservation_block: int = 65_536
    metadata_ttl_seconds: float = 1.0


@dataclass(frozen=True)
class Allocation:
    """Encryptions granted under one version (a batch may span a rotation)."""

    version: int
    count: int
    dek: CachedDek


def validate_key_name(name: str) -> None:
    """Key names are 1..128 characters of [A-Za-z0-9._-]."""
    if not 1 <= len(name) <= 128 or not set(name) <= _NAME_CHARS:
        raise InvalidArgument("key name must be 1-128 characters of letters, digits, '.', '_' or '-'")


MAX_POLICY_SECONDS = 100 * 366 * 86_400


def validate_policy(policy: KeyPolicy) -> None:
    """Durations are bounded (100 years) so every derived timestamp stays representable."""
    if max(policy.rotate_every_seconds, policy.retain_for_seconds) > MAX_POLICY_SECONDS:
        raise InvalidArgument("policy durations may be at most 100 years")


class Keyring:
    """Creates, rotates and resolves keys; the only code that unwraps DEKs."""

    def __init__(
        self,
        store: Store,
        kek: KekProvider,
        cache: DekCache,
        settings: KeyringSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._kek = kek
        self._cache = cache
        self._settings = settings or KeyringSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, tuple[float, KeyRecord]] = {}
        self._allowance: dict[tuple[str, int], int] = {}
        self._used: dict[tuple[str, int], float] = {}

    @property
    def kek(self) -> KekProvider:
        return self._kek

    # -- metadata -------------------------------------------------------------------------------

    def get(self, name: str, *, fresh: bool = False) -> KeyRecord:
        """The key's record (cached for ``metadata_ttl_seconds``); NotFound if absent."""
        now = time.monotonic()
        cached = self._records.get(name)
        if cached is not None and not fresh and cached[0] > now:
            return cached[1]
        record = self._store.get_key(name)
        if record is None:
            self._records.pop(name, None)
            raise NotFound("key not found")
        for v in record.versions:
            if v.state not in _USABLE or v.version < record.min_decryption_version:
                self._cache.evict(name, v.version)
        self._records[name] = (now + self._settings.metadata_ttl_seconds, record)
        return record

    def history(self, name: str) -> list[VersionEvent]:
        """Every recorded state change of the key's versions, oldest first."""
        return self._store.version_events(name)

    def all(self) -> list[KeyRecord]:
        return self._store.list_keys()

    def _forget(self, name: str) -> None:
        self._records.pop(name, None)
        self._cache.evict_key(name)

    # -- lifecycle ------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        purpose: Purpose,
        actor: str,
        policy: KeyPolicy | None = None,
        format: str = "",
        format_options: Mapping[str, str] | None = None,
    ) -> KeyRecord:
        """Create a key with a first, primary version."""
        validate_key_name(name)
        validate_policy(policy or KeyPolicy())
        now = self._clock()
        record = KeyRecord(
            name=name,
            purpose=purpose,
            created_at=now,
            created_by=actor,
            policy=policy or KeyPolicy(),
            format=format,
            format_options=dict(format_options or {}),
            last_rotated_at=now,
        )
        first, dek = self._new_version(record, 1, actor, now)
        self._store.create_key(record, first)
        self._cache.put(name, 1, dek)
        return self.get(name, fresh=True)

    def rotate(self, name: str, actor: str) -> KeyRecord:
        """Make a new primary version; the old primary stays decryptable (ACTIVE)."""
        for _ in range(5):
            record = self.get(name, fresh=True)
            rotated = self.rotate_if(name, actor, record.primary.version, record)
            if rotated is not None:
                return rotated
        raise FailedPrecondition("key is being rotated concurrently; retry")

    def rotate_if(
        self, name: str, actor: str, expected_primary: int, record: KeyRecord | None = None
    ) -> KeyRecord | None:
        """Rotate only if ``expected_primary`` is still the newest version; None if another rotation won.

        This compare-and-swap is what keeps replicas racing on one due period to one new version.
        """
        record = record or self.get(name, fresh=True)
        newest = max(v.version for v in record.versions)
        if newest != expected_primary:
            return None
        now = self._clock()
        number = newest + 1
        version, dek = self._new_version(record, number, actor, now)
        checkpoint("rotate.wrapped")
        try:
            self._store.add_primary_version(name, version, now)
        except AlreadyExists:
            self._forget(name)
            return None
        checkpoint("rotate.stored")
        self._forget(name)
        self._cache.put(name, number, dek)
        log.info("rotated key", extra={"key": name, "version": number, "principal": actor})
        return self.get(name, fresh=True)

    def set_state(
        self,
        name: str,
        version: int,
        target: VersionState,
        actor: str,
        *,
        grace_seconds: float | None = None,
        expected: VersionState | None = None,
    ) -> KeyRecord:
        """An operator's state change: disable, enable, schedule for destruction, restore.

        Refused (FailedPrecondition) when :data:`TRANSITIONS` does not allow it from the
        version's current state, or when ``expected`` is given and is not that state.
        """
        allowed = TRANSITIONS.get(target)
        if allowed is None:
            raise InvalidArgument("target state must be active, disabled or scheduled-for-destruction")
        record = self.get(name, fresh=True)
        entry = record.version(version)
        if entry is None:
            raise NotFound("key version not found")
        if entry.state is VersionState.PRIMARY:
            raise FailedPrecondition("the primary version cannot change state; rotate the key first")
        if expected is not None and entry.state is not expected:
            raise FailedPrecondition(f"key version is {entry.state.value}, not {expected.value}")
        if entry.state not in allowed:
            raise FailedPrecondition(f"a {entry.state.value} key version cannot become {target.value}")
        now = self._clock()
        grace = DEFAULT_DESTROY_GRACE_SECONDS if grace_seconds is None else grace_seconds
        if grace < 0:
            raise InvalidArgument("grace period cannot be negative")
        destroy_after = now + grace if target is VersionState.SCHEDULED_FOR_DESTRUCTION else None
        changed = self._store.transition_version(
            name, version, {entry.state}, target, now, actor, destroy_after
        )
        if not changed:
            self._forget(name)
            raise FailedPrecondition("key version changed concurrently; retry")
        self._forget(name)
        log.info(
            "key version state changed",
            extra={"key": name, "version": version, "state": target.value, "principal": actor},
        )
        return self.get(name, fresh=True)

    def destroy_due(self, name: str, version: int, now: float, actor: str) -> bool:
        """Erase a scheduled version's wrapped DEK if its grace period is over (crypto-shredding)."""
        done = self._store.transition_version(
            name,
            version,
            {VersionState.SCHEDULED_FOR_DESTRUCTION},
            VersionState.DESTROYED,
            now,
            actor,
            due_by=now,
        )
        self._forget(name)
        if done:
            log.warning("key version destroyed", extra={"key": name, "version": version, "principal": actor})
        return done

    def advance_floor(self, name: str, floor: int) -> bool:
        changed = self._store.advance_min_decryption_version(name, floor)
        self._forget(name)
        return changed

    def update_policy(self, name: str, policy: KeyPolicy, min_decryption_version: int) -> KeyRecord:
        validate_policy(policy)
        record = self.get(name, fresh=True)
        floor = max(1, min_decryption_version or record.min_decryption_version)
        if floor > record.primary.version:
            raise InvalidArgument("min_decryption_version cannot be above the primary version")
        self._store.update_policy(name, policy, floor)
        self._forget(name)
        return self.get(name, fresh=True)

    def _new_version(
        self, record: KeyRecord, number: int, actor: str, now: float
    ) -> tuple[VersionRecord, bytes]:
        """A wrapped fresh DEK; the caller caches the DEK only once the version is stored."""
        dek = os.urandom(32)
        wrapped = self._kek.wrap(dek, dek_binding(record.name, number, record.purpose.value))
        version = VersionRecord(
            version=number,
            state=VersionState.PRIMARY,
            created_at=now,
            wrapped_dek=wrapped,
            kek_version=self._kek.kek_version(wrapped),
            state_changed_at=now,
            state_changed_by=actor,
        )
        return version, dek

    # -- data keys ------------------------------------------------------------------------------

    def require_purpose(self, record: KeyRecord, purpose: Purpose) -> None:
        if record.purpose is not purpose:
            raise FailedPrecondition(f"key purpose is {record.purpose.value}, not {purpose.value}")

    def allocate(self, name: str, purpose: Purpose, count: int) -> list[Allocation]:
        """Reserve ``count`` encryptions under the primary version, rotating when its budget is spent."""
        allocations: list[Allocation] = []
        needed = count
        while needed > 0:
            record = self.get(name)
            self.require_purpose(record, purpose)
            version = record.primary.version
            granted = self._take(name, version, needed, self._limit(record))
            if granted == 0:
                self._rotate_exhausted(name, version)
                continue
            allocations.append(Allocation(version, granted, self.dek(record, version)))
            needed -= granted
        return allocations

    def _limit(self, record: KeyRecord) -> int:
        per_policy = record.policy.rotate_after_encryptions
        return min(self._settings.nonce_limit, per_policy) if per_policy else self._settings.nonce_limit

    def _take(self, name: str, version: int, needed: int, limit: int) -> int:
        with self._lock:
            slot = (name, version)
            have = self._allowance.get(slot, 0)
            if have == 0:
                have = self._store.reserve_encryptions(
                    name, version, max(self._settings.reservation_block, needed), limit, self._clock()
                )
            granted = min(have, needed)
            self._allowance[slot] = have - granted
            return granted

    def _rotate_exhausted(self, name: str, version: int) -> None:
        record = self.get(name, fresh=True)
        if record.primary.version == version:
            log.warning(
                "key version reached its encryption limit; rotating", extra={"key": name, "version": version}
            )
            self.rotate_if(name, "keysvc:encryption-limit", version, record)

    def decrypting(self, name: str, version: int, purpose: Purpose) -> CachedDek:
        """The DEK of a version that may decrypt; DecryptionFailed for unknown keys or versions."""
        try:
            record = self.get(name)
        except NotFound:
            raise DecryptionFailed() from None
        if record.purpose is not purpose:
            raise DecryptionFailed()
        entry = record.version(version)
        if entry is None:
            record = self.get(name, fresh=True)
            entry = record.version(version)
            if entry is None:
                raise DecryptionFailed()
        check_decryptable(record, entry)
        self._used[(name, version)] = self._clock()
        return self.dek(record, version)

    def flush_usage(self) -> int:
        """Persist when versions last decrypted here (encryptions record it at reservation)."""
        used, self._used = self._used, {}
        self._store.touch_versions([(name, version, at) for (name, version), at in used.items()])
        return len(used)

    def dek(self, record: KeyRecord, version: int) -> CachedDek:
        cached = self._cache.get(record.name, version)
        if cached is not None:
            return cached
        entry = record.version(version)
        if entry is None or entry.wrapped_dek is None:
            raise KeyVersionDestroyed()
        dek = self._kek.unwrap(entry.wrapped_dek, dek_binding(record.name, version, record.purpose.value))
        return self._cache.put(record.name, version, dek)

    def warm_up(self) -> int:
        """Unwrap every decryptable DEK in one batched KEK call; returns how many."""
        wanted = [
            (record, v)
            for record in self._store.list_keys()
            for v in record.versions
            if v.state in _USABLE and v.version >= record.min_decryption_version and v.wrapped_dek is not None
        ]
        if not wanted:
            return 0
        deks = self._kek.unwrap_many(
            [(v.wrapped_dek or b"", dek_binding(r.name, v.version, r.purpose.value)) for r, v in wanted]
        )
        for (record, version), dek in zip(wanted, deks, strict=True):
            self._cache.put(record.name, version.version, dek)
        return len(deks)


def check_decryptable(record: KeyRecord, version: VersionRecord) -> None:
    """Raise the documented error when a version's state forbids decryption."""
    if version.state is VersionState.DESTROYED:
        raise KeyVersionDestroyed()
    if version.state is VersionState.DISABLED:
        raise FailedPrecondition("key version disabled")
    if version.state is VersionState.SCHEDULED_FOR_DESTRUCTION:
        raise FailedPrecondition("key version scheduled for destruction")
    if version.version < record.min_decryption_version:
        raise FailedPrecondition("key version is below the key's minimum decryption version")
