"""Streaming encryption of large files (call recordings) under a keysvc data key.

The construction is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
authenticated-encryption and its nonce-reuse misuse-resistance", CRYPTO 2015) as used by
Tink's AES-GCM-HKDF streaming AEAD: a fresh data key per stream, a per-stream segment
key derived with HKDF-SHA256, and AES-256-GCM segments whose nonce carries the segment
counter and a last-segment flag. Memory use is constant (two segment buffers).

Wire format v1 (integers unsigned big-endian; ``n`` = wrapped data key length)::

    offset  size  field
    0       4     magic "KSVS" (4b 53 56 53)
    4       1     format version, 0x01
    5       4     segment size S: plaintext bytes per segment, 16..16 MiB
    9       2     n, 1..4096
    11      n     wrapped data key, as returned by GenerateDataKey (names key and version)
    11+n    4     key version (informational, authenticated)
    15+n    32    salt, random
    47+n    7     nonce prefix, random
    54+n    32    header tag, HMAC-SHA256(K_hdr, H || C)
    86+n    ...   segments 0..m-1: AES-256-GCM(K_seg, nonce_i, plaintext_i, H || C) || tag(16)

Every segment but the last holds exactly S plaintext bytes (S + 16 on the wire); the last
holds 0..S-1 (16..S+15 on the wire), so an empty input is one empty last segment and a
length that is a multiple of S ends with an empty last segment. At most 2^32 segments.

Derived values::

    H = SHA-256(header bytes [0, 54+n))             the header without its tag
    C = SHA-256(canonical context)                  see below
    K_seg || K_hdr = HKDF-SHA256(IKM=data key, salt=salt, info="keysvc-stream-v1" || H, L=64)
    nonce_i = nonce prefix (7) || uint32(i) || 0x01 if segment i is the last else 0x00

The canonical context is ``u32 count`` then, for each pair sorted by the key's UTF-8
bytes, ``u32 len(key) || key || u32 len(value) || value`` (the encoding keysvc uses for
every encryption context). The context is not stored: the decryptor passes it again.
It is also passed to the data-key calls, so the service binds it to the wrapped key.

The data key is used only as HKDF input; each stream gets its own segment key (fresh
data key, random 256-bit salt), so the GCM nonces are deterministic counters and no key
ever sees more than 2^32 encryptions. The header tag authenticates the header and the
context, and commits to the data key, before any segment is read; a header edit, a wrong
context or a wrong data key fails there. Per segment the counter stops reordering,
dropping and replay, the last flag stops truncation and extension, and H (through K_seg
and the AAD) stops splicing segments between streams, even streams under the same data key.

Every failure of the stream to authenticate raises :class:`StreamDecryptionError` (the
client's, a ``DecryptionError``) with one fixed message.
``decrypt_stream`` writes each segment only after it has been authenticated; when it
raises, ``dst`` may hold the plaintext of the segments before the failure (each
authentic and in order) but never the final segment, and no :class:`StreamInfo` is
returned, so the stream was not reported complete. ``decrypt_file`` and ``encrypt_file``
write to a temporary file and rename it only on success. Errors raised by the
:class:`DataKeySource` (service unavailable, permission denied, key version destroyed,
a rejected wrapped key or context) propagate unchanged.

Sources must be blocking binary files; ``dst.write`` must consume all the bytes it is
given before returning (as buffered files and ``io.BytesIO`` do), because buffers are reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keysvc_client._errors import StreamDecryptionError

__all__ = [
    "DATA_KEY_SIZE",
    "DEFAULT_SEGMENT_SIZE",
    "FORMAT_VERSION",
    "HEADER_TAG_SIZE",
    "MAGIC",
    "MAX_SEGMENTS",
    "MAX_SEGMENT_SIZE",
    "MAX_WRAPPED_KEY_SIZE",
    "MIN_SEGMENT_SIZE",
    "NONCE_PREFIX_SIZE",
    "SALT_SIZE",
    "TAG_SIZE",
    "DataKeyLike",
    "DataKeySource",
    "EncryptedStreamReader",
    "StreamDecryptionError",
    "StreamInfo",
    "decrypt_file",
    "decrypt_stream",
    "encrypt_file",
    "encrypt_stream",
    "open_encrypted",
]

MAGIC = b"KSVS"
FORMAT_VERSION = 1
DEFAULT_SEGMENT_SIZE = 1 << 20  # Tink's large template; bigger segments are no faster
MIN_SEGMENT_SIZE = 16  # below this the 16-byte tag outweighs the data
MAX_SEGMENT_SIZE = 1 << 24  # bounds decrypt's two buffers (32 MiB) whatever a header says
MAX_SEGMENTS = 1 << 32  # the nonce's 32-bit counter; so at most 2^32 * S - 1 plaintext bytes
MAX_WRAPPED_KEY_SIZE = 4096  # as Tink's KmsEnvelopeAead; keysvc's wrapped keys are < 330 bytes

DATA_KEY_SIZE = 32
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
HEADER_TAG_SIZE = 32
TAG_SIZE = 16
_KDF_LABEL = b"keysvc-stream-v1"
_FAILED = "stream decryption failed"  # the one message, so that failures are no oracle

_PREFIX = struct.Struct(">4sBIH")  # magic, version, segment size, wrapped key length
_SUFFIX_SIZE = 4 + SALT_SIZE + NONCE_PREFIX_SIZE + HEADER_TAG_SIZE  # after the wrapped key
_U32 = struct.Struct(">I")
_COUNTER = struct.Struct(">IB")

StrPath = str | os.PathLike[str]


class DataKeyLike(Protocol):
    """A data key from the service: the plaintext key and its wrapped form."""

    @property
    def plaintext(self) -> bytes:
        """The 32-byte AES key."""
        ...

    @property
    def encrypted(self) -> bytes:
        """The wrapped key, opaque; it names the key and version."""
        ...

    @property
    def key_version(self) -> int:
        """The version of the key that wrapped it."""
        ...


class DataKeySource(Protocol):
    """Anything that can generate and unwrap data keys, e.g. ``KeyServiceClient``."""

    def generate_data_key(self, key: str, *, context: Mapping[str, str] | None = None) -> DataKeyLike:
        """Return a fresh data key wrapped under the current version of ``key``."""
        ...

    def decrypt_data_key(self, encrypted: bytes, *, context: Mapping[str, str] | None = None) -> bytes:
        """Return the plaintext of a wrapped data key."""
        ...


@dataclass(frozen=True)
class StreamInfo:
    """What was encrypted or decrypted (or what an opened stream holds)."""

    key_version: int
    segment_size: int
    segment_count: int
    plaintext_size: int
    ciphertext_size: int


@dataclass(frozen=True)
class _Header:
    segment_size: int
    wrapped_key: bytes
    key_version: int
    salt: bytes
    nonce_prefix: bytes

    def body(self) -> bytes:
        """Return the header bytes without the tag."""
        return b"".join(
            (
                _PREFIX.pack(MAGIC, FORMAT_VERSION, self.segment_size, len(self.wrapped_key)),
                self.wrapped_key,
                _U32.pack(self.key_version),
                self.salt,
                self.nonce_prefix,
            )
        )


def _encode_context(context: Mapping[str, str] | None) -> bytes:
    pairs = []
    for name, value in (context or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("context keys and values must be str")
        pairs.append((name.encode(), value.encode()))
    pairs.sort()
    parts = [_U32.pack(len(pairs))]
    for name_bytes, value_bytes in pairs:
        parts += [_U32.pack(len(name_bytes)), name_bytes, _U32.pack(len(value_bytes)), value_bytes]
    return b"".join(parts)


class _SegmentCipher:
    """The per-stream keys: seals and opens segments, computes the header tag."""

    def __init__(self, data_key: bytes, header: _Header, context_bytes: bytes) -> None:
        header_digest = hashlib.sha256(header.body()).digest()
        okm = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=header.salt, info=_KDF_LABEL + header_digest
        ).derive(data_key)
        self._aead = AESGCM(okm[:32])
        self._aad = header_digest + hashlib.sha256(context_bytes).digest()
        self._prefix = header.nonce_prefix
        self.header_tag = hmac.digest(okm[32:], self._aad, "sha256")

    def seal_into(self, index: int, last: bool, plaintext: memoryview, out: memoryview) -> None:
        self._aead.encrypt_into(self._prefix + _COUNTER.pack(index, last), plaintext, self._aad, out)

    def open_into(self, index: int, last: bool, sealed: memoryview, out: memoryview) -> None:
        try:
            self._aead.decrypt_into(self._prefix + _COUNTER.pack(index, last), sealed, self._aad, out)
        except InvalidTag:
            raise StreamDecryptionError(_FAILED) from None


def _read_full(src: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``src`` until it is full or at end of file; return the byte count."""
    size = len(buf)
    got = 0
    if isinstance(src, (io.RawIOBase, io.BufferedIOBase)):
        while got < size:
            n = src.readinto(buf[got:])
            if not n:
                break
            got += n
    else:
        while got < size:
            chunk = src.read(size - got)
            if not chunk:
                break
            buf[got : got + len(chunk)] = chunk
            got += len(chunk)
    return got


