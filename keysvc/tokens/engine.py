"""The tokenization engine: FF1 tokens for ``fpe`` keys, vaulted random tokens for ``vault-token`` keys.

Key versions and rotation (see docs/FORMATS.md, "Tokens and key rotation"):

* FF1 tokens are made under the key's primary version. Detokenize finds the version from,
  in order: the ``key_version`` the caller kept from Tokenize; the version marker the
  token carries where its format has room (``pan`` with ``luhn=invalid``: the Luhn
  residue); the only decryptable version. If none of these decides, the item fails with
  FAILED_PRECONDITION "token key version required" - never a silently wrong value.
  ``Retokenize`` moves tokens to the primary version.
* Vaulted tokens store the value encrypted under a key version; detokenize reads the
  version from the stored ciphertext, and :meth:`Tokenizer.reencrypt_vault` moves stored
  values to the primary version after a rotation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from keysvc.crypto.ff1 import FF1
from keysvc.errors import (
    DecryptionFailed,
    FailedPrecondition,
    InvalidArgument,
    KeysvcError,
)
from keysvc.keys.cache import CachedDek
from keysvc.keys.keyring import Keyring
from keysvc.store.base import Store
from keysvc.store.models import KeyRecord, Purpose, VersionState
from keysvc.tokens.formats import FormatSpec, TokenFormat, make_format
from keysvc.tokens.types import DetokenizeInput, Issued, Revealed, TokenizeInput
from keysvc.tokens.vault import VAULT_OPTIONS, TokenVault


def token_format(purpose: Purpose, format: str, options: Mapping[str, str]) -> TokenFormat:
    """The token format of a key (InvalidArgument for a bad spec)."""
    fmt_options = {k: v for k, v in options.items() if k not in VAULT_OPTIONS}
    return make_format(FormatSpec(format, fmt_options), purpose=purpose.value)


def validate_token_key(purpose: Purpose, format: str, options: Mapping[str, str]) -> None:
    """Check a new key's token format before it is created."""
    if purpose is Purpose.ENCRYPT:
        if format or options:
            raise InvalidArgument("encryption keys take no token format")
        return
    if not format:
        raise InvalidArgument("tokenization keys need a --format")
    if purpose is Purpose.FPE and set(options) & set(VAULT_OPTIONS):
        raise InvalidArgument("convergent and ttl_seconds apply to vault-token keys only")
    token_format(purpose, format, options)
    if purpose is Purpose.VAULT_TOKEN:
        TokenVault.options(options)


