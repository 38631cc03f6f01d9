"""A bounded, expiring in-memory cache of unwrapped data keys."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclass(frozen=True)
class CachedDek:
    """An unwrapped DEK and its ready AES-GCM context."""

    dek: bytes = field(repr=False)
    aead: AESGCM = field(repr=False)


class DekCache:
    """LRU with a time-to-live, keyed by (key name, version); thread-safe.

    Entries are dropped when they expire, when the cache is full (least recently used
    first), and when a version changes state (:meth:`evict_key`).
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], tuple[float, CachedDek]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, name: str, version: int) -> CachedDek | None:
        with self._lock:
            item = self._entries.get((name, version))
            if item is None or item[0] <= self._clock():
                if item is not None:
                    del self._entries[(name, version)]
                self.misses += 1
                return None
            self._entries.move_to_end((name, version))
            self.hits += 1
            return item[1]

    def put(self, name: str, version: int, dek: bytes) -> CachedDek:
        entry = CachedDek(dek, AESGCM(dek))
        with self._lock:
            self._entries[(name, version)] = (self._clock() + self._ttl, entry)
            self._entries.move_to_end((name, version))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return entry

    def evict(self, name: str, version: int) -> None:
        with self._lock:
            self._entries.pop((name, version), None)

    def evict_key(self, name: str) -> None:
        with self._lock:
            for cached in [k for k in self._entries if k[0] == name]:
                del self._entries[cached]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
