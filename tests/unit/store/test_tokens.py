"""The token vault in the Store interface, on SQLite and PostgreSQL alike."""

from keysvc.store.models import TokenRecord

from .test_store import key, version


def tok(token, fp=None, v=1, expires=None, value=b"ct", name="k"):
    return TokenRecord(
        key_name=name,
        token=token,
        ciphertext=value + token.encode(),
        key_version=v,
        fingerprint=fp,
        created_at=10.0,
        expires_at=expires,
        metadata={"src": "ivr"},
    )


def test_insert_reports_duplicates_per_record(store):
    store.create_key(key(), version(1))
    assert store.insert_tokens([tok("a", b"fa"), tok("b"), tok("c")]) == [True, True, True]
    got = store.insert_tokens([tok("a"), tok("d", b"fa"), tok("e", b"fe"), tok("e", b"fx"), tok("f")])
    assert got == [False, False, True, False, True]
    assert store.insert_tokens([]) == []
    found = store.find_tokens("k", ["a", "b", "e", "zz"])
    assert set(found) == {"a", "b", "e"}
    assert found["a"] == tok("a", b"fa")
    assert found["b"].fingerprint is None and found["b"].metadata == {"src": "ivr"}
    assert set(store.find_fingerprints("k", [b"fa", b"fe", b"nope"])) == {b"fa", b"fe"}
    assert store.find_tokens("other", ["a"]) == {}


def test_rewrap_below_version_with_compare_and_swap(store):
    store.create_key(key(), version(1))
    store.insert_tokens([tok(f"t{i}", v=1 + i % 2) for i in range(6)])
    below = store.tokens_below_version("k", 2, limit=10)
    assert [t.token for t in below] == ["t0", "t2", "t4"]
    assert [t.token for t in store.tokens_below_version("k", 2, limit=2)] == ["t0", "t2"]
    rows = [("k", t.token, 1, b"new", 3) for t in below] + [("k", "t1", 1, b"stale", 3)]
    assert store.update_token_ciphertexts(rows) == 3
    assert store.tokens_below_version("k", 2, limit=10) == []
    assert store.find_tokens("k", ["t0"])["t0"].ciphertext == b"new"
    assert store.find_tokens("k", ["t1"])["t1"].key_version == 2  # CAS refused the stale row


def test_purge_expired(store):
    store.create_key(key(), version(1))
    store.insert_tokens([tok("a", expires=100.0), tok("b", expires=200.0), tok("c")])
    assert store.purge_expired_tokens(100.0) == 1
    assert store.purge_expired_tokens(150.0) == 0
    assert set(store.find_tokens("k", ["a", "b", "c"])) == {"b", "c"}


def test_many_tokens_in_one_call(store):
    store.create_key(key(), version(1))
    records = [tok(f"n{i:05d}", fp=b"%05d" % i) for i in range(1500)]
    assert all(store.insert_tokens(records))
    assert len(store.find_tokens("k", [r.token for r in records])) == 1500
    assert len(store.find_fingerprints("k", [r.fingerprint for r in records])) == 1500
