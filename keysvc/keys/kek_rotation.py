"""KEK rotation: rotate the key-encryption key and rewrap every stored wrapped DEK.

Rewrapping goes through the provider's ``rewrap_many`` (Vault's ``transit/rewrap``), so
plaintext DEKs never leave Vault. Each batch is written back with a compare-and-swap on
the old wrapped value, so the job is resumable: killed halfway, a second run rewraps
only what is still on an older KEK version, and every wrapped DEK stays unwrappable
throughout (old KEK versions remain in the provider).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from keysvc.crypto.context import dek_binding
from keysvc.kek.base import KekProvider
from keysvc.store.base import Store


@dataclass(frozen=True)
class KekReport:
    """KEK versions of the stored wrapped DEKs, and what a rewrap moved."""

    current_version: int
    wrapped_by_version: dict[int, int]
    rewrapped_from: dict[int, int] = field(default_factory=dict)

    @property
    def rewrapped(self) -> int:
        return sum(self.rewrapped_from.values())


def kek_status(store: Store, kek: KekProvider, current_version: int = 0) -> KekReport:
    counts = Counter(kek.kek_version(wrapped) for _, _, _, wrapped in store.wrapped_deks())
    return KekReport(current_version or max(counts, default=0), dict(sorted(counts.items())))


def rewrap_to(
    store: Store,
    kek: KekProvider,
    target: int,
    batch_size: int = 250,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, int]:
    """Rewrap every DEK below KEK version ``target``; returns {old version: count}."""
    pending = [row for row in store.wrapped_deks() if kek.kek_version(row[3]) < target]
    moved: Counter[int] = Counter()
    for start in range(0, len(pending), batch_size):
        chunk = pending[start : start + batch_size]
        new = kek.rewrap_many(
            [(wrapped, dek_binding(name, version, purpose)) for name, version, purpose, wrapped in chunk]
        )
        rows = [
            (name, version, old, fresh, kek.kek_version(fresh))
            for (name, version, _, old), fresh in zip(chunk, new, strict=True)
        ]
        store.replace_wrapped_deks(rows)
        moved.update(kek.kek_version(old) for _, _, _, old in chunk)
        if progress is not None:
            progress(start + len(chunk), len(pending))
    return dict(sorted(moved.items()))


def rotate_kek(
    store: Store, kek: KekProvider, *, resume_only: bool = False, batch_size: int = 250
) -> KekReport:
    """Rotate the KEK (unless ``resume_only``) and rewrap every stored DEK onto its newest version."""
    target = kek.current_version() if resume_only else kek.rotate()
    moved = rewrap_to(store, kek, target, batch_size)
    status = kek_status(store, kek, target)
    return KekReport(target, status.wrapped_by_version, moved)
