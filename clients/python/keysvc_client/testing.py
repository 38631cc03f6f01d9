"""An in-process fake of keysvc for applications' unit tests: no server, no network.

::

    from keysvc_client.testing import FakeKeyService

    def test_order_is_stored_protected():
        ks = FakeKeyService(keys={"customer-pii": "encrypt", "pan": ("fpe", "digits")})
        stored = protect_record(ks, order, schema)          # the record helpers work as is
        assert ks.decrypt(...)                               # the same calls as KeyServiceClient
        assert [c.method for c in ks.calls] == ["Encrypt", "Tokenize"]

:class:`FakeKeyService` has the methods of ``KeyServiceClient`` that applications call
(``encrypt``, ``decrypt``, ``rewrap``, ``generate_data_key``, ``decrypt_data_key``,
``tokenize``, ``tokenize_versioned``, ``detokenize``, ``retokenize``, ``redact``) with
the same signatures, and the key management calls of ``AdminClient`` (``create_key``,
``get_key``, ``list_keys``, ``rotate_key``) both on itself and on ``.admin``, returning
the same protobuf ``Key`` messages. It raises the client's typed exceptions with the
server's messages: ``NotFoundError`` for an unknown key, ``FailedPreconditionError`` for
a key of the wrong purpose, ``InvalidArgumentError`` for an empty batch, and
``BatchError`` carrying one ``ItemResult`` per item when some items fail (each
``DecryptionError("decryption failed")`` for anything that does not decrypt).

What is real: encryption is the service's own format v1 (docs/FORMATS.md): AES-256-GCM
with a random nonce, the header (format, kind, key name, version) and the canonical
encoding of the caller's context as AAD. A ciphertext from the fake has exactly the
structure of one from the server, and the fake opens the published vectors
(``tests/vectors/envelope_v1.json``) once their data key is loaded with
:meth:`FakeKeyService.import_version`. Rotation keeps old versions decryptable;
:meth:`FakeKeyService.destroy_version` crypto-shreds one (``KeyVersionDestroyedError``).
Data keys are encrypted as kind 0x02 and are refused by ``decrypt`` (and fields by
``decrypt_data_key``), as on the server, so ``keysvc_client.stream`` works against the fake.

What is simpler, and NOT for production:

* Data keys (DEKs) are random bytes held in memory; there is no KEK, no store, no policy,
  no authentication and no audit chain (``calls`` records every call instead).
* ``fpe`` tokens are NOT FF1: they come from a 10-round Feistel network over the
  format's characters with HMAC-SHA256 of the version's DEK as round function.
  They are deterministic per (key version, tweak, value), keep the format, and
  detokenize, but they differ from the server's tokens and have no security analysis.
  Formats: ``digits`` (every ASCII digit; >= 6), ``alphanumeric`` ([0-9A-Za-z]; >= 4),
  ``pan`` (13-19 digits, spaces/dashes kept, Luhn-checked unless ``luhn=any``, last
  four kept in clear; tokens carry no Luhn property or version marker), ``ssn`` (the
  9 digits), ``phone`` (every digit), ``email`` (the [0-9a-z] characters of the local
  part; the rest and the domain kept), ``custom`` (option ``alphabet``; ``pattern`` is
  ignored). After a rotation an ``fpe`` token needs its ``key_versions`` entry unless
  only one version is readable (as on the server for formats without a version marker;
  the server's ``pan`` tokens do carry one); otherwise the item fails with
  ``FailedPreconditionError("token key version required ...")``, never a wrong value.
* ``vault-token`` keys issue random tokens of the value's shape kept in a dict (option
  ``convergent=true``: the same value gets the same token); ``ttl_seconds`` is ignored.
* Masked detokenize shows the last four free characters when there are at least eight
  (``pan`` always its last four; ``email`` as ``j***@example.com``), the rest as ``*``.
* ``redact`` is a few regular expressions, much weaker than the server's detectors:
  emails; card numbers (13-19 digits, single spaces or dashes between, Luhn-valid);
  SSNs ``ddd-dd-dddd`` (dashes or spaces); US phone numbers
  (``(555) 123-4567``, ``555-123-4567``, ``+1 555 123 4567``). No CVV, expiry or spoken
  numbers. Replacements are labels (``[PAN]``, ``[SSN]``, ``[PHONE]``, ``[EMAIL]``);
  ``masked=True`` writes ``[PAN ****1111]`` for cards. Use it to test your plumbing,
  not your redaction coverage.
"""

