import pytest

from keysvc.kek.local import LocalKekProvider
from keysvc.keys.cache import DekCache
from keysvc.keys.kek_rotation import kek_status, rewrap_to, rotate_kek
from keysvc.keys.keyring import Keyring
from keysvc.store.models import Purpose
from keysvc.store.sqlite import SqliteStore


@pytest.fixture
def ring(tmp_path):
    store = SqliteStore(tmp_path / "k.db")
    ring = Keyring(store, LocalKekProvider(tmp_path / "kek.json"), DekCache())
    for i in range(4):
        ring.create(f"k{i}", Purpose.ENCRYPT, "alice")
        ring.rotate(f"k{i}", "alice")
    yield ring, store
    store.close()


def test_rotation_rewraps_everything_and_deks_are_unchanged(ring, tmp_path):
    ring, store = ring
    before = {(n, v): ring.dek(ring.get(n), v).dek for n, v, _, _ in store.wrapped_deks()}
    report = rotate_kek(store, ring.kek, batch_size=3)
    assert report.current_version == 2 and report.rewrapped_from == {1: 8}
    assert kek_status(store, ring.kek).wrapped_by_version == {2: 8}
    fresh = Keyring(store, LocalKekProvider(tmp_path / "kek.json"), DekCache())
    assert {(n, v): fresh.dek(fresh.get(n), v).dek for n, v, _, _ in store.wrapped_deks()} == before


def test_a_rotation_killed_halfway_is_finished_by_resume(ring):
    ring, store = ring
    target = ring.kek.rotate()

    class Killed(Exception):
        pass

    def die_after_first_batch(done, total):
        raise Killed

    with pytest.raises(Killed):
        rewrap_to(store, ring.kek, target, batch_size=3, progress=die_after_first_batch)
    assert kek_status(store, ring.kek).wrapped_by_version == {1: 5, 2: 3}
    report = rotate_kek(store, ring.kek, resume_only=True)
    assert report.rewrapped_from == {1: 5}
    assert report.wrapped_by_version == {2: 8}
