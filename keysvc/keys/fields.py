"""Envelope field encryption on top of the keyring: encrypt, decrypt, rewrap, data keys.

Batches return one result per item in input order; an item that fails yields the
domain error instance in its place, so one bad item never fails the others. Items
that share one context *object* have it encoded once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keysvc.crypto import envelope
from keysvc.crypto.context import encode_context
from keysvc.crypto.envelope import Kind
from keysvc.errors import DecryptionFailed, InvalidArgument, KeysvcError
from keysvc.keys.faults import checkpoint
from keysvc.keys.keyring import Keyring
from keysvc.store.models import Purpose

Context = Mapping[str, str] | None


class Sealed(NamedTuple):
    ciphertext: bytes
    key_version: int


class Opened(NamedTuple):
    plaintext: bytes
    key_version: int

    def __repr__(self) -> str:
        return f"Opened(<{len(self.plaintext)} bytes>, key_version={self.key_version})"


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes = field(repr=False)
    encrypted: bytes
    key_version: int


class FieldCrypto:
    """The Crypto service's domain logic."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def encrypt(
        self, key: str, items: Sequence[tuple[bytes, Context]], kind: Kind = Kind.FIELD
    ) -> list[Sealed]:
        """Encrypt every item under the key's primary version (key-level errors raise)."""
        out: list[Sealed] = []
        start = 0
        for alloc in self._keyring.allocate(key, Purpose.ENCRYPT, len(items)):
            header = envelope.encode_header(kind, key, alloc.version)
            chunk = items[start : start + alloc.count]
            version = alloc.version
            out += [Sealed(ct, version) for ct in envelope.seal_many(alloc.dek.aead, header, chunk)]
            start += alloc.count
        return out

    def decrypt(
        self, items: Sequence[tuple[bytes, Context]], kind: Kind = Kind.FIELD
    ) -> list[Opened | KeysvcError]:
        """Decrypt each item with the key and version its header names."""
        return [
            o if isinstance(o, KeysvcError) else Opened(o[1], o[0].key_version)
            for o in self._open_batch(items, kind)
        ]

    def _open_batch(
        self, items: Sequence[tuple[bytes, Context]], kind: Kind
    ) -> list[tuple[envelope.Header, bytes] | KeysvcError]:
        """(header, plaintext) or the error, per item in order.

        Items sharing a header (same kind, key and version) resolve their key version once
        per batch (state checks included), and items sharing one context object have it
        encoded once.
        """
        out: list[tuple[envelope.Header, bytes] | KeysvcError] = []
        openers: dict[bytes, tuple[envelope.Header, AESGCM] | KeysvcError] = {}
        encoded: dict[int, bytes] = {}
        aads: dict[tuple[bytes, int], bytes] = {}
        nonce_size, minimum = envelope.NONCE_SIZE, envelope.NONCE_SIZE + envelope.TAG_SIZE
        for ciphertext, context in items:
            if len(ciphertext) < 3:
                out.append(DecryptionFailed())
                continue
            start = 7 + ciphertext[2]
            if len(ciphertext) < start + minimum:  # before the opener: its verdict is cached per header
                out.append(DecryptionFailed())
                continue
            raw = ciphertext[:start]
            opener = openers.get(raw)
            if opener is None:
                opener = openers[raw] = self._opener(ciphertext, kind)
            if isinstance(opener, KeysvcError):
                out.append(opener)
                continue
            aad = aads.get((raw, id(context)))
            if aad is None:
                encoded_context = encoded.get(id(context))
                if encoded_context is None:
                    encoded_context = encoded[id(context)] = encode_context(context)
                aad = aads[(raw, id(context))] = raw + encoded_context
            try:
                plaintext = opener[1].decrypt(
                    ciphertext[start : start + nonce_size], ciphertext[start + nonce_size :], aad
                )
            except InvalidTag:
                out.append(DecryptionFailed())
                continue
            out.append((opener[0], plaintext))
        return out

    def _opener(self, ciphertext: bytes, kind: Kind) -> tuple[envelope.Header, AESGCM] | KeysvcError:
        """The parsed header and AEAD for a ciphertext's key version, or the error for it."""
        try:
            header = envelope.parse_header(ciphertext)
            if header.kind is not kind:
                raise DecryptionFailed()
            dek = self._keyring.decrypting(header.key_name, header.key_version, Purpose.ENCRYPT)
        except KeysvcError as exc:
            return exc
        return header, dek.aead

    def rewrap(self, items: Sequence[tuple[bytes, Context]]) -> list[Sealed | KeysvcError]:
        """Re-encrypt ciphertexts under their key's primary version (already-current ones too)."""
        results: list[Sealed | KeysvcError | None] = [None] * len(items)
        pending: dict[str, list[tuple[int, bytes, Context]]] = {}
        for i, opened in enumerate(self._open_batch(items, Kind.FIELD)):
            if isinstance(opened, KeysvcError):
                results[i] = opened
            else:
                pending.setdefault(opened[0].key_name, []).append((i, opened[1], items[i][1]))
        for key, batch in pending.items():
            try:
                sealed: Sequence[Sealed | KeysvcError] = self.encrypt(key, [(p, c) for _, p, c in batch])
            except KeysvcError as exc:
                sealed = [exc] * len(batch)
            for (i, _, _), result in zip(batch, sealed, strict=True):
                results[i] = result
        checkpoint("rewrap.sealed")
        return [r for r in results if r is not None]

    def generate_data_keys(self, key: str, contexts: Sequence[Context], bits: int = 256) -> list[DataKey]:
        """Fresh data keys, each returned in plaintext and encrypted under the key."""
        if bits not in (128, 256):
            raise InvalidArgument("bits must be 128 or 256")
        plaintexts = [os.urandom(bits // 8) for _ in contexts]
        sealed = self.encrypt(key, list(zip(plaintexts, contexts, strict=True)), kind=Kind.DATA_KEY)
        return [DataKey(p, s.ciphertext, s.key_version) for p, s in zip(plaintexts, sealed, strict=True)]

    def decrypt_data_keys(self, items: Sequence[tuple[bytes, Context]]) -> list[Opened | KeysvcError]:
        return self.decrypt(items, kind=Kind.DATA_KEY)