from __future__ import annotations

import hmac
import os
import re
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keysvc_client._client import DataKey, RedactedSpan, Redaction, Token
from keysvc_client._errors import (
    AlreadyExistsError,
    BatchError,
    DecryptionError,
    FailedPreconditionError,
    InvalidArgumentError,
    ItemResult,
    KeysvcError,
    KeyVersionDestroyedError,
    NotFoundError,
)
from keysvc_client._pb.keysvc.v1 import admin_pb2
from keysvc_client.stream import _encode_context

if TYPE_CHECKING:
    from keysvc_client._client import KeyServiceClient
    from keysvc_client.records import RecordClient
    from keysvc_client.stream import DataKeySource

__all__ = ["FakeCall", "FakeKeyService"]

T = TypeVar("T")
Context = Mapping[str, str] | None
KeySpec = str | tuple[str, str] | tuple[str, str, Mapping[str, str]]

MAX_BATCH_ITEMS = 10_000
_FORMAT_V1 = 1
_FIELD, _DATA_KEY = 1, 2
_NONCE = 12
_TAG = 16
_U32 = struct.Struct(">I")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_PURPOSES = {
    "encrypt": admin_pb2.KEY_PURPOSE_ENCRYPT,
    "fpe": admin_pb2.KEY_PURPOSE_FPE,
    "vault-token": admin_pb2.KEY_PURPOSE_VAULT_TOKEN,
}
_DIGITS = "0123456789"
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LOWER_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"
_FORMATS = ("digits", "alphanumeric", "pan", "ssn", "phone", "email", "custom")
_MIN_DOMAIN = 1_000_000  # as FF1 in NIST SP 800-38G: radix ** length >= 10^6
_ROUNDS = 10


def _failed() -> DecryptionError:
    return DecryptionError("decryption failed", "DECRYPTION_FAILED")


def _invalid(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, "INVALID_ARGUMENT")


@dataclass(frozen=True)
class FakeCall:
    """One call made to the fake (the fake's stand-in for the audit log and RPC counts).

    Attributes:
        method: The RPC it stands for: ``Encrypt``, ``Decrypt``, ``Rewrap``,
            ``GenerateDataKey``, ``DecryptDataKey``, ``Tokenize``, ``Detokenize``,
            ``Retokenize``, ``Redact``, ``CreateKey``, ``RotateKey``.
        key: The key named by the request ("" when the items name their keys).
        items: Number of items in the request.
        purpose: The purpose given to Detokenize ("" otherwise).
    """

    method: str
    key: str
    items: int
    purpose: str = ""


@dataclass
class _Version:
    number: int
    dek: bytes | None
    state: admin_pb2.VersionState
    encryptions: int = 0


@dataclass
class _Key:
    name: str
    purpose: str
    format: str
    options: dict[str, str]
    versions: dict[int, _Version] = field(default_factory=dict)

    @property
    def primary(self) -> _Version:
        return self.versions[max(v for v, ver in self.versions.items() if ver.dek is not None)]


def _header(kind: int, name: str, version: int) -> bytes:
    raw = name.encode()
    return bytes((_FORMAT_V1, kind, len(raw))) + raw + _U32.pack(version)


