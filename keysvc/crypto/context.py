"""Canonical encoding of an encryption context (a string map) for use as AAD.

Wire format (big-endian): ``u32 count`` then, for each pair sorted by the key's UTF-8
bytes, ``u32 len(key) || key || u32 len(value) || value``. Two maps encode equally
exactly when they are equal, so the encoding is safe to authenticate.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_U32 = struct.Struct(">I")
EMPTY = _U32.pack(0)


def encode_context(context: Mapping[str, str] | None) -> bytes:
    """Return the canonical bytes of ``context`` (``EMPTY`` for None or {})."""
    if not context:
        return EMPTY
    # Iterating keys and indexing is much faster than .items() on protobuf maps.
    pairs = sorted((k.encode(), context[k].encode()) for k in context)
    parts = [_U32.pack(len(pairs))]
    for key, value in pairs:
        parts += [_U32.pack(len(key)), key, _U32.pack(len(value)), value]
    return b"".join(parts)


def dek_binding(key_name: str, version: int, purpose: str) -> bytes:
    """The binding a wrapped DEK is authenticated under (PCI DSS 3.7.7: no substitution)."""
    return b"keysvc-dek-v1" + encode_context({"key": key_name, "version": str(version), "purpose": purpose})