def _read_exact(src: BinaryIO, size: int) -> bytes:
    buf = bytearray(size)
    if _read_full(src, memoryview(buf)) != size:
        raise StreamDecryptionError(_FAILED)
    return bytes(buf)


def _read_header(src: BinaryIO) -> tuple[_Header, bytes]:
    """Parse and bound-check a header (not yet authenticated); return it and its tag."""
    magic, version, segment_size, wrapped_len = _PREFIX.unpack(_read_exact(src, _PREFIX.size))
    if (
        magic != MAGIC
        or version != FORMAT_VERSION
        or not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE
        or not 1 <= wrapped_len <= MAX_WRAPPED_KEY_SIZE
    ):
        raise StreamDecryptionError(_FAILED)
    rest = _read_exact(src, wrapped_len + _SUFFIX_SIZE)
    (key_version,) = _U32.unpack_from(rest, wrapped_len)
    salt_at = wrapped_len + 4
    prefix_at = salt_at + SALT_SIZE
    header = _Header(
        segment_size=segment_size,
        wrapped_key=rest[:wrapped_len],
        key_version=key_version,
        salt=rest[salt_at:prefix_at],
        nonce_prefix=rest[prefix_at : prefix_at + NONCE_PREFIX_SIZE],
    )
    return header, rest[prefix_at + NONCE_PREFIX_SIZE :]