def _parse(ciphertext: bytes) -> tuple[int, str, int, int]:
    """(kind, key name, version, header length); DecryptionError when malformed."""
    if len(ciphertext) < 3 or ciphertext[0] != _FORMAT_V1 or ciphertext[1] not in (_FIELD, _DATA_KEY):
        raise _failed()
    end = 3 + ciphertext[2] + 4
    if ciphertext[2] == 0 or len(ciphertext) < end + _NONCE + _TAG:
        raise _failed()
    try:
        name = ciphertext[3 : end - 4].decode()
    except UnicodeDecodeError:
        raise _failed() from None
    (version,) = _U32.unpack_from(ciphertext, end - 4)
    return ciphertext[1], name, version, end


def _check_batch(count: int) -> None:
    if count == 0:
        raise _invalid("the request has no items")
    if count > MAX_BATCH_ITEMS:
        raise _invalid(f"a batch may hold at most {MAX_BATCH_ITEMS} items")


def _pairs(
    data: Sequence[T], context: Context, contexts: Sequence[Context] | None
) -> list[tuple[T, Context]]:
    if contexts is None:
        return [(d, context) for d in data]
    if context is not None or len(contexts) != len(data):
        raise ValueError("pass either context, or one context per item")
    return [(d, c) for d, c in zip(data, contexts, strict=True)]


def _values(results: Sequence[T | KeysvcError]) -> list[T]:
    if not any(isinstance(r, KeysvcError) for r in results):
        return [r for r in results if not isinstance(r, KeysvcError)]
    raise BatchError(
        [ItemResult(None, r, "") if isinstance(r, KeysvcError) else ItemResult(r, None, "") for r in results]
    )


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# -- format-keeping tokens (NOT FF1) --------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """Which characters of a value a token replaces (``free``) and which it keeps."""

    alphabet: str
    free_at: tuple[int, ...]
    kept: str  # bound into the tweak

    def free(self, text: str) -> str:
        return "".join(text[i] for i in self.free_at)

    def fill(self, text: str, free: str) -> str:
        chars = list(text)
        for i, ch in zip(self.free_at, free, strict=True):
            chars[i] = ch
        return "".join(chars)


def _shape(fmt: str, options: Mapping[str, str], value: str) -> _Shape:
    """The shape of ``value`` under a format; InvalidArgumentError when it does not fit."""
    alphabet = {"alphanumeric": _ALNUM, "email": _LOWER_ALNUM, "custom": options.get("alphabet", _ALNUM)}.get(
        fmt, _DIGITS
    )
    if fmt == "email":
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain:
            raise _invalid("value is not an email address")
        free_at = tuple(i for i, ch in enumerate(local) if ch in alphabet)
        if len(alphabet) ** len(free_at) < _MIN_DOMAIN:
            raise _invalid("value is too short to tokenize")
        return _Shape(alphabet, free_at, "@" + domain)
    free_at = tuple(i for i, ch in enumerate(value) if ch in alphabet)
    kept = ""
    if fmt == "pan":
        digits = "".join(value[i] for i in free_at)
        if (
            any(ch not in _DIGITS + " -" for ch in value)
            or not 13 <= len(digits) <= 19
            or (options.get("luhn", "invalid") != "any" and not _luhn_ok(digits))
        ):
            raise _invalid("value is not a card number")
        kept = digits[-4:]
        free_at = free_at[:-4]
    elif fmt == "ssn" and (len(free_at) != 9 or any(ch not in _DIGITS + " -" for ch in value)):
        raise _invalid("value is not a social security number")
    if len(alphabet) ** len(free_at) < _MIN_DOMAIN:
        raise _invalid("value is too short to tokenize")
    return _Shape(alphabet, free_at, kept)


