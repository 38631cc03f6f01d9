import pytest

from keysvc.keys.cache import DekCache


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_lru_bound_and_ttl():
    clock = Clock()
    cache = DekCache(max_entries=2, ttl_seconds=10, clock=clock)
    cache.put("a", 1, bytes(32))
    cache.put("a", 2, bytes(32))
    assert cache.get("a", 1) is not None  # a/1 is now most recent
    cache.put("b", 1, bytes(32))
    assert cache.get("a", 2) is None and len(cache) == 2
    clock.now = 10.0
    assert cache.get("a", 1) is None and cache.get("b", 1) is None
    assert (cache.hits, cache.misses) == (1, 3)


def test_evict_key_drops_only_that_key():
    cache = DekCache()
    cache.put("a", 1, bytes(32))
    cache.put("a", 2, bytes(32))
    cache.put("b", 1, bytes(32))
    cache.evict_key("a")
    assert cache.get("a", 1) is None and cache.get("a", 2) is None and cache.get("b", 1) is not None


def test_size_must_be_positive():
    with pytest.raises(ValueError):
        DekCache(max_entries=0)