def _header_size(header: _Header) -> int:
    return _PREFIX.size + len(header.wrapped_key) + _SUFFIX_SIZE


def _unlock(
    source: DataKeySource, header: _Header, tag: bytes, context: Mapping[str, str] | None
) -> _SegmentCipher:
    """Unwrap the data key and verify the header tag."""
    context_bytes = _encode_context(context)
    data_key = source.decrypt_data_key(header.wrapped_key, context=context)
    if len(data_key) != DATA_KEY_SIZE:
        raise StreamDecryptionError(_FAILED)
    cipher = _SegmentCipher(data_key, header, context_bytes)
    if not hmac.compare_digest(cipher.header_tag, tag):
        raise StreamDecryptionError(_FAILED)
    return cipher


def _check_segment_size(segment_size: int) -> None:
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment_size must be {MIN_SEGMENT_SIZE}..{MAX_SEGMENT_SIZE} bytes")


def _encrypt_with(
    data_key: DataKeyLike,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    context: Mapping[str, str] | None,
    segment_size: int,
    salt: bytes,
    nonce_prefix: bytes,
) -> StreamInfo:
    """Encrypt with a given data key, salt and nonce prefix (the seam for test vectors)."""
    _check_segment_size(segment_size)
    if len(data_key.plaintext) != DATA_KEY_SIZE:
        raise ValueError("data key must be 32 bytes")
    if not 1 <= len(data_key.encrypted) <= MAX_WRAPPED_KEY_SIZE:
        raise ValueError(f"wrapped data key must be 1..{MAX_WRAPPED_KEY_SIZE} bytes")
    if not 0 <= data_key.key_version < 1 << 32:
        raise ValueError("key version must fit in 32 bits")
    if len(salt) != SALT_SIZE or len(nonce_prefix) != NONCE_PREFIX_SIZE:
        raise ValueError("bad salt or nonce prefix size")
    header = _Header(segment_size, data_key.encrypted, data_key.key_version, salt, nonce_prefix)
    cipher = _SegmentCipher(data_key.plaintext, header, _encode_context(context))
    dst.write(header.body() + cipher.header_tag)

    plain, sealed = memoryview(bytearray(segment_size)), memoryview(bytearray(segment_size + TAG_SIZE))
    index = plaintext_size = 0
    while True:
        n = _read_full(src, plain)
        last = n < segment_size
        if not last and index == MAX_SEGMENTS - 1:
            raise ValueError("input too long for this segment size (2^32 segments)")
        cipher.seal_into(index, last, plain[:n], sealed[: n + TAG_SIZE])
        dst.write(sealed[: n + TAG_SIZE])
        plaintext_size += n
        index += 1
        if last:
            break
    return StreamInfo(
        key_version=header.key_version,
        segment_size=segment_size,
        segment_count=index,
        plaintext_size=plaintext_size,
        ciphertext_size=_header_size(header) + plaintext_size + index * TAG_SIZE,
    )


