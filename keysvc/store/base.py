"""The persistence interface. SQLite (embedded) and PostgreSQL (shared) implement it.

Implementations translate their driver's errors into ``keysvc.errors`` here and
nowhere else: a duplicate key is ``AlreadyExists``, a missing one ``NotFound``, an
unreachable database ``Unavailable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from keysvc.store.models import KeyPolicy, KeyRecord, VersionRecord


class Store(Protocol):
    """Keys and their versions (later: token vault, audit chain, approvals)."""

    url_scheme: str

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

        Raises AlreadyExists if that version number exists (another rotation won the race).
        """
        ...

    def update_policy(self, name: str, policy: KeyPolicy, min_decryption_version: int) -> None:
        """Replace a key's policy and decryption floor; NotFound if absent."""
        ...

    def reserve_encryptions(self, name: str, version: int, count: int, limit: int) -> int:
        """Atomically add up to ``count`` to the version's counter, never past ``limit``; return how many."""
        ...

    def wrapped_deks(self) -> list[tuple[str, int, str, bytes]]:
        """(key name, version, purpose, wrapped DEK) of every version that still has one."""
        ...

    def replace_wrapped_deks(self, rows: Sequence[tuple[str, int, bytes, bytes, int]]) -> int:
        """Swap (name, version, old wrapped, new wrapped, kek version) where old still matches."""
        ...

    def close(self) -> None: ...
