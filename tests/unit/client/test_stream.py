"""Streaming encryption of recordings: round trips, tampering, limits, files, random access, vectors."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import stat
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keysvc_client import stream
from keysvc_client.stream import (
    StreamDecryptionError,
    StreamInfo,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    encrypt_stream,
    open_encrypted,
)

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "vectors" / "stream_v1.json"
S = stream.MIN_SEGMENT_SIZE
CTX = {"call_id": "c-0001", "tenant": "acme"}


@dataclass(frozen=True)
class FakeDataKey:
    plaintext: bytes
    encrypted: bytes
    key_version: int


class FakeKeyError(Exception):
    """What the fake service raises for a wrapped key it cannot open."""


class FakeKeySource:
    """Wraps data keys with AES-GCM under a fixed test KEK, binding key name, version and context."""

    KEK = bytes(range(32))

    def __init__(self, version: int = 7) -> None:
        self.version = version
        self.generated = 0
        self.unwrapped = 0

    @staticmethod
    def _aad(head: bytes, context: Mapping[str, str] | None) -> bytes:
        return head + json.dumps(sorted((context or {}).items())).encode()

    def generate_data_key(self, key: str, *, context: Mapping[str, str] | None = None) -> FakeDataKey:
        self.generated += 1
        dek, nonce, name = os.urandom(32), os.urandom(12), key.encode()
        head = bytes([len(name)]) + name + struct.pack(">I", self.version)
        wrapped = head + nonce + AESGCM(self.KEK).encrypt(nonce, dek, self._aad(head, context))
        return FakeDataKey(dek, wrapped, self.version)

    def decrypt_data_key(self, encrypted: bytes, *, context: Mapping[str, str] | None = None) -> bytes:
        self.unwrapped += 1
        end = 1 + encrypted[0] + 4
        head, nonce, body = encrypted[:end], encrypted[end : end + 12], encrypted[end + 12 :]
        try:
            return AESGCM(self.KEK).decrypt(nonce, body, self._aad(head, context))
        except (InvalidTag, ValueError):
            raise FakeKeyError("cannot unwrap data key") from None


class FixedKeySource:
    """Always hands out (and "unwraps" to) one data key, ignoring wrapped bytes and context.

    With it, only the stream format itself stands between a tampered stream and its plaintext.
    """

    def __init__(self, key: bytes = b"\x11" * 32, wrapped: bytes = b"wrapped-test-key/recordings/v3") -> None:
        self.key, self.wrapped = key, wrapped
        self.unwrapped = 0

    def generate_data_key(self, key: str, *, context: Mapping[str, str] | None = None) -> FakeDataKey:
        return FakeDataKey(self.key, self.wrapped, 3)

    def decrypt_data_key(self, encrypted: bytes, *, context: Mapping[str, str] | None = None) -> bytes:
        self.unwrapped += 1
        return self.key


def data(n: int, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


def seal(source, plaintext: bytes, *, context=CTX, segment_size: int = S) -> bytes:
    out = io.BytesIO()
    encrypt_stream(
        source, "recordings", io.BytesIO(plaintext), out, context=context, segment_size=segment_size
    )
    return out.getvalue()


def open_(source, ciphertext: bytes, *, context=CTX) -> bytes:
    out = io.BytesIO()
    decrypt_stream(source, io.BytesIO(ciphertext), out, context=context)
    return out.getvalue()


def header_size(ciphertext: bytes) -> int:
    (wrapped_len,) = struct.unpack_from(">H", ciphertext, 9)
    return 86 + wrapped_len


def segments(ciphertext: bytes, segment_size: int = S) -> tuple[bytes, list[bytes]]:
    h = header_size(ciphertext)
    body, step = ciphertext[h:], segment_size + stream.TAG_SIZE
    return ciphertext[:h], [body[i : i + step] for i in range(0, len(body), step)]


def assert_rejected(source, ciphertext: bytes, *, context=CTX) -> None:
    with pytest.raises(StreamDecryptionError) as err:
        open_(source, ciphertext, context=context)
    assert str(err.value) == "stream decryption failed"


# --- round trips and layout -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, S - 1, S, S + 1, 2 * S, 3 * S, 3 * S + 5])
def test_round_trip_and_sizes(n: int) -> None:
    source, plaintext = FakeKeySource(), data(n)
    out = io.BytesIO()
    info = encrypt_stream(source, "recordings", io.BytesIO(plaintext), out, context=CTX, segment_size=S)
    ciphertext = out.getvalue()
    count = n // S + 1  # the last segment is always short, possibly empty
    assert info == StreamInfo(7, S, count, n, len(ciphertext))
    assert len(ciphertext) == header_size(ciphertext) + n + count * stream.TAG_SIZE
    back = io.BytesIO()
    assert decrypt_stream(source, io.BytesIO(ciphertext), back, context=CTX) == info
    assert back.getvalue() == plaintext


def test_default_segment_size_round_trip() -> None:
    source, plaintext = FakeKeySource(), os.urandom(2 * stream.DEFAULT_SEGMENT_SIZE + 12345)
    out = io.BytesIO()
    info = encrypt_stream(source, "recordings", io.BytesIO(plaintext), out)
    assert (info.segment_size, info.segment_count) == (1 << 20, 3)
    assert open_(source, out.getvalue(), context=None) == plaintext


def test_empty_input_is_one_empty_last_segment() -> None:
    ciphertext = seal(FakeKeySource(), b"")
    _, segs = segments(ciphertext)
    assert [len(s) for s in segs] == [stream.TAG_SIZE]


def test_header_layout_matches_the_documented_offsets() -> None:
    source = FakeKeySource(version=0x01020304)
    ciphertext = seal(source, data(40), segment_size=32)
    wrapped_len = struct.unpack_from(">H", ciphertext, 9)[0]
    assert ciphertext[:4] == b"KSVS" and ciphertext[4] == 1
    assert struct.unpack_from(">I", ciphertext, 5)[0] == 32
    wrapped = ciphertext[11 : 11 + wrapped_len]
    assert wrapped[0] == len(b"recordings") and wrapped[1:11] == b"recordings"  # the fake's own format
    assert ciphertext[11 + wrapped_len : 15 + wrapped_len] == bytes([1, 2, 3, 4])
    assert len(ciphertext) == 86 + wrapped_len + (32 + 16) + (8 + 16)


def test_fresh_key_salt_and_nonce_prefix_per_stream() -> None:
    source = FixedKeySource()
    a, b = seal(source, b"same"), seal(source, b"same")
    n = len(source.wrapped)
    assert a[15 + n : 54 + n] != b[15 + n : 54 + n]
    assert a[86 + n :] != b[86 + n :]


def test_context_none_and_empty_are_the_same() -> None:
    source = FakeKeySource()
    assert open_(source, seal(source, b"x", context=None), context={}) == b"x"


def test_canonical_context_encoding() -> None:
    encoded = stream._encode_context({"b": "2", "a": "Zoë"})
    assert encoded == bytes.fromhex("0000000200000001 6100000004 5a6fc3ab00000001 6200000001 32")
    assert stream._encode_context({"a": "Zoë", "b": "2"}) == encoded
    assert stream._encode_context(None) == stream._encode_context({}) == b"\0\0\0\0"
    # pairs are length-prefixed, so moving a boundary changes the encoding
    assert stream._encode_context({"ab": "c"}) != stream._encode_context({"a": "bc"})


@pytest.mark.parametrize("context", [{"a": 1}, {2: "b"}])
def test_context_must_be_strings(context) -> None:
    source = FakeKeySource()
    with pytest.raises(TypeError):
        seal(source, b"x", context=context)
    assert source.generated == 0


def test_context_must_be_encodable() -> None:
    with pytest.raises(ValueError):
        seal(FakeKeySource(), b"x", context={"a": "\ud800"})


# --- truncation, extension, reordering, replay, splicing ------------------------------------------


@pytest.mark.parametrize("n", [0, 40, 48])
def test_every_truncation_is_rejected(n: int) -> None:
    source, plaintext = FixedKeySource(), data(n)
    ciphertext = seal(source, plaintext)
    for cut in range(len(ciphertext)):
        out = io.BytesIO()
        with pytest.raises(StreamDecryptionError):
            decrypt_stream(source, io.BytesIO(ciphertext[:cut]), out, context=CTX)
        # what was written is whole, authenticated segments before the cut, never the final one
        written = out.getvalue()
        assert written == plaintext[: len(written)] and len(written) % S == 0
        assert len(written) <= max(0, cut - header_size(ciphertext)) // (S + 16) * S
        with pytest.raises(StreamDecryptionError):
            open_encrypted(source, io.BytesIO(ciphertext[:cut]), CTX)


@pytest.mark.parametrize("extra", [b"\0", bytes(16), bytes(S + 16), b"KSVS"])
def test_appended_bytes_are_rejected(extra: bytes) -> None:
    source = FixedKeySource()
    ciphertext = seal(source, data(40))
    assert_rejected(source, ciphertext + extra)
    with pytest.raises(StreamDecryptionError):
        open_encrypted(source, io.BytesIO(ciphertext + extra), CTX)


def test_concatenated_streams_are_rejected() -> None:
    source = FixedKeySource()
    assert_rejected(source, seal(source, data(20)) + seal(source, data(20)))


def test_segment_swap_is_rejected() -> None:
    source = FixedKeySource()
    header, segs = segments(seal(source, data(40, seed=1)))
    assert_rejected(source, header + segs[1] + segs[0] + segs[2])


def test_segment_replay_and_drop_are_rejected() -> None:
    source = FixedKeySource()
    header, segs = segments(seal(source, data(60)))  # 3 full segments and a short last one
    assert_rejected(source, header + segs[0] + segs[0] + segs[2] + segs[3])  # replaced by a replay
    assert_rejected(source, header + segs[0] + segs[0] + segs[1] + segs[2] + segs[3])  # duplicated
    assert_rejected(source, header + segs[0] + segs[2] + segs[3])  # dropped
    assert_rejected(source, header + segs[0] + segs[1] + segs[2] + segs[3] + segs[3])  # last replayed


def test_final_segment_cannot_be_dropped_at_a_boundary() -> None:
    source = FixedKeySource()
    header, segs = segments(seal(source, data(2 * S)))  # 2 full segments and an empty last one
    out = io.BytesIO()
    with pytest.raises(StreamDecryptionError):
        decrypt_stream(source, io.BytesIO(header + segs[0] + segs[1]), out, context=CTX)
    assert out.getvalue() == data(2 * S)  # every byte was authentic, but the stream was not complete


def test_segment_spliced_from_another_stream_with_the_same_key_is_rejected() -> None:
    source = FixedKeySource()
    header_a, a = segments(seal(source, data(40, seed=1)))
    _, b = segments(seal(source, data(40, seed=1)))
    assert_rejected(source, header_a + a[0] + b[1] + a[2])


def _seal_with(plaintext: bytes, *, salt: bytes, context=CTX, key: bytes = b"\x11" * 32) -> bytes:
    out = io.BytesIO()
    stream._encrypt_with(
        FakeDataKey(key, b"wrapped", 3),
        io.BytesIO(plaintext),
        out,
        context=context,
        segment_size=S,
        salt=salt,
        nonce_prefix=b"\x07" * 7,
    )
    return out.getvalue()


def test_splicing_is_rejected_even_with_the_same_data_key_and_nonce_prefix() -> None:
    source = FixedKeySource(wrapped=b"wrapped")
    header_a, a = segments(_seal_with(data(40), salt=b"\1" * 32))
    _, b = segments(_seal_with(data(40), salt=b"\2" * 32))
    assert a[1] != b[1]
    assert_rejected(source, header_a + a[0] + b[1] + a[2])


def test_splicing_between_contexts_is_rejected_even_with_an_identical_header() -> None:
    source = FixedKeySource(wrapped=b"wrapped")
    header_a, a = segments(_seal_with(data(40), salt=b"\1" * 32, context={"call_id": "a"}))
    header_b, b = segments(_seal_with(data(40), salt=b"\1" * 32, context={"call_id": "b"}))
    assert header_a[:-32] == header_b[:-32]
    assert_rejected(source, header_a + a[0] + b[1] + a[2], context={"call_id": "a"})


# --- header edits, wrong keys and contexts --------------------------------------------------------


def test_every_header_bit_edit_is_rejected() -> None:
    # FixedKeySource ignores the wrapped key, so edits to it must be caught by the header tag
    source = FixedKeySource()
    ciphertext = seal(source, data(40))
    for i in range(header_size(ciphertext)):
        for mask in (0x01, 0x80):
            edited = bytearray(ciphertext)
            edited[i] ^= mask
            assert_rejected(source, bytes(edited))
            with pytest.raises(StreamDecryptionError):
                open_encrypted(source, io.BytesIO(bytes(edited)), CTX)


def test_every_body_byte_edit_is_rejected() -> None:
    source = FixedKeySource()
    ciphertext = seal(source, data(40))
    for i in range(header_size(ciphertext), len(ciphertext)):
        edited = bytearray(ciphertext)
        edited[i] ^= 0x40
        assert_rejected(source, bytes(edited))


def test_an_edited_wrapped_key_fails_at_the_service_and_its_error_propagates() -> None:
    source = FakeKeySource()
    edited = bytearray(seal(source, data(20)))
    edited[11 + 3] ^= 1
    with pytest.raises(FakeKeyError):
        open_(source, bytes(edited))


def test_wrong_context_is_rejected_by_the_service() -> None:
    source = FakeKeySource()
    with pytest.raises(FakeKeyError):
        open_(source, seal(source, data(20)), context={"call_id": "c-0002", "tenant": "acme"})


@pytest.mark.parametrize(
    "context", [None, {"call_id": "c-0001"}, {**CTX, "extra": ""}, {"call_id": "c-0002"}]
)
def test_wrong_context_is_rejected_by_the_stream_itself(context) -> None:
    source = FixedKeySource()  # a source that ignores the context: the stream must still bind it
    assert_rejected(source, seal(source, data(20)), context=context)


def test_wrong_data_key_is_rejected() -> None:
    ciphertext = seal(FixedKeySource(b"\x11" * 32), data(20))
    assert_rejected(FixedKeySource(b"\x12" + b"\x11" * 31), ciphertext)
    assert_rejected(FixedKeySource(b"\x11" * 16), ciphertext)


def _prefix(magic=b"KSVS", version=1, segment_size=S, wrapped_len=7) -> bytes:
    return struct.pack(">4sBIH", magic, version, segment_size, wrapped_len)


@pytest.mark.parametrize(
    "prefix",
    [
        _prefix(magic=b"KSVT"),
        _prefix(version=0),
        _prefix(version=2),
        _prefix(segment_size=0),
        _prefix(segment_size=S - 1),
        _prefix(segment_size=stream.MAX_SEGMENT_SIZE + 1),
        _prefix(segment_size=0xFFFFFFFF),
        _prefix(wrapped_len=0),
        _prefix(wrapped_len=stream.MAX_WRAPPED_KEY_SIZE + 1),
        _prefix(wrapped_len=0xFFFF),
    ],
)
def test_malformed_header_is_rejected_before_unwrapping(prefix: bytes) -> None:
    source = FixedKeySource()
    assert_rejected(source, prefix + bytes(5000))
    assert source.unwrapped == 0


def test_a_forged_header_cannot_make_decrypt_allocate() -> None:
    source = FixedKeySource()
    forged = _prefix(segment_size=stream.MAX_SEGMENT_SIZE, wrapped_len=stream.MAX_WRAPPED_KEY_SIZE)
    forged += bytes(stream.MAX_WRAPPED_KEY_SIZE + 4 + 32 + 7 + 32) + bytes(1 << 20)
    tracemalloc.start()
    try:
        assert_rejected(source, forged)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert source.unwrapped == 1  # got as far as the header tag, no further
    assert peak < 256 * 1024  # no segment buffers before the header is authentic


def test_tag_failures_carry_no_detail() -> None:
    source = FixedKeySource()
    edited = bytearray(seal(source, data(20)))
    edited[-1] ^= 1
    with pytest.raises(StreamDecryptionError) as err:
        open_(source, bytes(edited))
    assert err.value.__cause__ is None and err.value.__suppress_context__


# --- argument checks and limits -------------------------------------------------------------------


@pytest.mark.parametrize("segment_size", [0, S - 1, stream.MAX_SEGMENT_SIZE + 1])
def test_bad_segment_size_is_refused_before_asking_for_a_key(segment_size: int) -> None:
    source = FakeKeySource()
    with pytest.raises(ValueError):
        seal(source, b"x", segment_size=segment_size)
    assert source.generated == 0


def test_largest_segment_size_round_trips() -> None:
    source, plaintext = FixedKeySource(), os.urandom(stream.MAX_SEGMENT_SIZE + 3)
    assert open_(source, seal(source, plaintext, segment_size=stream.MAX_SEGMENT_SIZE)) == plaintext


@pytest.mark.parametrize(
    "key",
    [
        FakeDataKey(b"k" * 31, b"w", 1),
        FakeDataKey(b"k" * 32, b"", 1),
        FakeDataKey(b"k" * 32, b"w" * (stream.MAX_WRAPPED_KEY_SIZE + 1), 1),
        FakeDataKey(b"k" * 32, b"w", -1),
        FakeDataKey(b"k" * 32, b"w", 1 << 32),
    ],
)
def test_malformed_data_key_from_the_source_is_refused(key: FakeDataKey) -> None:
    class Source(FixedKeySource):
        def generate_data_key(self, name, *, context=None):
            return key

    out = io.BytesIO()
    with pytest.raises(ValueError):
        encrypt_stream(Source(), "recordings", io.BytesIO(b"x"), out)
    assert out.getvalue() == b""


@pytest.mark.parametrize("salt, prefix", [(b"s" * 31, b"p" * 7), (b"s" * 32, b"p" * 8)])
def test_seam_checks_salt_and_nonce_prefix_sizes(salt: bytes, prefix: bytes) -> None:
    with pytest.raises(ValueError):
        stream._encrypt_with(
            FakeDataKey(b"k" * 32, b"w", 1),
            io.BytesIO(b""),
            io.BytesIO(),
            context=None,
            segment_size=S,
            salt=salt,
            nonce_prefix=prefix,
        )


def test_segment_count_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    source = FixedKeySource()
    four_segments = seal(source, data(3 * S))
    monkeypatch.setattr(stream, "MAX_SEGMENTS", 3)
    assert open_(source, seal(source, data(3 * S - 1))) == data(3 * S - 1)  # 3 segments: the most
    with pytest.raises(ValueError):
        seal(source, data(3 * S))
    assert_rejected(source, four_segments)
    with pytest.raises(StreamDecryptionError):
        open_encrypted(source, io.BytesIO(four_segments), CTX)


def test_source_errors_propagate_unchanged() -> None:
    class Down(FixedKeySource):
        def generate_data_key(self, key, *, context=None):
            raise ConnectionError("keysvc unavailable")

        def decrypt_data_key(self, encrypted, *, context=None):
            raise PermissionError("key version destroyed")

    with pytest.raises(ConnectionError):
        seal(Down(), b"x")
    with pytest.raises(PermissionError):
        open_(Down(), seal(FixedKeySource(), b"x"))


def test_context_is_passed_to_the_source() -> None:
    seen: list[object] = []

    class Recording(FixedKeySource):
        def generate_data_key(self, key, *, context=None):
            seen.append(("generate", key, context))
            return super().generate_data_key(key, context=context)

        def decrypt_data_key(self, encrypted, *, context=None):
            seen.append(("decrypt", encrypted, context))
            return super().decrypt_data_key(encrypted, context=context)

    source = Recording()
    open_(source, seal(source, b"x"))
    assert seen == [("generate", "recordings", CTX), ("decrypt", source.wrapped, CTX)]


# --- I/O shapes -----------------------------------------------------------------------------------


class Trickle:
    """A file-like object with only read(), returning at most 5 bytes per call (like a pipe)."""

    def __init__(self, payload: bytes) -> None:
        self._buf = io.BytesIO(payload)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(min(n, 5))


class RawTrickle(io.RawIOBase):
    """A raw stream whose readinto returns at most 3 bytes per call."""

    def __init__(self, payload: bytes) -> None:
        self._buf = io.BytesIO(payload)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        return self._buf.readinto(memoryview(b)[:3])


@pytest.mark.parametrize("wrap", [Trickle, RawTrickle])
def test_short_reads_are_filled(wrap) -> None:
    source, plaintext = FixedKeySource(), data(100)
    out = io.BytesIO()
    info = encrypt_stream(source, "recordings", wrap(plaintext), out, context=CTX, segment_size=S)
    assert info.segment_count == 100 // S + 1  # short reads did not end segments early
    back = io.BytesIO()
    decrypt_stream(source, wrap(out.getvalue()), back, context=CTX)
    assert back.getvalue() == plaintext


def test_decrypt_reads_from_the_current_position() -> None:
    source = FixedKeySource()
    src = io.BytesIO(b"container-prefix" + seal(source, data(30)))
    src.seek(len(b"container-prefix"))
    back = io.BytesIO()
    decrypt_stream(source, src, back, context=CTX)
    assert back.getvalue() == data(30)


# --- file helpers ---------------------------------------------------------------------------------


def test_file_round_trip(tmp_path: Path) -> None:
    source, plaintext = FakeKeySource(), os.urandom(100_000)
    (tmp_path / "call.wav").write_bytes(plaintext)
    info = encrypt_file(
        source, "recordings", tmp_path / "call.wav", tmp_path / "call.ksvs", segment_size=4096
    )
    assert info.plaintext_size == 100_000 and info.segment_count == 25
    assert (tmp_path / "call.ksvs").stat().st_size == info.ciphertext_size
    assert decrypt_file(source, str(tmp_path / "call.ksvs"), str(tmp_path / "back.wav")) == info
    assert (tmp_path / "back.wav").read_bytes() == plaintext
    assert stat.S_IMODE((tmp_path / "back.wav").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.wav", "call.ksvs", "call.wav"]


def test_file_encrypted_in_place(tmp_path: Path) -> None:
    source, path = FakeKeySource(), tmp_path / "call.wav"
    path.write_bytes(b"hello")
    encrypt_file(source, "recordings", path, path)
    decrypt_file(source, path, path)
    assert path.read_bytes() == b"hello"


def test_failed_decrypt_file_leaves_nothing_behind(tmp_path: Path) -> None:
    source = FakeKeySource()
    (tmp_path / "call.wav").write_bytes(data(10_000))
    encrypt_file(source, "recordings", tmp_path / "call.wav", tmp_path / "call.ksvs", segment_size=1024)
    (tmp_path / "cut.ksvs").write_bytes((tmp_path / "call.ksvs").read_bytes()[:-1])
    (tmp_path / "old.wav").write_bytes(b"previous contents")
    with pytest.raises(StreamDecryptionError):
        decrypt_file(source, tmp_path / "cut.ksvs", tmp_path / "new.wav")
    with pytest.raises(StreamDecryptionError):
        decrypt_file(source, tmp_path / "cut.ksvs", tmp_path / "old.wav")
    assert (tmp_path / "old.wav").read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.ksvs", "call.wav", "cut.ksvs", "old.wav"]


def test_failed_encrypt_file_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "call.wav").write_bytes(b"x")
    with pytest.raises(ValueError):
        encrypt_file(FakeKeySource(), "recordings", tmp_path / "call.wav", tmp_path / "out", segment_size=1)
    with pytest.raises(FileNotFoundError):
        encrypt_file(FakeKeySource(), "recordings", tmp_path / "missing.wav", tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["call.wav"]


# --- random access --------------------------------------------------------------------------------


def test_reader_reads_every_segment_and_every_range() -> None:
    source, plaintext = FixedKeySource(), data(50)
    ciphertext = seal(source, plaintext)
    with open_encrypted(source, io.BytesIO(ciphertext), CTX) as reader:
        assert reader.info == StreamInfo(3, S, 4, 50, len(ciphertext))
        assert [reader.read_segment(i) for i in range(4)] == [plaintext[i : i + S] for i in range(0, 64, S)]
        for offset in range(len(plaintext) + 2):
            for length in range(len(plaintext) + 2 - offset):
                assert reader.read_range(offset, length) == plaintext[offset : offset + length]
    assert source.unwrapped == 1


def test_reader_on_empty_stream() -> None:
    source = FixedKeySource()
    reader = open_encrypted(source, io.BytesIO(seal(source, b"")), CTX)
    assert reader.info.plaintext_size == 0 and reader.info.segment_count == 1
    assert reader.read_segment(0) == b"" and reader.read_range(0, 10) == b""


def test_reader_argument_checks() -> None:
    source = FixedKeySource()
    reader = open_encrypted(source, io.BytesIO(seal(source, data(40))), CTX)
    for index in (-1, 3):
        with pytest.raises(IndexError):
            reader.read_segment(index)
    for offset, length in ((-1, 1), (0, -1)):
        with pytest.raises(ValueError):
            reader.read_range(offset, length)
    assert reader.read_range(1000, 10) == b""


def test_reader_authenticates_each_segment_it_reads() -> None:
    source, plaintext = FixedKeySource(), data(50)
    edited = bytearray(seal(source, plaintext))
    edited[header_size(bytes(edited)) + (S + 16) + 2] ^= 1  # inside segment 1
    reader = open_encrypted(source, io.BytesIO(bytes(edited)), CTX)  # the last segment is intact
    assert reader.read_segment(0) == plaintext[:S]
    for _ in range(2):  # a failed segment is never served from the cache
        with pytest.raises(StreamDecryptionError):
            reader.read_segment(1)
    with pytest.raises(StreamDecryptionError):
        reader.read_range(S - 1, 2)
    assert reader.read_range(2 * S, 100) == plaintext[2 * S :]


def test_reader_rejects_a_file_that_shrank_after_opening() -> None:
    source = FixedKeySource()
    ciphertext = seal(source, data(50))
    src = io.BytesIO(ciphertext)
    reader = open_encrypted(source, src, CTX)
    src.truncate(len(ciphertext) - 40)  # all of segment 3 and part of segment 2
    assert reader.read_segment(1) == data(50)[S : 2 * S]
    with pytest.raises(StreamDecryptionError):
        reader.read_segment(2)


def test_reader_by_path_closes_only_what_it_opened(tmp_path: Path) -> None:
    source, plaintext = FakeKeySource(), data(5000)
    (tmp_path / "call.wav").write_bytes(plaintext)
    encrypt_file(
        source, "recordings", tmp_path / "call.wav", tmp_path / "call.ksvs", context=CTX, segment_size=512
    )
    with open_encrypted(source, tmp_path / "call.ksvs", context=CTX) as reader:
        assert reader.read_range(1000, 1500) == plaintext[1000:2500]
        owned = reader._file
    assert owned.closed
    with open(tmp_path / "call.ksvs", "rb") as f:
        with open_encrypted(source, f, CTX) as reader:
            assert reader.read_range(4990, 100) == plaintext[4990:]
        assert not f.closed
    with pytest.raises(FakeKeyError):
        open_encrypted(source, str(tmp_path / "call.ksvs"), {"call_id": "other"})


def test_reader_of_a_stream_inside_a_container() -> None:
    source = FixedKeySource()
    src = io.BytesIO(b"RIFF-ish prefix" + seal(source, data(40)))
    src.seek(len(b"RIFF-ish prefix"))
    reader = open_encrypted(source, src, CTX)
    assert reader.read_range(0, 100) == data(40)


# --- vectors --------------------------------------------------------------------------------------


def _vectors() -> dict:
    return json.loads(VECTORS.read_text())


@pytest.mark.parametrize("case", _vectors()["valid"], ids=lambda c: c["name"])
def test_valid_vector(case: dict) -> None:
    key = FakeDataKey(
        bytes.fromhex(case["data_key"]), bytes.fromhex(case["wrapped_key"]), case["key_version"]
    )
    plaintext, ciphertext = bytes.fromhex(case["plaintext"]), bytes.fromhex(case["ciphertext"])
    out = io.BytesIO()
    info = stream._encrypt_with(
        key,
        io.BytesIO(plaintext),
        out,
        context=case["context"],
        segment_size=case["segment_size"],
        salt=bytes.fromhex(case["salt"]),
        nonce_prefix=bytes.fromhex(case["nonce_prefix"]),
    )
    assert out.getvalue() == ciphertext
    assert stream._encode_context(case["context"]).hex() == case["canonical_context"]
    source = FixedKeySource(key.plaintext, key.encrypted)
    assert open_(source, ciphertext, context=case["context"]) == plaintext
    assert info.segment_count == case["segment_count"]


@pytest.mark.parametrize("case", _vectors()["invalid"], ids=lambda c: c["name"])
def test_invalid_vector(case: dict) -> None:
    source = FixedKeySource(bytes.fromhex(case["data_key"]))
    assert_rejected(source, bytes.fromhex(case["ciphertext"]), context=case["context"])


def test_vectors_file_is_what_the_generator_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_stream_vectors", VECTORS.with_name("make_stream_vectors.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert module.build() == _vectors()


# --- constant memory ------------------------------------------------------------------------------

_MEMORY_CHILD = r"""
import hashlib, io, json, os, re, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from keysvc_client.stream import decrypt_stream, encrypt_stream

