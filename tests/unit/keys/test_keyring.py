import pytest

from keysvc.crypto.context import dek_binding
from keysvc.errors import AlreadyExists, DecryptionFailed, FailedPrecondition, InvalidArgument, NotFound
from keysvc.kek.local import LocalKekProvider
from keysvc.keys.cache import DekCache
from keysvc.keys.fields import FieldCrypto
from keysvc.keys.keyring import Keyring, KeyringSettings
from keysvc.store.models import Purpose, VersionState
from keysvc.store.sqlite import SqliteStore


@pytest.fixture
def parts(tmp_path):
    store = SqliteStore(tmp_path / "k.db")
    kek = LocalKekProvider(tmp_path / "kek.json")
    yield store, kek
    store.close()


def make(parts, **settings):
    store, kek = parts
    return Keyring(store, kek, DekCache(), KeyringSettings(metadata_ttl_seconds=0, **settings))


def test_dek_is_stored_only_wrapped_and_bound(parts):
    ring = make(parts)
    ring.create("customer-pii", Purpose.ENCRYPT, "alice")
    version = parts[0].get_key("customer-pii").primary
    dek = ring.dek(ring.get("customer-pii"), 1).dek
    assert dek not in version.wrapped_dek
    assert parts[1].unwrap(version.wrapped_dek, dek_binding("customer-pii", 1, "encrypt")) == dek
    with pytest.raises(DecryptionFailed):
        parts[1].unwrap(version.wrapped_dek, dek_binding("other", 1, "encrypt"))


def test_nonce_budget_rotates_when_spent(parts):
    ring = make(parts, nonce_limit=10, reservation_block=4)
    ring.create("k", Purpose.ENCRYPT, "alice")
    fields = FieldCrypto(ring)
    sealed = fields.encrypt("k", [(b"%d" % i, None) for i in range(25)])
    versions = [s.key_version for s in sealed]
    assert versions == [1] * 10 + [2] * 10 + [3] * 5
    record = parts[0].get_key("k")
    assert [v.encryptions for v in record.versions] == [10, 10, 5]
    assert all(v.encryptions <= 10 for v in record.versions)
    assert [o.plaintext for o in fields.decrypt([(s.ciphertext, None) for s in sealed])] == [
        b"%d" % i for i in range(25)
    ]


def test_reservations_survive_a_restart(parts):
    ring = make(parts, nonce_limit=10, reservation_block=8)
    ring.create("k", Purpose.ENCRYPT, "alice")
    FieldCrypto(ring).encrypt("k", [(b"x", None)])
    restarted = make(parts, nonce_limit=10, reservation_block=8)
    sealed = FieldCrypto(restarted).encrypt("k", [(b"x", None)] * 3)
    # the first process's 7 unused reservations are lost, never reused
    assert [s.key_version for s in sealed] == [1, 1, 2]
    assert parts[0].get_key("k").versions[0].encryptions == 10


def test_wrong_purpose_and_names(parts):
    ring = make(parts)
    ring.create("tok", Purpose.FPE, "alice", format="digits")
    with pytest.raises(FailedPrecondition):
        FieldCrypto(ring).encrypt("tok", [(b"x", None)])
    with pytest.raises(NotFound):
        FieldCrypto(ring).encrypt("missing", [(b"x", None)])
    with pytest.raises(AlreadyExists):
        ring.create("tok", Purpose.FPE, "alice")
    for bad in ("", "a b", "x" * 129, "ключ"):
        with pytest.raises(InvalidArgument):
            ring.create(bad, Purpose.ENCRYPT, "alice")


def test_rotation_keeps_old_versions_decryptable_and_records_who(parts):
    ring = make(parts)
    ring.create("k", Purpose.ENCRYPT, "alice")
    fields = FieldCrypto(ring)
    old = fields.encrypt("k", [(b"v1", {"f": "x"})])[0]
    record = ring.rotate("k", "bob")
    assert [(v.version, v.state, v.state_changed_by) for v in record.versions] == [
        (1, VersionState.ACTIVE, "bob"),
        (2, VersionState.PRIMARY, "bob"),
    ]
    assert fields.decrypt([(old.ciphertext, {"f": "x"})])[0].plaintext == b"v1"
    assert fields.encrypt("k", [(b"v2", None)])[0].key_version == 2


def test_min_decryption_version_blocks_older_versions(parts):
    ring = make(parts)
    ring.create("k", Purpose.ENCRYPT, "alice")
    fields = FieldCrypto(ring)
    old = fields.encrypt("k", [(b"v1", None)])[0]
    ring.rotate("k", "alice")
    ring.update_policy("k", ring.get("k").policy, 2)
    (result,) = fields.decrypt([(old.ciphertext, None)])
    assert isinstance(result, FailedPrecondition)
    with pytest.raises(InvalidArgument):
        ring.update_policy("k", ring.get("k").policy, 3)


def test_warm_up_unwraps_in_one_batch(parts):
    store, kek = parts
    ring = make(parts)
    for name in ("a", "b"):
        ring.create(name, Purpose.ENCRYPT, "alice")
    ring.rotate("a", "alice")
    calls = []
    original = kek.unwrap_many
    kek.unwrap_many = lambda items: calls.append(len(items)) or original(items)
    assert Keyring(store, kek, DekCache()).warm_up() == 3
    assert calls == [3]
