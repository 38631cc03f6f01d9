"""Version state machine, scheduler (injected clock), keep-last-K and retention, on both stores."""

import threading

import pytest

from keysvc.errors import DecryptionFailed, FailedPrecondition, InvalidArgument, KeyVersionDestroyed, NotFound
from keysvc.kek.local import LocalKekProvider
from keysvc.keys import lifecycle
from keysvc.keys.cache import DekCache
from keysvc.keys.fields import FieldCrypto
from keysvc.keys.keyring import TRANSITIONS, Keyring, KeyringSettings
from keysvc.keys.scheduler import Scheduler
from keysvc.store.models import KeyPolicy, Purpose
from keysvc.store.models import VersionState as S
from keysvc.store.sqlite import SqliteStore

DAY = 86_400.0


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request, tmp_path):
    """A factory: every call is another connection (another "replica") to the same database."""
    opened = []

    def make():
        if request.param == "sqlite":
            s = SqliteStore(tmp_path / "k.db")
        else:
            from keysvc.store.postgres import PostgresStore

            s = PostgresStore(request.getfixturevalue("pg_url"), max_size=4)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def kek(tmp_path):
    return LocalKekProvider(tmp_path / "kek.json")


def ring_for(store, kek, clock):
    return Keyring(store, kek, DekCache(), KeyringSettings(metadata_ttl_seconds=0), clock=clock)


@pytest.fixture
def store(open_store):
    return open_store()


@pytest.fixture
def ring(store, kek, clock):
    return ring_for(store, kek, clock)


def states(ring, name="k"):
    return [v.state for v in ring.get(name, fresh=True).versions]


# -- state machine ----------------------------------------------------------------------------------

ALL = list(S)
OPERATOR_TARGETS = [S.ACTIVE, S.DISABLED, S.SCHEDULED_FOR_DESTRUCTION]


def put_in_state(ring, store, clock, state):
    """Key "k" whose version 1 is in ``state`` (version 2 primary unless state is PRIMARY)."""
    ring.create("k", Purpose.ENCRYPT, "alice")
    if state is S.PRIMARY:
        return
    ring.rotate("k", "alice")
    if state is S.ACTIVE:
        return
    if state is S.DISABLED:
        ring.set_state("k", 1, S.DISABLED, "bob")
        return
    ring.set_state("k", 1, S.SCHEDULED_FOR_DESTRUCTION, "bob", grace_seconds=10)
    if state is S.DESTROYED:
        clock.now += 10
        assert ring.destroy_due("k", 1, clock.now, "sched")


@pytest.mark.parametrize("start", ALL)
@pytest.mark.parametrize("target", ALL)
def test_every_transition_allowed_or_refused(ring, store, clock, start, target):
    put_in_state(ring, store, clock, start)
    allowed = start in TRANSITIONS.get(target, frozenset())
    if target not in OPERATOR_TARGETS:
        with pytest.raises(InvalidArgument):
            ring.set_state("k", 1, target, "carol")
    elif allowed:
        clock.now += 5
        record = ring.set_state("k", 1, target, "carol")
        v1 = record.version(1)
        assert (v1.state, v1.state_changed_by, v1.state_changed_at) == (target, "carol", clock.now)
    else:
        with pytest.raises(FailedPrecondition):
            ring.set_state("k", 1, target, "carol")
        assert ring.get("k", fresh=True).version(1).state is start


def test_the_allowed_table_is_the_documented_one():
    assert {
        S.ACTIVE: {S.DISABLED, S.SCHEDULED_FOR_DESTRUCTION},
        S.DISABLED: {S.ACTIVE},
        S.SCHEDULED_FOR_DESTRUCTION: {S.ACTIVE, S.DISABLED},
    } == TRANSITIONS