SIZE, PATH = int(sys.argv[1]), sys.argv[2]
KEY = bytes(range(32))

class Key:
    plaintext, encrypted, key_version = KEY, b"wrapped", 1

class Source:
    def generate_data_key(self, key, *, context=None):
        return Key()
    def decrypt_data_key(self, encrypted, *, context=None):
        return KEY

class Generated(io.RawIOBase):
    # SIZE bytes of AES-CTR keystream under a fixed seed, hashed as they are handed out
    def __init__(self):
        self.left, self.digest = SIZE, hashlib.sha256()
        self.ctr = Cipher(algorithms.AES(b"seed" * 8), modes.CTR(bytes(16))).encryptor()
        self.zeros = memoryview(bytes(1 << 16))
    def readable(self):
        return True
    def readinto(self, buf):
        n = min(len(buf), self.left, len(self.zeros))
        chunk = self.ctr.update(self.zeros[:n])
        buf[:n] = chunk
        self.digest.update(chunk)
        self.left -= n
        return n

class HashSink(io.RawIOBase):
    def __init__(self):
        self.digest, self.size = hashlib.sha256(), 0
    def writable(self):
        return True
    def write(self, b):
        self.digest.update(b)
        self.size += len(b)
        return len(b)

def peak_kib():
    # VmHWM: this process's peak RSS (ru_maxrss would include the parent's, inherited across exec)
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1))

baseline = peak_kib()
src = Generated()
with open(PATH, "wb") as dst:
    info = encrypt_stream(Source(), "recordings", src, dst, context={"call_id": "big"})
sink = HashSink()
with open(PATH, "rb") as f:
    back = decrypt_stream(Source(), f, sink, context={"call_id": "big"})
os.unlink(PATH)
print(json.dumps({
    "ok": sink.digest.digest() == src.digest.digest() and sink.size == SIZE and back == info,
    "segments": info.segment_count,
    "baseline_kib": baseline,
    "peak_kib": peak_kib(),
}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc (Linux)")
def test_200_mb_round_trip_in_constant_memory(tmp_path: Path) -> None:
    size = 200 * 1000 * 1000
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(size), str(tmp_path / "big.ksvs")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["ok"], report
    assert report["segments"] == size // stream.DEFAULT_SEGMENT_SIZE + 1
    assert report["peak_kib"] < 64 * 1024, report
    assert report["peak_kib"] - report["baseline_kib"] < 16 * 1024, report