def _feistel(dek: bytes, alphabet: str, text: str, tweak: bytes, decrypt: bool) -> str:
    """A balanced Feistel permutation of ``text`` over ``alphabet`` (FF1's layout, HMAC rounds)."""
    radix, n = len(alphabet), len(text)
    u = n // 2
    sizes = (u, n - u)
    index = {ch: i for i, ch in enumerate(alphabet)}

    def num(s: str) -> int:
        value = 0
        for ch in s:
            value = value * radix + index[ch]
        return value

    def text_of(value: int, length: int) -> str:
        out = []
        for _ in range(length):
            value, digit = divmod(value, radix)
            out.append(alphabet[digit])
        return "".join(reversed(out))

    def round_value(i: int, half: str) -> int:
        message = _U32.pack(n) + _U32.pack(len(tweak)) + tweak + bytes((i,)) + half.encode()
        return int.from_bytes(hmac.digest(dek, b"keysvc-fake-fpe" + message, "sha256"), "big")

    a, b = text[:u], text[u:]
    if not decrypt:
        for i in range(_ROUNDS):
            m = sizes[i % 2]
            c = (num(a) + round_value(i, b)) % radix**m
            a, b = b, text_of(c, m)
        return a + b
    for i in reversed(range(_ROUNDS)):
        m = sizes[i % 2]
        c = (num(b) - round_value(i, a)) % radix**m
        a, b = text_of(c, m), a
    return a + b


def _mask(fmt: str, shape: _Shape, value: str) -> str:
    if fmt == "email":
        return f"{value[0]}***{shape.kept}"
    free = shape.free(value)
    shown = 0 if fmt == "pan" else (4 if len(free) >= 8 else 0)
    return shape.fill(value, "*" * (len(free) - shown) + free[len(free) - shown :])


# -- redaction ------------------------------------------------------------------------------------

_REDACTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("pan", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")),
    ("ssn", re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")),
    ("phone", re.compile(r"(?<![\d+])(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\d)")),
)


def _fake_redact(text: str, masked: bool) -> Redaction:
    taken: list[tuple[int, int, str]] = []
    for kind, pattern in _REDACTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "pan" and not _luhn_ok(re.sub(r"\D", "", match.group())):
                continue
            if any(start < e and s < end for s, e, _ in taken):
                continue
            taken.append((start, end, kind))
    taken.sort()
    out, at = [], 0
    for start, end, kind in taken:
        label = kind.upper()
        if masked and kind == "pan":
            label += " ****" + re.sub(r"\D", "", text[start:end])[-4:]
        out += [text[at:start], f"[{label}]"]
        at = end
    out.append(text[at:])
    return Redaction("".join(out), [RedactedSpan(kind, s, e) for s, e, kind in taken])


# -- the fake -------------------------------------------------------------------------------------


class FakeKeyService:
    """An in-memory keysvc with the calls of ``KeyServiceClient`` (see the module docs).

    Thread-safe. ``.admin`` is the fake itself, so ``fake.admin.create_key(...)`` works
    as with the real client.

    Args:
        keys: Keys to create up front: name to purpose (``"encrypt"``), to
            ``(purpose, format)`` or to ``(purpose, format, format_options)``.
    """

    def __init__(self, keys: Mapping[str, KeySpec] | None = None) -> None:
        self._lock = threading.RLock()
        self._keys: dict[str, _Key] = {}
        self._vault: dict[tuple[str, str], tuple[str, int]] = {}
        self._convergent: dict[tuple[str, str], str] = {}
        self.calls: list[FakeCall] = []
        """Every call made, in order; clear it freely."""
        for name, spec in (keys or {}).items():
            if isinstance(spec, str):
                self.create_key(name, spec)
            elif len(spec) == 2:
                self.create_key(name, spec[0], format=spec[1])
            else:
                self.create_key(name, spec[0], format=spec[1], format_options=spec[2])

    @property
    def admin(self) -> FakeKeyService:
        """The fake itself: it also has the key management calls of ``AdminClient``."""
        return self

    def close(self) -> None:
        """Do nothing (for parity with ``KeyServiceClient``)."""

    def __enter__(self) -> FakeKeyService:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _record(self, method: str, key: str, items: int, purpose: str = "") -> None:
        self.calls.append(FakeCall(method, key, items, purpose))

    # -- key management ---------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        purpose: str,
        *,
        format: str = "",
        format_options: Mapping[str, str] | None = None,
        policy: admin_pb2.KeyPolicy | None = None,
    ) -> admin_pb2.Key:
        """Create a key with a fresh random version 1.

        Args:
            name: 1-128 characters of letters, digits, ``.``, ``_`` or ``-``.
            purpose: ``encrypt``, ``fpe`` or ``vault-token``.
            format: Token format, required for ``fpe`` and ``vault-token`` keys, refused
                for ``encrypt`` keys (see the module docs for the formats the fake knows).
            format_options: Format options (``luhn``, ``alphabet``, ``convergent``).
            policy: Accepted and ignored (the fake has no scheduler).

        Returns:
            The key, as ``AdminClient.create_key`` returns it.

        Raises:
            ValueError: Unknown purpose (as ``AdminClient``).
            InvalidArgumentError: Bad name or format.
            AlreadyExistsError: The key exists.
        """
        if purpose not in _PURPOSES:
            raise ValueError("purpose must be one of encrypt, fpe, vault-token")
        if not 1 <= len(name) <= 128 or not set(name) <= _NAME_CHARS:
            raise _invalid("key name must be 1-128 characters of letters, digits, '.', '_' or '-'")
        options = dict(format_options or {})
        if purpose == "encrypt" and (format or options):
            raise _invalid("encryption keys take no token format")
        if purpose != "encrypt" and not format:
            raise _invalid("tokenization keys need a --format")
        if format and format not in _FORMATS:
            raise _invalid(f"unknown token format {format!r}")
        with self._lock:
            self._record("CreateKey", name, 1)
            if name in self._keys:
                raise AlreadyExistsError("key already exists", "ALREADY_EXISTS")
            key = self._keys[name] = _Key(name, purpose, format, options)
            key.versions[1] = _Version(1, os.urandom(32), admin_pb2.VERSION_STATE_PRIMARY)
            return self._proto(key)

    def import_version(
        self, name: str, version: int, dek: bytes, *, purpose: str = "encrypt", format: str = ""
    ) -> admin_pb2.Key:
        """Load a known 32-byte data key as ``version`` of ``name`` (created if absent).

        For test vectors, and to make two fakes share keys. The highest version with a
        data key is the primary; the others stay decryptable.
        """
        if len(dek) != 32 or not 1 <= version < 1 << 32:
            raise ValueError("dek must be 32 bytes and version 1..2^32-1")
        with self._lock:
            key = self._keys.get(name)
            if key is None:
                self.create_key(name, purpose, format=format)
                key = self._keys[name]
                del key.versions[1]
            key.versions[version] = _Version(version, bytes(dek), admin_pb2.VERSION_STATE_ACTIVE)
            self._restate(key)
            return self._proto(key)

    def get_key(self, name: str) -> admin_pb2.Key:
        """The key's metadata (``NotFoundError`` if absent)."""
        with self._lock:
            return self._proto(self._key(name))

    def list_keys(self) -> list[admin_pb2.Key]:
        """Every key, by name."""
        with self._lock:
            return [self._proto(self._keys[n]) for n in sorted(self._keys)]

    def rotate_key(self, name: str) -> admin_pb2.Key:
        """Add a new primary version; older versions stay decryptable."""
        with self._lock:
            self._record("RotateKey", name, 1)
            key = self._key(name)
            number = max(key.versions) + 1
            key.versions[number] = _Version(number, os.urandom(32), admin_pb2.VERSION_STATE_PRIMARY)
            self._restate(key)
            return self._proto(key)

    def destroy_version(self, name: str, version: int) -> admin_pb2.Key:
        """Crypto-shred one version: its data key is erased (no dual control in the fake).

        Raises:
            NotFoundError: No such key or version.
            FailedPreconditionError: It is the primary version (rotate first).
        """
        with self._lock:
            key = self._key(name)
            entry = key.versions.get(version)
            if entry is None:
                raise NotFoundError("key version not found", "NOT_FOUND")
            if entry is key.primary:
                raise FailedPreconditionError(
                    "the primary version cannot be destroyed", "FAILED_PRECONDITION"
                )
            entry.dek = None
            entry.state = admin_pb2.VERSION_STATE_DESTROYED
            return self._proto(key)

    def _restate(self, key: _Key) -> None:
        primary = key.primary
        for entry in key.versions.values():
            if entry.dek is not None:
                entry.state = (
                    admin_pb2.VERSION_STATE_PRIMARY if entry is primary else admin_pb2.VERSION_STATE_ACTIVE
                )

    def _key(self, name: str) -> _Key:
        key = self._keys.get(name)
        if key is None:
            raise NotFoundError("key not found", "NOT_FOUND")
        return key

    @staticmethod
    def _proto(key: _Key) -> admin_pb2.Key:
        return admin_pb2.Key(
            name=key.name,
            purpose=_PURPOSES[key.purpose],
            primary_version=key.primary.number,
            min_decryption_version=1,
            versions=[
                admin_pb2.KeyVersion(version=v.number, state=v.state, encryptions=v.encryptions)
                for _, v in sorted(key.versions.items())
            ],
            format=key.format,
            format_options=key.options,
            created_by="fake",
        )

    def _require(self, name: str, purpose: str) -> _Key:
        key = self._key(name)
        if key.purpose != purpose:
            raise FailedPreconditionError(
                f"key purpose is {key.purpose}, not {purpose}", "FAILED_PRECONDITION"
            )
        return key

    def _readable(self, key: _Key, number: int) -> bytes:
        entry = key.versions.get(number)
        if entry is None:
            raise _failed()
        if entry.dek is None:
            raise KeyVersionDestroyedError("key version destroyed", "KEY_VERSION_DESTROYED")
        return entry.dek

    # -- crypto -----------------------------------------------------------------------------------

    def _seal(self, key: _Key, kind: int, plaintext: bytes, context: Context) -> bytes:
        primary = key.primary
        assert primary.dek is not None
        header = _header(kind, key.name, primary.number)
        nonce = os.urandom(_NONCE)
        primary.encryptions += 1
        return (
            header + nonce + AESGCM(primary.dek).encrypt(nonce, plaintext, header + _encode_context(context))
        )

    def _open(self, ciphertext: bytes, context: Context, kind: int) -> tuple[_Key, bytes]:
        got_kind, name, version, end = _parse(ciphertext)
        key = self._keys.get(name)
        if got_kind != kind or key is None or key.purpose != "encrypt":
            raise _failed()
        dek = self._readable(key, version)
        nonce = ciphertext[end : end + _NONCE]
        try:
            aad = ciphertext[:end] + _encode_context(context)
            return key, AESGCM(dek).decrypt(nonce, ciphertext[end + _NONCE :], aad)
        except InvalidTag:
            raise _failed() from None

    def encrypt(
        self,
        key: str,
        plaintexts: Sequence[bytes],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Encrypt each plaintext under the primary version of ``key`` (format v1, kind 0x01)."""
        pairs = _pairs(plaintexts, context, contexts)
        with self._lock:
            self._record("Encrypt", key, len(pairs))
            _check_batch(len(pairs))
            entry = self._require(key, "encrypt")
            return [self._seal(entry, _FIELD, bytes(p), c) for p, c in pairs]

    def decrypt(
        self,
        ciphertexts: Sequence[bytes],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Decrypt field ciphertexts; ``BatchError`` with per-item results when any fail."""
        pairs = _pairs(ciphertexts, context, contexts)
        with self._lock:
            self._record("Decrypt", "", len(pairs))
            _check_batch(len(pairs))
            results: list[bytes | KeysvcError] = []
            for ciphertext, ctx in pairs:
                try:
                    results.append(self._open(bytes(ciphertext), ctx, _FIELD)[1])
                except KeysvcError as exc:
                    results.append(exc)
            return _values(results)

    def rewrap(
        self,
        ciphertexts: Sequence[bytes],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Re-encrypt ciphertexts under their key's primary version."""
        pairs = _pairs(ciphertexts, context, contexts)
        with self._lock:
            self._record("Rewrap", "", len(pairs))
            _check_batch(len(pairs))
            results: list[bytes | KeysvcError] = []
            for ciphertext, ctx in pairs:
                try:
                    key, plaintext = self._open(bytes(ciphertext), ctx, _FIELD)
                    results.append(self._seal(key, _FIELD, plaintext, ctx))
                except KeysvcError as exc:
                    results.append(exc)
            return _values(results)

    def generate_data_key(
        self, key: str, *, context: Context = None, bits: int = 256, timeout: float | None = None
    ) -> DataKey:
        """A fresh data key, returned in plaintext and encrypted (kind 0x02) under ``key``."""
        with self._lock:
            self._record("GenerateDataKey", key, 1)
            entry = self._require(key, "encrypt")
            if bits not in (128, 256):
                raise _invalid("bits must be 128 or 256")
            plaintext = os.urandom(bits // 8)
            return DataKey(plaintext, self._seal(entry, _DATA_KEY, plaintext, context), entry.primary.number)

    def decrypt_data_key(
        self, encrypted: bytes, *, context: Context = None, timeout: float | None = None
    ) -> bytes:
        """The plaintext of a data key from :meth:`generate_data_key` (``BatchError`` on failure)."""
        with self._lock:
            self._record("DecryptDataKey", "", 1)
            try:
                result: bytes | KeysvcError = self._open(bytes(encrypted), context, _DATA_KEY)[1]
            except KeysvcError as exc:
                result = exc
            return _values([result])[0]

    # -- tokenization -----------------------------------------------------------------------------

    def _token_key(self, name: str) -> _Key:
        key = self._key(name)
        if key.purpose == "encrypt":
            raise FailedPreconditionError(
                "key purpose is encrypt, not fpe or vault-token", "FAILED_PRECONDITION"
            )
        return key

    def _issue(self, key: _Key, value: str, tweak: bytes) -> Token:
        shape = _shape(key.format, key.options, value)
        primary = key.primary
        assert primary.dek is not None
        free = shape.free(value)
        if key.purpose == "fpe":
            token = shape.fill(
                value, _feistel(primary.dek, shape.alphabet, free, self._tweak(tweak, shape), False)
            )
            return Token(token, primary.number)
        if key.options.get("convergent", "false").lower() == "true":
            known = self._convergent.get((key.name, value))
            if known is not None:
                return Token(known, self._vault[(key.name, known)][1])
        for _ in range(5):
            token = shape.fill(
                value, "".join(shape.alphabet[b % len(shape.alphabet)] for b in os.urandom(len(free)))
            )
            if (key.name, token) not in self._vault and token != value:
                self._vault[(key.name, token)] = (value, primary.number)
                self._convergent[(key.name, value)] = token
                return Token(token, primary.number)
        raise _invalid("could not issue a unique token")  # pragma: no cover - needs a tiny domain

    @staticmethod
    def _tweak(tweak: bytes, shape: _Shape) -> bytes:
        return _U32.pack(len(tweak)) + tweak + shape.kept.encode()

    def _reveal(self, key: _Key, token: str, tweak: bytes, version: int) -> str:
        if key.purpose == "vault-token":
            stored = self._vault.get((key.name, token))
            if stored is None:
                raise NotFoundError("token not found", "NOT_FOUND")
            self._readable(key, stored[1])
            return stored[0]
        if not version:
            readable = [v.number for v in key.versions.values() if v.dek is not None]
            if len(readable) != 1:
                raise FailedPreconditionError(
                    "token key version required: pass the key_version returned by Tokenize",
                    "FAILED_PRECONDITION",
                )
            version = readable[0]
        dek = self._readable(key, version)
        shape = (
            _shape(key.format, key.options, token) if key.format != "pan" else self._pan_token_shape(token)
        )
        free = _feistel(dek, shape.alphabet, shape.free(token), self._tweak(tweak, shape), True)
        value = shape.fill(token, free)
        if (
            key.format == "pan"
            and key.options.get("luhn", "invalid") != "any"
            and not _luhn_ok("".join(ch for ch in value if ch in _DIGITS))
        ):
            raise _failed()
        return value

    @staticmethod
    def _pan_token_shape(token: str) -> _Shape:
        free_at = tuple(i for i, ch in enumerate(token) if ch in _DIGITS)
        if any(ch not in _DIGITS + " -" for ch in token) or not 13 <= len(free_at) <= 19:
            raise _invalid("token is not a card number token")
        return _Shape(_DIGITS, free_at[:-4], "".join(token[i] for i in free_at[-4:]))

    def tokenize_versioned(
        self, key: str, values: Sequence[str], *, tweak: bytes = b"", timeout: float | None = None
    ) -> list[Token]:
        """Tokens with the key version that issued them."""
        with self._lock:
            self._record("Tokenize", key, len(values))
            _check_batch(len(values))
            entry = self._token_key(key)
            results: list[Token | KeysvcError] = []
            for value in values:
                try:
                    results.append(self._issue(entry, value, tweak))
                except KeysvcError as exc:
                    results.append(exc)
            return _values(results)

    def tokenize(
        self, key: str, values: Sequence[str], *, tweak: bytes = b"", timeout: float | None = None
    ) -> list[str]:
        """Tokens for ``values`` under ``key`` (``fpe``: deterministic, NOT FF1; ``vault-token``: random)."""
        return [t.token for t in self.tokenize_versioned(key, values, tweak=tweak)]

    def detokenize(
        self,
        key: str,
        tokens: Sequence[str],
        *,
        purpose: str,
        tweak: bytes = b"",
        masked: bool = False,
        key_versions: Sequence[int] | None = None,
        timeout: float | None = None,
    ) -> list[str]:
        """The values behind ``tokens``; ``purpose`` is required and recorded in :attr:`calls`."""
        versions = list(key_versions) if key_versions is not None else [0] * len(tokens)
        if len(versions) != len(tokens):
            raise ValueError("pass one key version per token")
        with self._lock:
            self._record("Detokenize", key, len(tokens), purpose)
            _check_batch(len(tokens))
            if not purpose.strip():
                raise _invalid("detokenize requires a purpose")
            entry = self._token_key(key)
            results: list[str | KeysvcError] = []
            for token, version in zip(tokens, versions, strict=True):
                try:
                    value = self._reveal(entry, token, tweak, version)
                    results.append(
                        _mask(entry.format, _shape(entry.format, entry.options, value), value)
                        if masked
                        else value
                    )
                except KeysvcError as exc:
                    results.append(exc)
            return _values(results)

    def retokenize(
        self, key: str, tokens: Sequence[Token], *, tweak: bytes = b"", timeout: float | None = None
    ) -> list[Token]:
        """Tokens for the same values under the primary version."""
        with self._lock:
            self._record("Retokenize", key, len(tokens))
            _check_batch(len(tokens))
            entry = self._token_key(key)
            results: list[Token | KeysvcError] = []
            for token in tokens:
                try:
                    value = self._reveal(entry, token.token, tweak, token.key_version)
                    results.append(self._issue(entry, value, tweak))
                except KeysvcError as exc:
                    results.append(exc)
            return _values(results)

    def redact(self, text: str, *, masked: bool = False, timeout: float | None = None) -> Redaction:
        """Replace emails, card numbers, SSNs and US phone numbers (regexes; see the module docs)."""
        with self._lock:
            self._record("Redact", "", 1)
        return _fake_redact(text, masked)


if TYPE_CHECKING:  # both the fake and the real client satisfy the interfaces the helpers use

    def _fake_fits(fake: FakeKeyService) -> tuple[RecordClient, DataKeySource]:
        return fake, fake

    def _client_fits(client: KeyServiceClient) -> tuple[RecordClient, DataKeySource]:
        return client, client
