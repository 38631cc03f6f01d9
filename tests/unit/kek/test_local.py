import stat

import pytest

from keysvc.crypto.context import dek_binding
from keysvc.errors import DecryptionFailed
from keysvc.kek.local import LocalKekProvider

BINDING = dek_binding("customer-pii", 1, "encrypt")
DEK = bytes(range(32))


@pytest.fixture
def kek(tmp_path):
    return LocalKekProvider(tmp_path / "kek.json")


def test_file_is_private_and_reloadable(tmp_path, kek):
    path = tmp_path / "kek.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wrapped = kek.wrap(DEK, BINDING)
    assert LocalKekProvider(path).unwrap(wrapped, BINDING) == DEK


def test_wrapped_shape_names_the_kek_version(kek):
    wrapped = kek.wrap(DEK, BINDING)
    assert wrapped.startswith(b"local:v1:")
    assert DEK.hex().encode() not in wrapped and DEK not in wrapped
    assert kek.kek_version(wrapped) == 1


@pytest.mark.parametrize(
    "other",
    [
        dek_binding("customer-pii", 2, "encrypt"),
        dek_binding("pan", 1, "encrypt"),
        dek_binding("customer-pii", 1, "fpe"),
    ],
)
def test_binding_prevents_substitution(kek, other):
    with pytest.raises(DecryptionFailed):
        kek.unwrap(kek.wrap(DEK, BINDING), other)


@pytest.mark.parametrize(
    "bad", [b"", b"local:v1:", b"local:vx:AAAA", b"vault:v1:AAAA", b"local:v9:AAAA", b"local:v1:!!"]
)
def test_malformed_wrapped_values_fail_opaquely(kek, bad):
    with pytest.raises(DecryptionFailed):
        kek.unwrap(bad, BINDING)


def test_rotate_and_rewrap_keep_old_values_readable(tmp_path, kek):
    old = kek.wrap(DEK, BINDING)
    assert kek.rotate() == 2
    assert kek.unwrap(old, BINDING) == DEK
    (rewrapped,) = kek.rewrap_many([(old, BINDING)])
    assert kek.kek_version(rewrapped) == 2
    reloaded = LocalKekProvider(tmp_path / "kek.json")
    assert reloaded.unwrap_many([(old, BINDING), (rewrapped, BINDING)]) == [DEK, DEK]
    assert reloaded.health().ok
