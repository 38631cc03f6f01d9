"""The token vault: random tokens with no relation to the value, stored with the value encrypted.

Each stored value is an envelope ciphertext (docs/FORMATS.md) under a version of the
token key, with the context ``{"token": <token>}`` so a stored ciphertext cannot be moved
to another token. Convergent keys (option ``convergent=true``) also store a keyed-HMAC
fingerprint of the value, so the same value gets the same token within a key; the HMAC
key is derived with HKDF from the key's version-1 DEK (which must not be destroyed while
convergent tokens are issued). Options: ``convergent`` (default false), ``ttl_seconds``
(default expiry for new tokens; 0 = never).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keysvc.crypto import envelope
from keysvc.crypto.context import encode_context
from keysvc.errors import InvalidArgument, KeysvcError, NotFound
from keysvc.keys.keyring import Keyring
from keysvc.store.base import Store
from keysvc.store.models import KeyRecord, Purpose, TokenRecord
from keysvc.tokens.formats import TokenFormat
from keysvc.tokens.types import Issued, TokenizeInput

VAULT_OPTIONS = ("convergent", "ttl_seconds")
_COLLISION_ROUNDS = 5


@dataclass(frozen=True)
class VaultOptions:
    convergent: bool = False
    ttl_seconds: int = 0


class TokenVault:
    """Issues and resolves vaulted tokens through the store."""

    def __init__(
        self,
        keyring: Keyring,
        store: Store,
        clock: Callable[[], float] = time.time,
        rand: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._keyring = keyring
        self._store = store
        self._clock = clock
        self._rand = rand
        self._index_keys: dict[str, bytes] = {}

    @staticmethod
    def options(options: Mapping[str, str]) -> VaultOptions:
        convergent = options.get("convergent", "false").lower()
        if convergent not in ("true", "false"):
            raise InvalidArgument("convergent must be true or false")
        ttl = options.get("ttl_seconds", "0")
        if not ttl.isdigit():
            raise InvalidArgument("ttl_seconds must be a whole number of seconds")
        return VaultOptions(convergent == "true", int(ttl))

    def _index_key(self, record: KeyRecord) -> bytes:
        key = self._index_keys.get(record.name)
        if key is None:
            dek = self._keyring.dek(record, 1).dek
            key = HKDF(hashes.SHA256(), 32, salt=None, info=b"keysvc-token-index-v1").derive(dek)
            self._index_keys[record.name] = key
        return key

    def _fingerprint(self, record: KeyRecord, value: str) -> bytes:
        return hmac.new(self._index_key(record), value.encode(), hashlib.sha256).digest()

    def tokenize(
        self, record: KeyRecord, fmt: TokenFormat, items: Sequence[TokenizeInput]
    ) -> list[Issued | KeysvcError]:
        opts = self.options(record.format_options)
        now = self._clock()
        results: list[Issued | KeysvcError | None] = [None] * len(items)
        pending: list[tuple[int, TokenizeInput, bytes | None]] = []
        for i, item in enumerate(items):
            try:
                fmt.validate(item.value)
            except KeysvcError as exc:
                results[i] = exc
                continue
            pending.append((i, item, self._fingerprint(record, item.value) if opts.convergent else None))
        if opts.convergent and pending:
            known = self._store.find_fingerprints(record.name, [fp for _, _, fp in pending if fp is not None])
            for i, _, fp in pending:
                if fp is not None and fp in known:
                    results[i] = Issued(known[fp].token, known[fp].key_version)
            pending = [p for p in pending if results[p[0]] is None]
        for _ in range(_COLLISION_ROUNDS):
            if not pending:
                break
            records = self._seal(record, fmt, pending, opts, now)
            inserted = self._store.insert_tokens(records)
            retry = []
            for (i, item, fp), rec, ok in zip(pending, records, inserted, strict=True):
                if ok:
                    results[i] = Issued(rec.token, rec.key_version)
                else:
                    retry.append((i, item, fp))
            if opts.convergent and retry:
                raced = self._store.find_fingerprints(
                    record.name, [fp for _, _, fp in retry if fp is not None]
                )
                for i, _, fp in retry:
                    if fp is not None and fp in raced:
                        results[i] = Issued(raced[fp].token, raced[fp].key_version)
                retry = [r for r in retry if results[r[0]] is None]
            pending = retry
        for i, _, _ in pending:
            results[i] = KeysvcError("could not allocate a unique token; retry")
        return [r if r is not None else InvalidArgument() for r in results]

    def _seal(
        self,
        record: KeyRecord,
        fmt: TokenFormat,
        pending: Sequence[tuple[int, TokenizeInput, bytes | None]],
        opts: VaultOptions,
        now: float,
    ) -> list[TokenRecord]:
        out: list[TokenRecord] = []
        start = 0
        for alloc in self._keyring.allocate(record.name, Purpose.VAULT_TOKEN, len(pending)):
            header = envelope.encode_header(envelope.Kind.FIELD, record.name, alloc.version)
            for _, item, fp in pending[start : start + alloc.count]:
                token = fmt.random_token(item.value, self._rand)
                ciphertext = envelope.seal(alloc.dek.aead, header, item.value.encode(), {"token": token})
                ttl = item.ttl_seconds or opts.ttl_seconds
                out.append(
                    TokenRecord(
                        record.name,
                        token,
                        ciphertext,
                        alloc.version,
                        fp,
                        now,
                        now + ttl if ttl else None,
                        dict(item.metadata),
                    )
                )
            start += alloc.count
        return out

    def detokenize(self, record: KeyRecord, tokens: Sequence[str]) -> list[tuple[str, int] | KeysvcError]:
        found = self._store.find_tokens(record.name, list(tokens))
        now = self._clock()
        out: list[tuple[str, int] | KeysvcError] = []
        for token in tokens:
            rec = found.get(token)
            if rec is None or (rec.expires_at is not None and rec.expires_at <= now):
                out.append(NotFound("token not found"))
                continue
            try:
                out.append((self._open(record, rec).decode(), rec.key_version))
            except KeysvcError as exc:
                out.append(exc)
        return out

    def _open(self, record: KeyRecord, rec: TokenRecord) -> bytes:
        header = envelope.parse_header(rec.ciphertext)
        dek = self._keyring.decrypting(record.name, header.key_version, Purpose.VAULT_TOKEN)
        return envelope.open_sealed(dek.aead, header, rec.ciphertext, encode_context({"token": rec.token}))

    def reencrypt(self, record: KeyRecord, batch: int = 1000) -> int:
        """Re-encrypt stored values under the primary version; returns how many moved."""
        primary = record.primary.version
        moved = 0
        while True:
            rows = self._store.tokens_below_version(record.name, primary, batch)
            if not rows:
                return moved
            updates = []
            allocs = self._keyring.allocate(record.name, Purpose.VAULT_TOKEN, len(rows))
            flat = [a for a in allocs for _ in range(a.count)]
            for rec, alloc in zip(rows, flat, strict=True):
                try:
                    value = self._open(record, rec)
                except KeysvcError:
                    continue  # e.g. a destroyed version: that token is gone for good
                header = envelope.encode_header(envelope.Kind.FIELD, record.name, alloc.version)
                sealed = envelope.seal(alloc.dek.aead, header, value, {"token": rec.token})
                updates.append((record.name, rec.token, rec.key_version, sealed, alloc.version))
            if not updates:
                return moved
            moved += self._store.update_token_ciphertexts(updates)

    def purge_expired(self) -> int:
        return self._store.purge_expired_tokens(self._clock())
