"""Lifecycle writes of the Store interface, on SQLite and PostgreSQL alike."""

import threading

import pytest

from keysvc.errors import AlreadyExists, NotFound
from keysvc.store.models import VersionState as S

from .test_store import key, version


def test_rotation_is_a_compare_and_swap_on_the_next_number(store):
    store.create_key(key(), version(1))
    with pytest.raises(AlreadyExists):
        store.add_primary_version("k", version(3), rotated_at=200.0)  # skips 2
    store.add_primary_version("k", version(2), rotated_at=200.0)
    got = store.get_key("k")
    assert got.version(1).retired_at == 200.0 and got.version(2).retired_at is None
    assert [v.state for v in got.versions] == [S.ACTIVE, S.PRIMARY]


def test_transition_version_only_from_the_given_states(store):
    store.create_key(key(), version(1))
    store.add_primary_version("k", version(2), rotated_at=200.0)
    assert not store.transition_version("k", 1, {S.DISABLED}, S.ACTIVE, 300.0, "bob")
    assert store.transition_version("k", 1, {S.ACTIVE}, S.DISABLED, 300.0, "bob")
    v1 = store.get_key("k").version(1)
    assert (v1.state, v1.state_changed_at, v1.state_changed_by) == (S.DISABLED, 300.0, "bob")
    assert store.transition_version("k", 1, {S.DISABLED}, S.SCHEDULED_FOR_DESTRUCTION, 400.0, "bob", 500.0)
    assert store.get_key("k").version(1).destroy_after == 500.0
    # not due yet: nothing happens
    assert not store.transition_version(
        "k", 1, {S.SCHEDULED_FOR_DESTRUCTION}, S.DESTROYED, 450.0, "sched", due_by=450.0
    )
    assert store.get_key("k").version(1).wrapped_dek is not None
    assert store.transition_version(
        "k", 1, {S.SCHEDULED_FOR_DESTRUCTION}, S.DESTROYED, 500.0, "sched", due_by=500.0
    )
    v1 = store.get_key("k").version(1)
    assert v1.state is S.DESTROYED and v1.wrapped_dek is None and v1.destroy_after is None
    assert [row[1] for row in store.wrapped_deks()] == [2]
    with pytest.raises(NotFound):
        store.transition_version("k", 9, {S.ACTIVE}, S.DISABLED, 1.0, "bob")


def test_only_the_primary_reserves_and_use_is_recorded(store):
    store.create_key(key(), version(1))
    assert store.reserve_encryptions("k", 1, 5, limit=100, at=150.0) == 5
    store.add_primary_version("k", version(2), rotated_at=200.0)
    assert store.reserve_encryptions("k", 1, 5, limit=100, at=250.0) == 0
    store.touch_versions([("k", 1, 300.0), ("k", 2, 120.0)])
    store.touch_versions([("k", 1, 290.0)])  # never moves back
    got = store.get_key("k")
    assert got.version(1).last_used_at == 300.0 and got.version(1).encryptions == 5
    assert got.version(2).last_used_at == 120.0


def test_floor_only_rises(store):
    store.create_key(key(), version(1))
    store.add_primary_version("k", version(2), rotated_at=200.0)
    assert store.advance_min_decryption_version("k", 2)
    assert not store.advance_min_decryption_version("k", 1)
    assert store.get_key("k").min_decryption_version == 2


def test_concurrent_rotations_make_one_version(store):
    store.create_key(key(), version(1))
    outcomes = []
    barrier = threading.Barrier(4)

    def race():
        barrier.wait()
        try:
            store.add_primary_version("k", version(2), rotated_at=300.0)
            outcomes.append("ok")
        except AlreadyExists:
            outcomes.append("lost")

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "ok"]
    assert [v.version for v in store.get_key("k").versions] == [1, 2]


def test_job_lock_has_one_holder(store):
    with store.job_lock("scheduler") as first:
        assert first
        held = []
        t = threading.Thread(target=lambda: held.append(store.job_lock("scheduler").__enter__()))
        t.start()
        t.join()
        assert held == [False]
    with store.job_lock("scheduler") as again:
        assert again


def test_every_transition_is_recorded_with_who_and_when(store):
    store.create_key(key(), version(1))
    store.add_primary_version("k", version(2), rotated_at=200.0)
    store.transition_version("k", 1, {S.ACTIVE}, S.DISABLED, 300.0, "bob")
    assert not store.transition_version("k", 1, {S.ACTIVE}, S.DISABLED, 301.0, "bob")  # refused: no event
    store.transition_version("k", 1, {S.DISABLED}, S.SCHEDULED_FOR_DESTRUCTION, 400.0, "carol", 500.0)
    events = [(e.version, e.from_state, e.to_state, e.at, e.actor) for e in store.version_events("k")]
    assert events == [
        (1, None, S.PRIMARY, 101.0, "alice"),
        (1, S.PRIMARY, S.ACTIVE, 200.0, "alice"),
        (2, None, S.PRIMARY, 102.0, "alice"),
        (1, S.ACTIVE, S.DISABLED, 300.0, "bob"),
        (1, S.DISABLED, S.SCHEDULED_FOR_DESTRUCTION, 400.0, "carol"),
    ]
    assert store.version_events("missing") == []
