import pytest

from keysvc.errors import AlreadyExists, NotFound
from keysvc.store.models import KeyPolicy, KeyRecord, Purpose, VersionRecord, VersionState


def key(name="k", **kw):
    return KeyRecord(
        name=name,
        purpose=Purpose.ENCRYPT,
        created_at=100.0,
        created_by="alice",
        policy=KeyPolicy(rotate_every_seconds=60),
        last_rotated_at=100.0,
        **kw,
    )


def version(n, state=VersionState.PRIMARY):
    return VersionRecord(
        version=n,
        state=state,
        created_at=100.0 + n,
        wrapped_dek=b"local:v1:x%d" % n,
        kek_version=1,
        state_changed_at=100.0 + n,
        state_changed_by="alice",
    )


def test_create_and_read_back(store):
    store.create_key(key(format="pan", format_options={"keep_prefix": "6"}), version(1))
    got = store.get_key("k")
    assert got.policy == KeyPolicy(rotate_every_seconds=60)
    assert got.format_options == {"keep_prefix": "6"}
    assert got.primary.version == 1 and got.primary.wrapped_dek == b"local:v1:x1"
    assert store.get_key("missing") is None
    assert [k.name for k in store.list_keys()] == ["k"]


def test_duplicate_key_is_already_exists(store):
    store.create_key(key(), version(1))
    with pytest.raises(AlreadyExists):
        store.create_key(key(), version(1))


def test_add_primary_version_demotes_the_old_one(store):
    store.create_key(key(), version(1))
    store.add_primary_version("k", version(2), rotated_at=500.0)
    got = store.get_key("k")
    assert [(v.version, v.state) for v in got.versions] == [
        (1, VersionState.ACTIVE),
        (2, VersionState.PRIMARY),
    ]
    assert got.last_rotated_at == 500.0
    with pytest.raises(AlreadyExists):
        store.add_primary_version("k", version(2), rotated_at=600.0)
    assert store.get_key("k").primary.version == 2
    with pytest.raises(NotFound):
        store.add_primary_version("nope", version(1), rotated_at=1.0)


def test_reserve_encryptions_never_passes_the_limit(store):
    store.create_key(key(), version(1))
    assert store.reserve_encryptions("k", 1, 6, limit=10) == 6
    assert store.reserve_encryptions("k", 1, 5, limit=10) == 4
    assert store.reserve_encryptions("k", 1, 1, limit=10) == 0
    assert store.get_key("k").primary.encryptions == 10
    with pytest.raises(NotFound):
        store.reserve_encryptions("k", 9, 1, limit=10)


def test_update_policy(store):
    store.create_key(key(), version(1))
    store.update_policy("k", KeyPolicy(keep_versions=3), 1)
    assert store.get_key("k").policy == KeyPolicy(keep_versions=3)
    with pytest.raises(NotFound):
        store.update_policy("nope", KeyPolicy(), 1)


def test_replace_wrapped_deks_only_when_unchanged(store):
    store.create_key(key(), version(1))
    assert store.wrapped_deks() == [("k", 1, "encrypt", b"local:v1:x1")]
    assert store.replace_wrapped_deks([("k", 1, b"stale", b"new", 2)]) == 0
    assert store.replace_wrapped_deks([("k", 1, b"local:v1:x1", b"local:v2:y", 2)]) == 1
    assert store.get_key("k").primary.kek_version == 2
