"""FieldCrypto.rewrap: per-item errors for every kind of bad input, order kept, batching by header."""

from keysvc.crypto.envelope import Kind
from keysvc.errors import DecryptionFailed, FailedPrecondition
from keysvc.kek.local import LocalKekProvider
from keysvc.keys.cache import DekCache
from keysvc.keys.fields import FieldCrypto
from keysvc.keys.keyring import Keyring, KeyringSettings
from keysvc.store.models import Purpose, VersionState
from keysvc.store.sqlite import SqliteStore


def test_rewrap_mixed_batch(tmp_path):
    ring = Keyring(
        SqliteStore(tmp_path / "k.db"), LocalKekProvider(tmp_path / "kek.json"), DekCache(),
        KeyringSettings(metadata_ttl_seconds=0),
    )
    ring.create("a", Purpose.ENCRYPT, "alice")
    ring.create("b", Purpose.ENCRYPT, "alice")
    fields = FieldCrypto(ring)
    ctx = {"f": "1"}
    a1 = [s.ciphertext for s in fields.encrypt("a", [(b"a%d" % i, ctx) for i in range(3)])]
    b1 = fields.encrypt("b", [(b"b", None)])[0].ciphertext
    data_key = fields.generate_data_keys("a", [None])[0].encrypted
    ring.rotate("a", "alice")
    ring.rotate("b", "alice")
    ring.set_state("b", 1, VersionState.DISABLED, "bob")
    items = [
        (a1[0][:25], ctx),  # truncated first: must not poison the valid ones with the same header
        (a1[0], ctx),
        (b"", ctx),
        (b"\x01\x01", ctx),
        (a1[1][:25], ctx),  # truncated: header intact, body too short
        (b1, None),  # under a disabled version
        (a1[1], {"f": "other"}),  # wrong context
        (data_key, None),  # a data key is not a field ciphertext
        (a1[2], ctx),
        (b"\x07" * 40, ctx),
    ]
    out = fields.rewrap(items)
    assert len(out) == len(items)
    kinds = [type(o).__name__ for o in out]
    out = out[1:]
    assert kinds == [
        "DecryptionFailed",
        "Sealed", "DecryptionFailed", "DecryptionFailed", "DecryptionFailed", "FailedPrecondition",
        "DecryptionFailed", "DecryptionFailed", "Sealed", "DecryptionFailed",
    ]
    assert isinstance(out[4], FailedPrecondition) and isinstance(out[1], DecryptionFailed)
    assert [o.key_version for o in (out[0], out[7])] == [2, 2]
    opened = fields.decrypt([(out[0].ciphertext, ctx), (out[7].ciphertext, ctx)], kind=Kind.FIELD)
    assert [o.plaintext for o in opened] == [b"a0", b"a2"]


def test_decrypt_batches_by_header_without_cross_item_leaks(tmp_path):
    ring = Keyring(
        SqliteStore(tmp_path / "k.db"), LocalKekProvider(tmp_path / "kek.json"), DekCache(),
        KeyringSettings(metadata_ttl_seconds=0),
    )
    ring.create("a", Purpose.ENCRYPT, "alice")
    fields = FieldCrypto(ring)
    c1, c2 = {"f": "1"}, {"f": "2"}
    cts = [s.ciphertext for s in fields.encrypt("a", [(b"x", c1), (b"y", c2)])]
    out = fields.decrypt([(cts[0][:20], c1), (cts[0], c1), (cts[1], c1), (cts[1], c2), (cts[0], {"f": "1"})])
    names = ["DecryptionFailed", "Opened", "DecryptionFailed", "Opened", "Opened"]
    assert [type(o).__name__ for o in out] == names
    assert [o.plaintext for o in out if not isinstance(o, DecryptionFailed)] == [b"x", b"y", b"x"]
