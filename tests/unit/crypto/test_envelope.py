import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keysvc.crypto import envelope
from keysvc.crypto.context import encode_context
from keysvc.crypto.envelope import Kind
from keysvc.errors import DecryptionFailed

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "envelope_v1.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_seal_and_open(vector):
    aead = AESGCM(bytes.fromhex(vector["dek"]))
    header = envelope.encode_header(Kind.FIELD, vector["key"], vector["version"])
    sealed = envelope.seal(
        aead, header, vector["plaintext"].encode(), vector["context"], nonce=bytes.fromhex(vector["nonce"])
    )
    assert sealed.hex() == vector["ciphertext"]
    assert header + encode_context(vector["context"]) == bytes.fromhex(vector["aad"])
    parsed = envelope.parse_header(sealed)
    assert (parsed.kind, parsed.key_name, parsed.key_version) == (
        Kind.FIELD,
        vector["key"],
        vector["version"],
    )
    opened = envelope.open_sealed(aead, parsed, sealed, encode_context(vector["context"]))
    assert opened == vector["plaintext"].encode()


def _sample():
    aead = AESGCM(bytes(32))
    header = envelope.encode_header(Kind.FIELD, "customer-pii", 3)
    return aead, envelope.seal(aead, header, b"123-45-6789", {"field": "ssn"})


def _open(aead, ciphertext, context):
    return envelope.open_sealed(aead, envelope.parse_header(ciphertext), ciphertext, encode_context(context))


def test_every_flipped_byte_is_rejected():
    aead, sealed = _sample()
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            tampered = bytearray(sealed)
            tampered[i] ^= bit
            with pytest.raises(DecryptionFailed):
                _open(aead, bytes(tampered), {"field": "ssn"})


def test_every_truncation_is_rejected():
    aead, sealed = _sample()
    for cut in range(len(sealed)):
        with pytest.raises(DecryptionFailed):
            _open(aead, sealed[:cut], {"field": "ssn"})


@pytest.mark.parametrize("context", [None, {}, {"field": "pan"}, {"field": "ssn", "x": ""}, {"Field": "ssn"}])
def test_wrong_context_is_rejected(context):
    aead, sealed = _sample()
    with pytest.raises(DecryptionFailed):
        _open(aead, sealed, context)


def test_wrong_key_is_rejected():
    _, sealed = _sample()
    with pytest.raises(DecryptionFailed):
        _open(AESGCM(bytes([1]) * 32), sealed, {"field": "ssn"})


def test_errors_are_one_opaque_message():
    aead, sealed = _sample()
    messages = set()
    for bad in (b"", b"\x02" + sealed[1:], sealed[:-1] + b"\x00", sealed):
        with pytest.raises(DecryptionFailed) as info:
            _open(aead, bad, {"field": "other"})
        messages.add(str(info.value))
    assert messages == {"decryption failed"}


def test_seal_many_uses_distinct_nonces_and_opens():
    aead = AESGCM(bytes(32))
    header = envelope.encode_header(Kind.FIELD, "k", 1)
    sealed = envelope.seal_many(aead, header, [(b"v%d" % i, {"i": str(i)}) for i in range(200)])
    nonces = {ct[len(header) : len(header) + 12] for ct in sealed}
    assert len(nonces) == 200
    assert [_open(aead, ct, {"i": str(i)}) for i, ct in enumerate(sealed)] == [b"v%d" % i for i in range(200)]


@pytest.mark.parametrize("name", ["", "x" * 256])
def test_key_name_length_is_checked(name):
    with pytest.raises(ValueError, match=r"1\.\.255"):
        envelope.encode_header(Kind.FIELD, name, 1)


def test_non_utf8_key_name_is_opaque_failure():
    _, sealed = _sample()
    bad = sealed[:3] + b"\xff" + sealed[4:]
    with pytest.raises(DecryptionFailed):
        envelope.parse_header(bad)
