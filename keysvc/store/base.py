"""The persistence interface. SQLite (embedded) and PostgreSQL (shared) implement it.

Implementations translate their driver's errors into ``keysvc.errors`` here and
nowhere else: a duplicate key is ``AlreadyExists``, a missing one ``NotFound``, an
unreachable database ``Unavailable``.

Every write that can race with another replica is a compare-and-swap in one
transaction (rotation: "the next version number is still free"; state changes:
"the version is still in one of these states"; token rewrap: "still under the old
version"), so the store, not a lock, is what keeps concurrent replicas consistent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from keysvc.store.models import KeyPolicy, KeyRecord, TokenRecord, VersionEvent, VersionRecord, VersionState


class Store(Protocol):
    """Keys and their versions, the token vault, and the scheduler's job lock."""

    url_scheme: str

    # -- keys -----------------------------------------------------------------------------------

    def create_key(self, key: KeyRecord, first: VersionRecord) -> None:
        """Insert a key with its first (primary) version; AlreadyExists if the name is taken."""
        ...

    def get_key(self, name: str) -> KeyRecord | None:
        """The key with all its versions, or None."""
        ...

    def list_keys(self) -> list[KeyRecord]:
        """Every key with its versions, by name."""
        ...

    def add_primary_version(self, name: str, version: VersionRecord, rotated_at: float) -> None:
        """Atomically demote the primary to active and insert ``version`` as the new primary.

        ``version.version`` must be exactly one above the key's newest version; otherwise
        (another rotation won the race) AlreadyExists and nothing changes. NotFound if no key.
        """
        ...

    def update_policy(self, name: str, policy: KeyPolicy, min_decryption_version: int) -> None:
        """Replace a key's policy and decryption floor; NotFound if absent."""
        ...

    def advance_min_decryption_version(self, name: str, floor: int) -> bool:
        """Raise the decryption floor to ``floor`` if it is lower; True if it changed."""
        ...

    def transition_version(
        self,
        name: str,
        version: int,
        from_states: Collection[VersionState],
        to_state: VersionState,
        at: float,
        by: str,
        destroy_after: float | None = None,
        due_by: float | None = None,
    ) -> bool:
        """Move a version to ``to_state`` if it is in one of ``from_states``; False otherwise.

        With ``due_by``, only if its ``destroy_after`` is at or before ``due_by`` (erasing due DEKs).

        Records who and when; ``destroy_after`` is kept only for SCHEDULED_FOR_DESTRUCTION;
        DESTROYED erases the wrapped DEK in the same statement. NotFound if no such version.
        """
        ...

    def version_events(self, name: str) -> list[VersionEvent]:
        """Every recorded state change of the key's versions (creation included), oldest first."""
        ...

    def reserve_encryptions(self, name: str, version: int, count: int, limit: int, at: float = 0.0) -> int:
        """Atomically add up to ``count`` to the version's counter, never past ``limit``; return how many.

        Only a PRIMARY version grants encryptions (0 otherwise). NotFound if no such version.
        """
        ...

    def touch_versions(self, rows: Sequence[tuple[str, int, float]]) -> None:
        """Record (name, version, at) uses: ``last_used_at`` only moves forward."""
        ...

    def wrapped_deks(self) -> list[tuple[str, int, str, bytes]]:
        """(key name, version, purpose, wrapped DEK) of every version that still has one."""
        ...

    def replace_wrapped_deks(self, rows: Sequence[tuple[str, int, bytes, bytes, int]]) -> int:
        """Swap (name, version, old wrapped, new wrapped, kek version) where old still matches."""
        ...

    # -- token vault ----------------------------------------------------------------------------

    def insert_tokens(self, records: Sequence[TokenRecord]) -> list[bool]:
        """Insert in one transaction; per record False if (key, token) or (key, fingerprint) exists."""
        ...

    def find_tokens(self, key_name: str, tokens: Sequence[str]) -> dict[str, TokenRecord]:
        ...

    def find_fingerprints(self, key_name: str, fingerprints: Sequence[bytes]) -> dict[bytes, TokenRecord]:
        ...

    def tokens_below_version(self, key_name: str, version: int, limit: int) -> list[TokenRecord]:
        """Up to ``limit`` tokens whose value is encrypted under a version below ``version``."""
        ...

    def update_token_ciphertexts(self, rows: Sequence[tuple[str, str, int, bytes, int]]) -> int:
        """(key, token, old version, new ciphertext, new version), each only if still at old version."""
        ...

    def purge_expired_tokens(self, now: float) -> int:
        """Delete tokens with ``expires_at <= now``; returns how many."""
        ...

    # -- jobs -----------------------------------------------------------------------------------

    def job_lock(self, job: str) -> AbstractContextManager[bool]:
        """Try to become the one runner of ``job`` (across processes); yields whether it did."""
        ...

    def close(self) -> None: ...