def test_expected_state_guards_enable_and_restore(ring, store, clock):
    put_in_state(ring, store, clock, S.SCHEDULED_FOR_DESTRUCTION)
    with pytest.raises(FailedPrecondition):
        ring.set_state("k", 1, S.ACTIVE, "bob", expected=S.DISABLED)  # "enable" is not "restore"
    ring.set_state("k", 1, S.ACTIVE, "bob", expected=S.SCHEDULED_FOR_DESTRUCTION)
    assert states(ring) == [S.ACTIVE, S.PRIMARY]
    with pytest.raises(NotFound):
        ring.set_state("k", 7, S.DISABLED, "bob")
    with pytest.raises(InvalidArgument):
        ring.set_state("k", 1, S.SCHEDULED_FOR_DESTRUCTION, "bob", grace_seconds=-1)


def test_states_gate_encrypt_and_decrypt(ring, store, clock):
    ring.create("k", Purpose.ENCRYPT, "alice")
    fields = FieldCrypto(ring)
    old = fields.encrypt("k", [(b"one", None)])[0].ciphertext
    ring.rotate("k", "alice")
    new = fields.encrypt("k", [(b"two", None)])[0].ciphertext
    assert [s.key_version for s in fields.encrypt("k", [(b"x", None)])] == [2]

    ring.set_state("k", 1, S.DISABLED, "bob")
    out = fields.decrypt([(old, None), (new, None)])
    assert isinstance(out[0], FailedPrecondition) and out[0].message == "key version disabled"
    assert out[1].plaintext == b"two"
    ring.set_state("k", 1, S.ACTIVE, "bob")
    assert fields.decrypt([(old, None)])[0].plaintext == b"one"

    ring.set_state("k", 1, S.SCHEDULED_FOR_DESTRUCTION, "bob", grace_seconds=60)
    assert isinstance(fields.decrypt([(old, None)])[0], FailedPrecondition)
    clock.now += 59
    assert lifecycle.apply_retention(ring, store, clock.now) == []
    clock.now += 1
    done = lifecycle.apply_retention(ring, store, clock.now)
    assert [(a.key, a.version, a.action) for a in done] == [("k", 1, lifecycle.Action.DESTROY)]
    gone = fields.decrypt([(old, None), (new, None)])
    assert isinstance(gone[0], KeyVersionDestroyed) and gone[0].message == "key version destroyed"
    assert gone[1].plaintext == b"two"
    rewrapped = fields.rewrap([(old, None), (new, None)])
    assert isinstance(rewrapped[0], KeyVersionDestroyed) and rewrapped[1].key_version == 2
    assert store.get_key("k").version(1).wrapped_dek is None


def test_another_replica_sees_a_disable_within_the_metadata_ttl(open_store, kek, clock):
    a_store, b_store = open_store(), open_store()
    a = ring_for(a_store, kek, clock)
    b = Keyring(b_store, kek, DekCache(), KeyringSettings(metadata_ttl_seconds=0.2), clock=clock)
    a.create("k", Purpose.ENCRYPT, "alice")
    old = FieldCrypto(b).encrypt("k", [(b"v", None)])[0].ciphertext
    a.rotate("k", "alice")
    a.set_state("k", 1, S.DISABLED, "bob")
    import time

    time.sleep(0.25)
    out = FieldCrypto(b).decrypt([(old, None)])
    assert isinstance(out[0], FailedPrecondition)
    assert [s.key_version for s in FieldCrypto(b).encrypt("k", [(b"v", None)])] == [2]


# -- rotation schedule ------------------------------------------------------------------------------


