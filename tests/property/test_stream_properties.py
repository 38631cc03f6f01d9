"""Properties of streaming encryption: round trips, random access, and every edit is rejected."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from keysvc.crypto.context import encode_context
from keysvc_client import stream
from keysvc_client.stream import StreamDecryptionError, decrypt_stream, encrypt_stream, open_encrypted

DATA_KEY = bytes(range(32))


@dataclass(frozen=True)
class _Key:
    plaintext: bytes
    encrypted: bytes
    key_version: int


class FixedKeySource:
    """One data key for everything, whatever the wrapped bytes or context: only the format protects."""

    def generate_data_key(self, key: str, *, context: Mapping[str, str] | None = None) -> _Key:
        return _Key(DATA_KEY, b"wrapped:" + key.encode(), 1)

    def decrypt_data_key(self, encrypted: bytes, *, context: Mapping[str, str] | None = None) -> bytes:
        return DATA_KEY


SOURCE = FixedKeySource()
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
contexts = st.dictionaries(text, text, max_size=4)
plaintexts = st.binary(max_size=400)
segment_sizes = st.integers(stream.MIN_SEGMENT_SIZE, 64)


def seal(plaintext: bytes, segment_size: int, context: Mapping[str, str]) -> bytes:
    out = io.BytesIO()
    encrypt_stream(
        SOURCE, "recordings", io.BytesIO(plaintext), out, context=context, segment_size=segment_size
    )
    return out.getvalue()


def unseal(ciphertext: bytes, context: Mapping[str, str]) -> bytes:
    out = io.BytesIO()
    decrypt_stream(SOURCE, io.BytesIO(ciphertext), out, context=context)
    return out.getvalue()


def assert_rejected(ciphertext: bytes, context: Mapping[str, str]) -> None:
    with pytest.raises(StreamDecryptionError):
        unseal(ciphertext, context)
    with pytest.raises(StreamDecryptionError):
        open_encrypted(SOURCE, io.BytesIO(ciphertext), context).read_range(0, len(ciphertext))


@given(plaintext=plaintexts, segment_size=segment_sizes, context=contexts)
def test_round_trip(plaintext: bytes, segment_size: int, context: dict[str, str]) -> None:
    ciphertext = seal(plaintext, segment_size, context)
    count = len(plaintext) // segment_size + 1
    assert len(ciphertext) == 86 + len(b"wrapped:recordings") + len(plaintext) + 16 * count
    assert unseal(ciphertext, dict(reversed(list(context.items())))) == plaintext


@given(plaintext=plaintexts, segment_size=segment_sizes, data=st.data())
def test_random_access_matches_slicing(plaintext: bytes, segment_size: int, data: st.DataObject) -> None:
    reader = open_encrypted(SOURCE, io.BytesIO(seal(plaintext, segment_size, {})))
    assert reader.info.plaintext_size == len(plaintext)
    for _ in range(5):
        offset = data.draw(st.integers(0, len(plaintext) + 3))
        length = data.draw(st.integers(0, len(plaintext) + 3))
        assert reader.read_range(offset, length) == plaintext[offset : offset + length]


@given(plaintext=plaintexts, segment_size=segment_sizes, context=contexts, data=st.data())
def test_any_byte_edit_is_rejected(
    plaintext: bytes, segment_size: int, context: dict[str, str], data: st.DataObject
) -> None:
    edited = bytearray(seal(plaintext, segment_size, context))
    edited[data.draw(st.integers(0, len(edited) - 1))] ^= data.draw(st.integers(1, 255))
    assert_rejected(bytes(edited), context)


@given(plaintext=plaintexts, segment_size=segment_sizes, data=st.data())
def test_any_truncation_is_rejected(plaintext: bytes, segment_size: int, data: st.DataObject) -> None:
    ciphertext = seal(plaintext, segment_size, {})
    assert_rejected(ciphertext[: data.draw(st.integers(0, len(ciphertext) - 1))], {})


@given(plaintext=plaintexts, segment_size=segment_sizes, extra=st.binary(min_size=1, max_size=100))
def test_any_extension_is_rejected(plaintext: bytes, segment_size: int, extra: bytes) -> None:
    assert_rejected(seal(plaintext, segment_size, {}) + extra, {})


@given(plaintext=st.binary(min_size=32, max_size=200), data=st.data())
def test_any_reordering_of_segments_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    ciphertext = seal(plaintext, 16, {})
    header_size = 86 + len(b"wrapped:recordings")
    body = ciphertext[header_size:]
    segments = [body[i : i + 32] for i in range(0, len(body), 32)]
    order = data.draw(st.permutations(range(len(segments))))
    assume(order != sorted(order))
    assert_rejected(ciphertext[:header_size] + b"".join(segments[i] for i in order), {})


@given(plaintext=plaintexts, a=contexts, data=st.data())
def test_any_other_context_is_rejected(plaintext: bytes, a: dict[str, str], data: st.DataObject) -> None:
    assert_rejected(seal(plaintext, 16, a), data.draw(contexts.filter(lambda b: b != a)))


@given(context=contexts)
def test_context_encoding_is_the_one_the_server_uses(context: dict[str, str]) -> None:
    assert stream._encode_context(context) == encode_context(context)
