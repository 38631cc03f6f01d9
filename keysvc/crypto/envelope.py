"""Self-describing AES-256-GCM ciphertexts under a key version's data key (DEK).

Wire format v1 (integers big-endian)::

    offset  size  field
    0       1     format version, 0x01
    1       1     kind: 0x01 field ciphertext, 0x02 encrypted data key
    2       1     n = length of the key name (1..255)
    3       n     key name, UTF-8
    3+n     4     key version, uint32
    7+n     12    nonce (random)
    19+n    ...   AES-256-GCM ciphertext || 16-byte tag

The AAD is ``header || encode_context(context)`` where the header is bytes
``[0, 7+n)``: the format, kind, key and version are authenticated, and the caller's
context is bound without being stored. Every failure to open a ciphertext raises the
one opaque :class:`keysvc.errors.DecryptionFailed`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keysvc.crypto.context import encode_context
from keysvc.errors import DecryptionFailed

FORMAT_V1 = 1
NONCE_SIZE = 12
TAG_SIZE = 16
_VERSION = struct.Struct(">I")


class Kind(IntEnum):
    """What a ciphertext holds; Decrypt and DecryptDataKey each accept only their own kind."""

    FIELD = 1
    DATA_KEY = 2


@dataclass(frozen=True)
class Header:
    """The parsed, not yet authenticated, header of a ciphertext."""

    kind: Kind
    key_name: str
    key_version: int
    raw: bytes


def encode_header(kind: Kind, key_name: str, key_version: int) -> bytes:
    """Header bytes for ``key_name`` at ``key_version`` (ValueError for a bad name)."""
    name = key_name.encode()
    if not 1 <= len(name) <= 255:
        raise ValueError("key name must be 1..255 bytes")
    return bytes((FORMAT_V1, kind, len(name))) + name + _VERSION.pack(key_version)


def parse_header(ciphertext: bytes) -> Header:
    """Read the header; DecryptionFailed if it is malformed or the body is too short."""
    if len(ciphertext) < 3 or ciphertext[0] != FORMAT_V1 or ciphertext[1] not in (1, 2):
        raise DecryptionFailed()
    end = 3 + ciphertext[2] + 4
    if ciphertext[2] == 0 or len(ciphertext) < end + NONCE_SIZE + TAG_SIZE:
        raise DecryptionFailed()
    try:
        name = ciphertext[3 : end - 4].decode()
    except UnicodeDecodeError:
        raise DecryptionFailed() from None
    (version,) = _VERSION.unpack_from(ciphertext, end - 4)
    return Header(Kind(ciphertext[1]), name, version, ciphertext[:end])


def seal(
    aead: AESGCM,
    header: bytes,
    plaintext: bytes,
    context: Mapping[str, str] | None,
    nonce: bytes | None = None,
) -> bytes:
    """Encrypt one value. ``nonce`` is a seam for test vectors; leave it None."""
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    return header + nonce + aead.encrypt(nonce, plaintext, header + encode_context(context))


def seal_many(
    aead: AESGCM, header: bytes, items: Sequence[tuple[bytes, Mapping[str, str] | None]]
) -> list[bytes]:
    """Encrypt many values under one key version: one call for all nonces, and each
    distinct context *object* encoded once (pass the same mapping to share it)."""
    random = os.urandom(NONCE_SIZE * len(items))
    nonces = [random[i : i + NONCE_SIZE] for i in range(0, len(random), NONCE_SIZE)]
    aads: dict[int, bytes] = {}
    encrypt = aead.encrypt
    out = []
    for nonce, (plaintext, context) in zip(nonces, items, strict=True):
        aad = aads.get(id(context))
        if aad is None:
            aad = aads[id(context)] = header + encode_context(context)
        out.append(header + nonce + encrypt(nonce, plaintext, aad))
    return out


def open_sealed(aead: AESGCM, header: Header, ciphertext: bytes, encoded_context: bytes) -> bytes:
    """Decrypt a ciphertext whose header was parsed by :func:`parse_header`.

    ``encoded_context`` is ``encode_context(context)`` (callers decrypting many items
    under one context encode it once).
    """
    start = len(header.raw)
    nonce = ciphertext[start : start + NONCE_SIZE]
    try:
        return aead.decrypt(nonce, ciphertext[start + NONCE_SIZE :], header.raw + encoded_context)
    except InvalidTag:
        raise DecryptionFailed() from None