def test_due_rotation_missed_ticks_and_downtime(ring, store, clock):
    ring.create("k", Purpose.ENCRYPT, "alice", policy=KeyPolicy(rotate_every_seconds=int(30 * DAY)))
    ring.create("manual", Purpose.ENCRYPT, "alice")
    sched = Scheduler(ring, store, clock=clock)
    assert sched.tick().rotated == []
    clock.now += 30 * DAY - 1
    assert sched.tick().rotated == []
    clock.now += 1
    assert sched.tick().rotated == ["k"]
    assert sched.tick().rotated == []  # same period, again: nothing
    key = store.get_key("k")
    assert key.primary.version == 2 and key.last_rotated_at == clock.now
    assert lifecycle.next_rotation_at(key) == clock.now + 30 * DAY
    # the server is down for 100 days: one rotation when it comes back, not three
    clock.now += 100 * DAY
    assert sched.tick().rotated == ["k"]
    for _ in range(5):
        clock.now += 60
        assert sched.tick().rotated == []
    assert store.get_key("k").primary.version == 3
    assert store.get_key("manual").primary.version == 1


def test_rotate_after_n_encryptions(ring, store, clock):
    ring.create("k", Purpose.ENCRYPT, "alice", policy=KeyPolicy(rotate_after_encryptions=100))
    sealed = FieldCrypto(ring).encrypt("k", [(b"x", None)] * 250)
    assert [s.key_version for s in sealed] == [1] * 100 + [2] * 100 + [3] * 50
    # counters are reservations (an upper bound): the third version reserved up to its limit
    assert [v.encryptions for v in store.get_key("k").versions] == [100, 100, 100]