class Tokenizer:
    """Tokenize, detokenize and retokenize in batches with per-item errors."""

    def __init__(self, keyring: Keyring, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._keyring = keyring
        self._formats: dict[tuple[str, str, tuple[tuple[str, str], ...]], TokenFormat] = {}
        self._ciphers: dict[tuple[str, int], tuple[CachedDek, FF1]] = {}
        self._vault = TokenVault(keyring, store, clock)

    def _key(self, name: str) -> tuple[KeyRecord, TokenFormat]:
        record = self._keyring.get(name)
        if record.purpose is Purpose.ENCRYPT:
            raise FailedPrecondition("key purpose is encrypt, not fpe or vault-token")
        cache_key = (name, record.format, tuple(sorted(record.format_options.items())))
        fmt = self._formats.get(cache_key)
        if fmt is None:
            fmt = self._formats[cache_key] = token_format(
                record.purpose, record.format, record.format_options
            )
        return record, fmt

    def _cipher(self, record: KeyRecord, version: int, fmt: TokenFormat, dek: CachedDek) -> FF1:
        cached = self._ciphers.get((record.name, version))
        if cached is not None and cached[0] is dek:
            return cached[1]
        cipher = FF1(dek.dek, fmt.alphabet)
        self._ciphers[(record.name, version)] = (dek, cipher)
        return cipher

    # -- tokenize -----------------------------------------------------------------------------

    def tokenize(self, name: str, items: Sequence[TokenizeInput]) -> list[Issued | KeysvcError]:
        record, fmt = self._key(name)
        if record.purpose is Purpose.VAULT_TOKEN:
            return self._vault.tokenize(record, fmt, items)
        version = record.primary.version
        cipher = self._cipher(record, version, fmt, self._keyring.dek(record, version))
        groups = _by_tweak(items)
        if len(groups) == 1:  # the common case: one tweak for the whole batch, no reordering
            tokens = fmt.tokenize_batch(cipher, [item.value for item in items], items[0].tweak, version)
            return [t if isinstance(t, KeysvcError) else Issued(t, version) for t in tokens]
        results: list[Issued | KeysvcError] = [InvalidArgument()] * len(items)
        for tweak, indexes in groups.items():
            tokens = fmt.tokenize_batch(cipher, [items[i].value for i in indexes], tweak, version)
            for i, token in zip(indexes, tokens, strict=True):
                results[i] = token if isinstance(token, KeysvcError) else Issued(token, version)
        return results

    # -- detokenize ---------------------------------------------------------------------------

    def detokenize(
        self, name: str, items: Sequence[DetokenizeInput], *, masked: bool
    ) -> list[Revealed | KeysvcError]:
        record, fmt = self._key(name)
        if record.purpose is Purpose.VAULT_TOKEN:
            opened = self._vault.detokenize(record, [i.token for i in items])
        else:
            opened = self._detokenize_fpe(record, fmt, items)
        return [o if isinstance(o, KeysvcError) else _reveal(fmt, o, masked) for o in opened]

    def _detokenize_fpe(
        self, record: KeyRecord, fmt: TokenFormat, items: Sequence[DetokenizeInput]
    ) -> list[tuple[str, int] | KeysvcError]:
        results: list[tuple[str, int] | KeysvcError] = [DecryptionFailed()] * len(items)
        groups: dict[tuple[int, bytes], list[int]] = {}
        for i, item in enumerate(items):
            try:
                groups.setdefault((self._version_of(record, fmt, item), item.tweak), []).append(i)
            except KeysvcError as exc:
                results[i] = exc
        for (version, tweak), indexes in groups.items():
            try:
                dek = self._keyring.decrypting(record.name, version, record.purpose)
            except KeysvcError as exc:
                for i in indexes:
                    results[i] = exc
                continue
            cipher = self._cipher(record, version, fmt, dek)
            values = fmt.detokenize_batch(cipher, [items[i].token for i in indexes], tweak)
            for i, value in zip(indexes, values, strict=True):
                results[i] = value if isinstance(value, KeysvcError) else (value, version)
        return results

    @staticmethod
    def _version_of(record: KeyRecord, fmt: TokenFormat, item: DetokenizeInput) -> int:
        if item.key_version:
            return item.key_version
        marker = fmt.version_marker(item.token)
        candidates = [v.version for v in record.versions if v.state is not VersionState.DESTROYED]
        if marker is not None:
            candidates = [v for v in candidates if fmt.marker_for(v) == marker]
            if not candidates:
                raise DecryptionFailed()
        readable = [v for v in candidates if v >= record.min_decryption_version]
        if len(readable) == 1:
            return readable[0]
        if not readable and len(candidates) == 1:
            return candidates[0]  # the state check then explains why it cannot be read
        raise FailedPrecondition("token key version required: pass the key_version returned by Tokenize")

    # -- retokenize and rotation ----------------------------------------------------------------

    def retokenize(self, name: str, items: Sequence[DetokenizeInput]) -> list[Issued | KeysvcError]:
        """Tokens for the same values under the primary version (FF1 keys after a rotation)."""
        revealed = self.detokenize(name, items, masked=False)
        merged: list[Issued | KeysvcError] = [
            r if isinstance(r, KeysvcError) else DecryptionFailed() for r in revealed
        ]
        ok = [(i, r) for i, r in enumerate(revealed) if isinstance(r, Revealed)]
        if ok:
            issued = self.tokenize(name, [TokenizeInput(r.value, items[i].tweak) for i, r in ok])
            for (i, _), token in zip(ok, issued, strict=True):
                merged[i] = token
        return merged

    def reencrypt_vault(self, name: str) -> int:
        """Move a vaulted key's stored values to its primary version; returns how many moved."""
        record, _ = self._key(name)
        if record.purpose is not Purpose.VAULT_TOKEN:
            return 0
        return self._vault.reencrypt(record)

    def purge_expired(self) -> int:
        return self._vault.purge_expired()


def _by_tweak(items: Sequence[TokenizeInput | DetokenizeInput]) -> dict[bytes, list[int]]:
    groups: dict[bytes, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.tweak, []).append(i)
    return groups


def _reveal(fmt: TokenFormat, opened: tuple[str, int], masked: bool) -> Revealed | KeysvcError:
    value, version = opened
    if not masked:
        return Revealed(value, version, False)
    try:
        return Revealed(fmt.mask(value), version, True)
    except InvalidArgument as exc:
        return exc