def encrypt_stream(
    source: DataKeySource,
    key: str,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    context: Mapping[str, str] | None = None,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> StreamInfo:
    """Encrypt ``src`` to ``dst`` under a fresh data key of ``key``, one segment at a time.

    Args:
        source: Where data keys come from (the keysvc client).
        key: Logical key name; the current version wraps the new data key.
        src: Binary input, read to end of file.
        dst: Binary output; receives the header, then each segment.
        context: Encryption context bound to the stream and the wrapped key; the
            same context must be given to decrypt.
        segment_size: Plaintext bytes per segment, ``MIN_SEGMENT_SIZE..MAX_SEGMENT_SIZE``.

    Returns:
        The key version and sizes written.

    Raises:
        ValueError: Bad segment size, a malformed data key from ``source``, or more than
            ``MAX_SEGMENTS`` segments of input.
        TypeError: A context key or value is not a str.
    """
    _check_segment_size(segment_size)
    _encode_context(context)
    data_key = source.generate_data_key(key, context=context)
    return _encrypt_with(
        data_key,
        src,
        dst,
        context=context,
        segment_size=segment_size,
        salt=os.urandom(SALT_SIZE),
        nonce_prefix=os.urandom(NONCE_PREFIX_SIZE),
    )


def decrypt_stream(
    source: DataKeySource, src: BinaryIO, dst: BinaryIO, *, context: Mapping[str, str] | None = None
) -> StreamInfo:
    """Decrypt a stream from ``src`` to ``dst``, writing each segment once authenticated.

    Args:
        source: Unwraps the data key named in the header.
        src: The encrypted stream, read to end of file.
        dst: Binary output for the plaintext.
        context: The encryption context given at encryption.

    Returns:
        The key version and sizes; returned only once the last segment is authenticated.

    Raises:
        StreamDecryptionError: Malformed, truncated, extended, reordered or tampered
            input, or the wrong context or data key. ``dst`` may then hold the authentic
            plaintext of the segments before the failing one, never the final segment.
    """
    header, tag = _read_header(src)
    cipher = _unlock(source, header, tag, context)
    segment_size = header.segment_size
    sealed, plain = memoryview(bytearray(segment_size + TAG_SIZE)), memoryview(bytearray(segment_size))
    index = plaintext_size = 0
    while True:
        n = _read_full(src, sealed)
        if n < TAG_SIZE or index >= MAX_SEGMENTS:
            raise StreamDecryptionError(_FAILED)
        last = n < segment_size + TAG_SIZE
        cipher.open_into(index, last, sealed[:n], plain[: n - TAG_SIZE])
        dst.write(plain[: n - TAG_SIZE])
        plaintext_size += n - TAG_SIZE
        index += 1
        if last:
            break
    return StreamInfo(
        key_version=header.key_version,
        segment_size=segment_size,
        segment_count=index,
        plaintext_size=plaintext_size,
        ciphertext_size=_header_size(header) + plaintext_size + index * TAG_SIZE,
    )


@contextlib.contextmanager
def _replace_on_success(out_path: StrPath) -> Iterator[BinaryIO]:
    """Yield a temporary file (mode 0600) beside ``out_path``; fsync and rename it on success."""
    directory = os.path.dirname(os.path.abspath(out_path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".keysvc-stream-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_path, out_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def encrypt_file(
    source: DataKeySource,
    key: str,
    in_path: StrPath,
    out_path: StrPath,
    *,
    context: Mapping[str, str] | None = None,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> StreamInfo:
    """Encrypt the file ``in_path`` to ``out_path``, which appears only when complete.

    Args and Raises are as for :func:`encrypt_stream`, plus ``OSError`` from the files.
    The output is written to a temporary file in the same directory, fsynced, then
    renamed over ``out_path`` (mode 0600), so it is durable once this returns.

    Returns:
        The key version and sizes written.
    """
    with open(in_path, "rb") as src, _replace_on_success(out_path) as dst:
        return encrypt_stream(source, key, src, dst, context=context, segment_size=segment_size)


def decrypt_file(
    source: DataKeySource, in_path: StrPath, out_path: StrPath, *, context: Mapping[str, str] | None = None
) -> StreamInfo:
    """Decrypt the file ``in_path`` to ``out_path``, which appears only if all of it is authentic.

    Args and Raises are as for :func:`decrypt_stream`, plus ``OSError`` from the files.
    On any failure no output file is left behind.

    Returns:
        The key version and sizes.
    """
    with open(in_path, "rb") as src, _replace_on_success(out_path) as dst:
        return decrypt_stream(source, src, dst, context=context)


class EncryptedStreamReader:
    """Random access to the plaintext of an encrypted stream in a seekable file.

    Made by :func:`open_encrypted`. Each read authenticates the segments it touches; the
    most recently read segment is kept decrypted, so sequential small reads (playback)
    decrypt each segment once. Not thread-safe: use one reader per thread.
    """

    def __init__(
        self,
        source: DataKeySource,
        file: BinaryIO,
        context: Mapping[str, str] | None,
        close_file: bool,
    ) -> None:
        self._file = file
        self._close_file = close_file
        base = file.tell()
        header, tag = _read_header(file)
        self._cipher = _unlock(source, header, tag, context)
        size = self._segment_size = header.segment_size
        self._body_at = base + _header_size(header)
        full, last_sealed = divmod(file.seek(0, io.SEEK_END) - self._body_at, size + TAG_SIZE)
        if last_sealed < TAG_SIZE or full >= MAX_SEGMENTS:
            raise StreamDecryptionError(_FAILED)
        self._count = full + 1
        self._size = full * size + last_sealed - TAG_SIZE
        self._info = StreamInfo(
            key_version=header.key_version,
            segment_size=size,
            segment_count=self._count,
            plaintext_size=self._size,
            ciphertext_size=self._body_at - base + self._size + self._count * TAG_SIZE,
        )
        self._sealed = memoryview(bytearray(size + TAG_SIZE))
        self._plain = memoryview(bytearray(size))
        self._cached = -1
        self._segment(self._count - 1)  # authenticates the total length

    @property
    def info(self) -> StreamInfo:
        """Key version, segment size and count, plaintext and ciphertext sizes."""
        return self._info

    def _segment(self, index: int) -> memoryview:
        """Return the authenticated plaintext of segment ``index`` (a view of a reused buffer)."""
        last = index == self._count - 1
        length = self._size - index * self._segment_size if last else self._segment_size
        if index != self._cached:
            self._cached = -1
            self._file.seek(self._body_at + index * (self._segment_size + TAG_SIZE))
            sealed = self._sealed[: length + TAG_SIZE]
            if _read_full(self._file, sealed) != len(sealed):
                raise StreamDecryptionError(_FAILED)
            self._cipher.open_into(index, last, sealed, self._plain[:length])
            self._cached = index
        return self._plain[:length]

    def read_segment(self, index: int) -> bytes:
        """Return the plaintext of segment ``index``.

        Raises:
            IndexError: ``index`` is outside ``0..segment_count-1``.
            StreamDecryptionError: The segment is not authentic.
        """
        if not 0 <= index < self._count:
            raise IndexError("segment index out of range")
        return bytes(self._segment(index))

    def read_range(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` plaintext bytes from ``offset`` (fewer at end of stream).

        Raises:
            ValueError: ``offset`` or ``length`` is negative.
            StreamDecryptionError: A segment in the range is not authentic.
        """
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        end = min(offset + length, self._size)
        out = bytearray()
        while offset < end:
            index, start = divmod(offset, self._segment_size)
            piece = self._segment(index)[start : start + end - offset]
            out += piece
            offset += len(piece)
        return bytes(out)

    def close(self) -> None:
        """Close the file if the reader opened it."""
        if self._close_file:
            self._file.close()

    def __enter__(self) -> EncryptedStreamReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_encrypted(
    source: DataKeySource, src_file: BinaryIO | StrPath, context: Mapping[str, str] | None = None
) -> EncryptedStreamReader:
    """Open an encrypted stream for random access (e.g. to play a time range).

    Unwraps the data key, verifies the header and authenticates the last segment, so
    the reported sizes are authentic; other segments are authenticated as they are read.

    Args:
        source: Unwraps the data key named in the header.
        src_file: A path, or a seekable binary file positioned at the start of the stream
            (the stream runs to end of file; the caller keeps ownership of the file).
        context: The encryption context given at encryption.

    Returns:
        A reader with ``read_segment(i)``, ``read_range(offset, length)`` and ``info``;
        a context manager that closes the file if it opened it.

    Raises:
        StreamDecryptionError: Malformed, truncated or tampered stream, or the wrong
            context or data key.
    """
    if isinstance(src_file, (str, os.PathLike)):
        file = open(src_file, "rb")  # noqa: SIM115 - owned by the reader
        try:
            return EncryptedStreamReader(source, file, context, close_file=True)
        except BaseException:
            file.close()
            raise
    return EncryptedStreamReader(source, src_file, context, close_file=False)