def test_two_replicas_racing_make_one_version_per_period(open_store, kek, clock):
    stores = [open_store() for _ in range(3)]
    rings = [ring_for(s, kek, clock) for s in stores]
    rings[0].create("k", Purpose.ENCRYPT, "alice", policy=KeyPolicy(rotate_every_seconds=3600))
    schedulers = [Scheduler(r, s, clock=clock) for r, s in zip(rings, stores, strict=True)]
    for period in range(1, 6):
        clock.now += 3600
        barrier = threading.Barrier(len(rings) * 2)
        results = []

        def scheduler_tick(s, barrier=barrier, results=results):
            barrier.wait()
            results.append(s.tick().rotated)

        def direct(r, s, barrier=barrier, results=results):  # no job lock: only the store's CAS stops it
            barrier.wait()
            results.append(lifecycle.rotate_due(r, s, clock.now))

        threads = [threading.Thread(target=scheduler_tick, args=(s,)) for s in schedulers]
        threads += [threading.Thread(target=direct, args=rs) for rs in zip(rings, stores, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(len(r) for r in results) == 1
        assert [v.version for v in stores[0].get_key("k").versions] == list(range(1, period + 2))


# -- keep-last-K ------------------------------------------------------------------------------------


def test_keep_last_k_stops_at_a_version_in_use(ring, store, clock):
    ring.create("k", Purpose.ENCRYPT, "alice", policy=KeyPolicy(keep_versions=2))
    fields = FieldCrypto(ring)
    cts = []
    for _ in range(4):
        cts.append(fields.encrypt("k", [(b"x", None)])[0].ciphertext)
        clock.now += 10 * DAY
        ring.rotate("k", "alice")
    # v5 is primary; versions 1-4 each encrypted 10+ days ago; v2 decrypted just now
    fields.decrypt([(cts[1], None)])
    ring.flush_usage()
    assert lifecycle.advance_floors(ring, store, clock.now, in_use_seconds=7 * DAY) == {"k": 2}
    assert store.get_key("k").min_decryption_version == 2
    assert isinstance(fields.decrypt([(cts[0], None)])[0], FailedPrecondition)
    # a week later v2 is no longer in use: the floor reaches primary - K + 1
    clock.now += 8 * DAY
    assert lifecycle.advance_floors(ring, store, clock.now, in_use_seconds=7 * DAY) == {"k": 4}
    # with the explicit flag, usage does not hold it back
    ring.update_policy("k", KeyPolicy(keep_versions=1, floor_past_in_use=True), 0)
    fields.decrypt([(cts[3], None)])
    ring.flush_usage()
    assert lifecycle.advance_floors(ring, store, clock.now, in_use_seconds=7 * DAY) == {"k": 5}


# -- retention --------------------------------------------------------------------------------------


def test_retention_plan_equals_apply(ring, store, clock):
    ring.create("k", Purpose.ENCRYPT, "alice", policy=KeyPolicy(retain_for_seconds=int(150 * DAY)))
    ring.create("forever", Purpose.ENCRYPT, "alice")
    for _ in range(3):
        clock.now += 200 * DAY
        ring.rotate("k", "alice")
        ring.rotate("forever", "alice")
    ring.set_state("k", 2, S.DISABLED, "bob")
    ring.set_state("forever", 1, S.SCHEDULED_FOR_DESTRUCTION, "bob", grace_seconds=0)
    # k: v1 retired 400 days ago, v2 200, v3 just now (retain-for is 150 days), v4 primary
    plan = lifecycle.plan_retention(store, clock.now, grace_seconds=7 * DAY)
    assert [(a.key, a.version, a.action) for a in plan] == [
        ("forever", 1, lifecycle.Action.DESTROY),
        ("k", 1, lifecycle.Action.SCHEDULE),
        ("k", 2, lifecycle.Action.SCHEDULE),
    ]
    assert lifecycle.plan_retention(store, clock.now, 7 * DAY) == plan  # a dry run changes nothing
    done = lifecycle.apply_retention(ring, store, clock.now, grace_seconds=7 * DAY)
    assert done == plan
    assert states(ring) == [S.SCHEDULED_FOR_DESTRUCTION] * 2 + [S.ACTIVE, S.PRIMARY]
    assert store.get_key("k").version(1).destroy_after == clock.now + 7 * DAY
    assert states(ring, "forever")[0] is S.DESTROYED
    assert lifecycle.plan_retention(store, clock.now, 7 * DAY) == []
    # restore one during the grace period; the other is destroyed when it ends
    ring.set_state("k", 2, S.ACTIVE, "bob", expected=S.SCHEDULED_FOR_DESTRUCTION)
    clock.now += 7 * DAY
    plan = lifecycle.plan_retention(store, clock.now, 7 * DAY)
    assert [(a.version, a.action) for a in plan] == [
        (1, lifecycle.Action.DESTROY),
        (2, lifecycle.Action.SCHEDULE),  # still past retain-for: scheduled again
    ]
    assert lifecycle.apply_retention(ring, store, clock.now, 7 * DAY) == plan


def test_destroyed_version_and_unknown_version_errors(ring, store, clock):
    ring.create("k", Purpose.ENCRYPT, "alice")
    ring.rotate("k", "alice")
    ring.set_state("k", 1, S.SCHEDULED_FOR_DESTRUCTION, "bob", grace_seconds=0)
    lifecycle.apply_retention(ring, store, clock.now)
    with pytest.raises(KeyVersionDestroyed):
        ring.decrypting("k", 1, Purpose.ENCRYPT)
    with pytest.raises(DecryptionFailed):
        ring.decrypting("k", 9, Purpose.ENCRYPT)
    assert ring.warm_up() == 1


def test_scheduler_thread_reports_runs_and_survives_errors(ring, store, clock):
    ring.create("k", Purpose.ENCRYPT, "alice", policy=KeyPolicy(rotate_every_seconds=60))
    runs = []
    sched = Scheduler(ring, store, interval_seconds=0.02, clock=clock, on_run=lambda *a: runs.append(a))
    boom = {"n": 0}
    real_tick = sched.tick

    def flaky():
        boom["n"] += 1
        if boom["n"] == 2:
            raise RuntimeError("secret 4111111111111111 in a message")
        return real_tick()

    sched.tick = flaky
    clock.now += 60
    sched.start()
    import time

    deadline = time.monotonic() + 5
    while len(runs) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    sched.stop()
    outcomes = [o for _, o, _ in runs]
    assert outcomes[:2] == ["ok", "error"] and "ok" in outcomes[2:]
    assert all(job == "scheduler" and seconds >= 0 for job, _, seconds in runs)
    assert store.get_key("k").primary.version == 2  # rotated once, then not due again
