"""Protect and reveal the sensitive fields of plain-dict records in one batched call.

A :class:`Schema` maps field paths to actions::

    schema = Schema(
        {
            "payment.card_number": Tokenize("pan"),
            "payment.cvv": Drop(),
            "customer.ssn": Encrypt("customer-pii"),
            "customer.phone": Encrypt("customer-pii"),
            "customer.phone_display": Mask(keep_last=4),
            "calls[].notes": Encrypt("call-notes"),
        },
        context={"app": "orders"},
    )
    stored = protect_record(client, order, schema)
    shown = reveal_record(client, stored, schema, purpose="chargeback")

Paths are dot-separated keys into nested mappings. A segment written ``name[]`` means
"the list under ``name``": the rest of the path applies to every element
(``calls[].notes``), or, as the last segment, every element is a value (``tags[]``).
Field names containing ``.`` or ending in ``[]`` cannot be addressed. No path may be a
prefix of another (``customer`` and ``customer.ssn``): the schema refuses that.

Values: a missing field (or a missing or ``None`` parent) is skipped, ``None`` stays
``None``, ``None`` list elements stay ``None``. The input record is never modified;
the helpers return new dicts (nested dicts and lists are copied, other values shared).

Actions:

* :class:`Encrypt` -- Encrypt RPC under the key, with encryption context
  ``{"field": <the schema path as written>, **schema.context}``, plus
  ``"encoding": "bytes" | "json"`` for non-``str`` values. The stored value is the
  ciphertext's text form (see below). ``str`` values are encrypted as their UTF-8 bytes,
  ``bytes``/``bytearray``/``memoryview`` as is, and ``int``, ``float``, ``bool``,
  ``list`` and ``dict`` values as compact JSON (so reveal returns them as JSON decodes
  them: tuples come back as lists, dict keys must be ``str``; NaN/infinity are refused).
  Any other type raises ``TypeError``. Binding ``"encoding"`` into the context means a
  stored value cannot be re-labelled from one type to another without failing to decrypt.
* :class:`Tokenize` -- Tokenize RPC under a ``fpe`` or ``vault-token`` key; values must
  be ``str`` (convert numbers yourself: ``int`` would lose leading zeros). Reveal calls
  Detokenize with the caller's ``purpose`` (audited).
* :class:`Mask` -- local and irreversible (no RPC): letters and digits are replaced
  except the first ``keep_first`` and last ``keep_last``; other characters stay. ``int``
  values are masked as ``str(value)``. Reveal leaves masked values as they are.
* :class:`Drop` -- the key is removed from its mapping (no RPC). Reveal cannot bring it back.

Round trips, precisely. One call to :func:`protect_records` (or :func:`protect_record`)
makes, whatever the number of records and fields:

* one ``Encrypt`` RPC per distinct encryption key used by fields that hold a value,
* one ``Tokenize`` RPC per distinct (token key, tweak),
* and no RPC at all for Mask, Drop, missing and ``None`` fields;

one call to :func:`reveal_records` makes one ``Decrypt`` RPC for every encrypted field of
every record together (a ciphertext names its own key) and one ``Detokenize`` RPC per
distinct (token key, tweak). The only exception: a batch larger than ``max_batch``
items (default 10,000, the server's limit per request) is sent in ``ceil(n / max_batch)``
RPCs. The RPCs run one after another, in a fixed order (encrypt keys, then token keys,
each in order of first appearance in the schema).

Text form of a ciphertext (for string columns)::

    "ks1:"  + base64url(ciphertext)   value was a str
    "ks1b:" + base64url(ciphertext)   value was bytes          (context "encoding": "bytes")
    "ks1j:" + base64url(ciphertext)   value was a JSON value   (context "encoding": "json")

``base64url`` is RFC 4648 section 5 without ``=`` padding; the ciphertext is the service's
format v1 (``docs/FORMATS.md``). Reveal accepts exactly these forms (canonical base64,
a v1 field-ciphertext header) and raises :class:`CiphertextFormatError` naming the
field path, never the value, for anything else.

Errors: whole-call failures from the service (``NotFoundError``, ``PermissionDeniedError``,
``FailedPreconditionError`` for a key of the wrong purpose, ...) propagate unchanged.
When individual items fail (a ciphertext that does not decrypt, a value a token format
refuses), every RPC still runs and :class:`RecordBatchError` (a ``BatchError``) is raised
with one :class:`~keysvc_client.ItemResult` per record and the failing fields in ``.fields``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

from keysvc_client._errors import BatchError, InvalidArgumentError, ItemResult, KeysvcError

__all__ = [
    "DEFAULT_MAX_BATCH",
    "TEXT_PREFIXES",
    "Action",
    "CiphertextFormatError",
    "Drop",
    "Encrypt",
    "FieldError",
    "Mask",
    "RecordBatchError",
    "RecordClient",
    "Schema",
    "Tokenize",
    "ValueType",
    "decode_text",
    "encode_text",
    "protect_record",
    "protect_records",
    "reveal_record",
    "reveal_records",
]

DEFAULT_MAX_BATCH = 10_000
"""Items per RPC: the server's limit (``MAX_BATCH_ITEMS``)."""

ValueType: TypeAlias = Literal["str", "bytes", "json"]
"""What an encrypted value was before encryption; it selects the text prefix."""

TEXT_PREFIXES: Mapping[ValueType, str] = {"str": "ks1:", "bytes": "ks1b:", "json": "ks1j:"}
"""The text-form prefix for each value type."""

_TYPE_BY_PREFIX: dict[str, ValueType] = {p: t for t, p in TEXT_PREFIXES.items()}
_TEXT = re.compile(r"(ks1[bj]?):([A-Za-z0-9_-]+)\Z")
_RESERVED_CONTEXT = ("field", "encoding")
_V1_MIN_FIELD_CIPHERTEXT = 3 + 1 + 4 + 12 + 16  # header with a 1-byte key name, nonce, tag

ContextMap: TypeAlias = Mapping[str, str]
Record: TypeAlias = Mapping[str, Any]


class RecordClient(Protocol):
    """The calls the record helpers make: ``KeyServiceClient`` and ``testing.FakeKeyService``."""

    def encrypt(
        self,
        key: str,
        plaintexts: Sequence[bytes],
        *,
        context: ContextMap | None = None,
        contexts: Sequence[ContextMap | None] | None = None,
    ) -> list[bytes]:
        """Encrypt each plaintext under ``key`` with its context; order kept."""
        ...

    def decrypt(
        self,
        ciphertexts: Sequence[bytes],
        *,
        context: ContextMap | None = None,
        contexts: Sequence[ContextMap | None] | None = None,
    ) -> list[bytes]:
        """Decrypt each ciphertext with its context; order kept."""
        ...

    def tokenize(self, key: str, values: Sequence[str], *, tweak: bytes = b"") -> list[str]:
        """Tokens for ``values`` under ``key``; order kept."""
        ...

    def detokenize(
        self, key: str, tokens: Sequence[str], *, purpose: str, tweak: bytes = b"", masked: bool = False
    ) -> list[str]:
        """The values behind ``tokens``; ``purpose`` is audited."""
        ...


# -- actions and schema ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Encrypt:
    """Encrypt the field under encryption key ``key`` (reversible with Decrypt).

    Attributes:
        key: Name of a key of purpose ``encrypt``.
    """

    key: str


@dataclass(frozen=True)
class Tokenize:
    """Replace the field (a ``str``) by a token of ``key`` (reversible with Detokenize).

    Attributes:
        key: Name of a key of purpose ``fpe`` or ``vault-token``.
        tweak: FF1 tweak sent with the request. Tokens of the same value under the same
            key and tweak are equal, so leave it empty to keep tokens joinable across fields.
    """

    key: str
    tweak: bytes = b""


@dataclass(frozen=True)
class Mask:
    """Irreversibly mask the field locally (no RPC), e.g. ``"***-**-6789"``.

    Letters and digits are replaced by ``char`` except the first ``keep_first`` and the
    last ``keep_last`` of them; other characters (spaces, dashes, ``@``) stay. A value with
    no more than ``keep_first + keep_last`` letters and digits is masked completely, so a
    short value is never shown whole. With ``replacement`` set, the whole value becomes
    that string instead (for free text: ``Mask(replacement="[REDACTED]")``).

    Attributes:
        keep_last: Letters and digits kept at the end (default 4).
        keep_first: Letters and digits kept at the start (default 0).
        char: The single mask character.
        replacement: When set, the value replacing the whole field.
    """

    keep_last: int = 4
    keep_first: int = 0
    char: str = "*"
    replacement: str | None = None

    def __post_init__(self) -> None:
        if self.keep_last < 0 or self.keep_first < 0:
            raise ValueError("keep_first and keep_last must be >= 0")
        if len(self.char) != 1:
            raise ValueError("char must be a single character")

    def apply(self, value: str) -> str:
        """Return the masked form of ``value``."""
        if self.replacement is not None:
            return self.replacement
        positions = [i for i, ch in enumerate(value) if ch.isalnum()]
        kept = set()
        if len(positions) > self.keep_first + self.keep_last:
            kept = set(positions[: self.keep_first]) | set(positions[len(positions) - self.keep_last :])
        return "".join(ch if i in kept or not ch.isalnum() else self.char for i, ch in enumerate(value))


@dataclass(frozen=True)
class Drop:
    """Remove the field from the record (no RPC; irreversible)."""


Action: TypeAlias = Encrypt | Tokenize | Mask | Drop


@dataclass(frozen=True)
class _Segment:
    name: str
    each: bool  # written "name[]": the value is a list, the rest applies to each element


def _parse_path(path: str) -> tuple[_Segment, ...]:
    if not isinstance(path, str) or not path:
        raise ValueError("a field path must be a non-empty str")
    segments = []
    for part in path.split("."):
        each = part.endswith("[]")
        name = part[:-2] if each else part
        if not name or "[" in name or "]" in name:
            raise ValueError(f"bad field path {path!r}: segments are names or names followed by []")
        segments.append(_Segment(name, each))
    return tuple(segments)


class Schema:
    """Which fields of a record are protected, and how.

    Args:
        fields: Field path (see the module docs) to action.
        context: Extra encryption context for every encrypted field, e.g.
            ``{"app": "orders"}``; it must be given again (the same schema) to reveal.
            The names ``field`` and ``encoding`` are reserved.

    Raises:
        ValueError: A malformed path, a path that is a prefix of another, a reserved
            context name, or ``Drop`` on a ``name[]`` path (drop the list instead).
        TypeError: An action that is not ``Encrypt``, ``Tokenize``, ``Mask`` or ``Drop``,
            or a context that is not a str to str mapping.
    """

    def __init__(self, fields: Mapping[str, Action], *, context: Mapping[str, str] | None = None) -> None:
        context = dict(context or {})
        for name, value in context.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("context keys and values must be str")
            if name in _RESERVED_CONTEXT:
                raise ValueError(f"context name {name!r} is reserved by the record helpers")
        parsed: dict[str, tuple[_Segment, ...]] = {}
        for path, action in fields.items():
            if not isinstance(action, (Encrypt, Tokenize, Mask, Drop)):
                raise TypeError(f"field {path!r}: the action must be Encrypt, Tokenize, Mask or Drop")
            if isinstance(action, (Encrypt, Tokenize)) and (
                not isinstance(action.key, str) or not action.key
            ):
                raise ValueError(f"field {path!r}: the key name must be a non-empty str")
            segments = parsed[path] = _parse_path(path)
            if isinstance(action, Drop) and segments[-1].each:
                raise ValueError(f"field {path!r}: Drop removes a key; drop the list itself")
        names = {path: [s.name for s in segs] for path, segs in parsed.items()}
        for a, a_names in names.items():
            for b, b_names in names.items():
                if a != b and b_names[: len(a_names)] == a_names:
                    raise ValueError(f"field paths {a!r} and {b!r} overlap")
        self._fields: dict[str, Action] = dict(fields)
        self._paths = parsed
        self._context = context

    @property
    def fields(self) -> Mapping[str, Action]:
        """Field path to action, in the order given."""
        return dict(self._fields)

    @property
    def context(self) -> Mapping[str, str]:
        """The extra encryption context of every encrypted field."""
        return dict(self._context)

    def _items(self) -> Iterator[tuple[str, tuple[_Segment, ...], Action]]:
        for path, action in self._fields.items():
            yield path, self._paths[path], action

    def field_context(self, path: str, value_type: ValueType = "str") -> dict[str, str]:
        """The encryption context of the encrypted field ``path`` holding a ``value_type`` value.

        Use it to decrypt a stored value without the record helpers:
        ``client.decrypt([decode_text(v)[0]], context=schema.field_context(path, t))``.
        """
        context = {**self._context, "field": path}
        if value_type != "str":
            context["encoding"] = value_type
        return context

    def __repr__(self) -> str:
        return f"Schema({self._fields!r}, context={self._context!r})"


# -- text form ------------------------------------------------------------------------------------


class CiphertextFormatError(InvalidArgumentError, ValueError):
    """A value in an encrypted field is not a ciphertext in the text form (raised locally).

    The message names the field path, never the value (which may be plaintext).
    """

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str) -> None:
        super().__init__(message, "CIPHERTEXT_FORMAT")


def encode_text(ciphertext: bytes, value_type: ValueType = "str") -> str:
    """Return the text form of a field ciphertext: prefix + unpadded base64url.

    Args:
        ciphertext: A format v1 field ciphertext from Encrypt.
        value_type: What the plaintext was; selects ``ks1:``, ``ks1b:`` or ``ks1j:``.
    """
    prefix = TEXT_PREFIXES[value_type]
    return prefix + base64.urlsafe_b64encode(ciphertext).rstrip(b"=").decode("ascii")


def decode_text(text: str, *, path: str = "") -> tuple[bytes, ValueType]:
    """Return the ciphertext and value type of a text-form ciphertext.

    Args:
        text: A value produced by :func:`encode_text`.
        path: The field path, used only in the error message.

    Raises:
        CiphertextFormatError: ``text`` is not a ``str`` with a known prefix, canonical
            unpadded base64url, and a format v1 field-ciphertext header.
    """
    where = f"field {path!r}: " if path else ""
    expected = "expected 'ks1:', 'ks1b:' or 'ks1j:' followed by unpadded base64url"
    if not isinstance(text, str):
        raise CiphertextFormatError(f"{where}not a keysvc ciphertext: a {type(text).__name__}, {expected}")
    match = _TEXT.match(text)
    if match is None:
        raise CiphertextFormatError(f"{where}not a keysvc ciphertext ({expected})")
    prefix, payload = match.group(1) + ":", match.group(2)
    try:
        ciphertext = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        raise CiphertextFormatError(f"{where}not a keysvc ciphertext (bad base64url)") from None
    if base64.urlsafe_b64encode(ciphertext).rstrip(b"=").decode("ascii") != payload:
        raise CiphertextFormatError(f"{where}not a keysvc ciphertext (non-canonical base64url)")
    if (
        len(ciphertext) < _V1_MIN_FIELD_CIPHERTEXT
        or ciphertext[0] != 1
        or ciphertext[1] != 1
        or ciphertext[2] == 0
        or len(ciphertext) < 3 + ciphertext[2] + 4 + 12 + 16
    ):
        raise CiphertextFormatError(f"{where}not a keysvc field ciphertext (format v1)")
    return ciphertext, _TYPE_BY_PREFIX[prefix]


def _encode_value(value: object, path: str) -> tuple[bytes, ValueType]:
    if isinstance(value, str):
        return value.encode("utf-8"), "str"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), "bytes"
    if isinstance(value, (bool, int, float, list, tuple, dict)):
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"field {path!r}: the value is not JSON-serialisable ({type(exc).__name__})"
            ) from None
        return text.encode("utf-8"), "json"
    raise TypeError(
        f"field {path!r}: cannot encrypt a {type(value).__name__}; use str, bytes or a JSON value"
    )


def _decode_value(plaintext: bytes, value_type: ValueType) -> object:
    if value_type == "str":
        return plaintext.decode("utf-8")
    if value_type == "bytes":
        return plaintext
    return json.loads(plaintext.decode("utf-8"))


# -- walking records ------------------------------------------------------------------------------


def _copy_records(records: Sequence[Record]) -> list[dict[str, Any]]:
    out = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"record {index} is a {type(record).__name__}, not a mapping")
        out.append(_copy(record))
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass
class _Slot:
    """Where one present, non-None value lives in a (copied) record."""

    container: dict[str, Any] | list[Any]
    key: str | int
    path: str  # concrete, e.g. "calls[2].notes"

    def get(self) -> Any:
        return self.container[self.key]  # type: ignore[index]

    def set(self, value: Any) -> None:
        self.container[self.key] = value  # type: ignore[index]


def _slots(record: dict[str, Any], segments: Sequence[_Segment]) -> Iterator[_Slot]:
    """Every present, non-None value at ``segments``; missing or None parents are skipped."""

    def walk(node: dict[str, Any], depth: int, prefix: str) -> Iterator[_Slot]:
        segment = segments[depth]
        last = depth == len(segments) - 1
        here = f"{prefix}.{segment.name}" if prefix else segment.name
        if segment.name not in node or node[segment.name] is None:
            return
        value = node[segment.name]
        if not segment.each:
            if last:
                yield _Slot(node, segment.name, here)
            elif isinstance(value, dict):
                yield from walk(value, depth + 1, here)
            else:
                raise TypeError(f"field {here!r}: expected a mapping, found a {type(value).__name__}")
            return
        if not isinstance(value, list):
            raise TypeError(f"field {here + '[]'!r}: expected a list, found a {type(value).__name__}")
        for index, element in enumerate(value):
            at = f"{here}[{index}]"
            if element is None:
                continue
            if last:
                yield _Slot(value, index, at)
            elif isinstance(element, dict):
                yield from walk(element, depth + 1, at)
            else:
                raise TypeError(f"field {at!r}: expected a mapping, found a {type(element).__name__}")

    yield from walk(record, 0, "")


# -- batching -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One field of one record that the service refused.

    Attributes:
        record: Index of the record in the call's input list (0 for the single-record calls).
        path: Concrete path of the field, e.g. ``"calls[2].notes"``.
        error: The typed error of that item (e.g. ``DecryptionError``).
    """

    record: int
    path: str
    error: KeysvcError


class RecordBatchError(BatchError[dict[str, Any]]):
    """Some fields of some records failed; the other fields were processed.

    ``results`` has one :class:`~keysvc_client.ItemResult` per input record: its ``value``
    is the finished record when all of its fields succeeded (else ``None``), its ``error``
    the first failing field's error, and its ``reference`` the record's index as a str.
    ``fields`` lists every failing field.
    """

    def __init__(self, results: Sequence[ItemResult[dict[str, Any]]], fields: Sequence[FieldError]) -> None:
        super().__init__(results)
        self.fields = list(fields)
        self.message = f"{len(self.fields)} field(s) failed in {len(self.errors)} of {len(results)} records"
        self.args = (self.message,)


@dataclass
class _Pending:
    """Values waiting for one kind of RPC, with where each result goes."""

    slots: list[tuple[int, _Slot]]
    inputs: list[Any]
    contexts: list[ContextMap]
    types: list[ValueType]


def _new_pending() -> _Pending:
    return _Pending([], [], [], [])


def _chunks(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


def _run(
    pending: _Pending,
    call: Callable[[slice], list[Any]],
    place: Callable[[_Slot, Any, int], None],
    max_batch: int,
    failures: list[FieldError],
) -> None:
    """Send ``pending`` in chunks of ``max_batch``; place results; collect per-item failures."""
    for part in _chunks(len(pending.inputs), max_batch):
        try:
            outputs: Sequence[Any] = call(part)
            errors: Sequence[KeysvcError | None] = [None] * len(outputs)
        except BatchError as exc:
            outputs = [r.value for r in exc.results]
            errors = [r.error for r in exc.results]
        for offset, (output, error) in enumerate(zip(outputs, errors, strict=True)):
            index = part.start + offset
            record, slot = pending.slots[index]
            if error is not None:
                failures.append(FieldError(record, slot.path, error))
            else:
                place(slot, output, index)


def _finish(records: list[dict[str, Any]], failures: list[FieldError]) -> list[dict[str, Any]]:
    if not failures:
        return records
    first: dict[int, KeysvcError] = {}
    for failure in failures:
        first.setdefault(failure.record, failure.error)
    results = [
        ItemResult(None, first[i], str(i)) if i in first else ItemResult(record, None, str(i))
        for i, record in enumerate(records)
    ]
    raise RecordBatchError(results, failures)


def _check_max_batch(max_batch: int) -> None:
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")


def protect_records(
    client: RecordClient, records: Sequence[Record], schema: Schema, *, max_batch: int = DEFAULT_MAX_BATCH
) -> list[dict[str, Any]]:
    """Protect the schema's fields of every record, batching all records together.

    Makes one Encrypt RPC per encryption key and one Tokenize RPC per (token key, tweak)
    for all records at once (more only beyond ``max_batch`` items per RPC; see the module
    docs); masks and drops locally.

    Args:
        client: ``KeyServiceClient``, ``testing.FakeKeyService`` or anything with its calls.
        records: Plain dicts (any mappings); never modified.
        schema: The fields to protect and how.
        max_batch: Most items sent in one RPC.

    Returns:
        New records, in input order, with protected fields replaced (or removed).

    Raises:
        TypeError: A value of a type the action cannot take, or a path through a non-mapping.
        RecordBatchError: Some items were refused; the others were processed.
        KeysvcError: The service refused a whole call (unknown key, wrong key purpose, ...).
    """
    _check_max_batch(max_batch)
    out = _copy_records(records)
    encrypts: dict[str, _Pending] = {}
    tokens: dict[tuple[str, bytes], _Pending] = {}
    drops: list[_Slot] = []
    for path, segments, action in schema._items():
        for index, record in enumerate(out):
            for slot in _slots(record, segments):
                value = slot.get()
                if isinstance(action, Encrypt):
                    plaintext, value_type = _encode_value(value, slot.path)
                    batch = encrypts.setdefault(action.key, _new_pending())
                    batch.slots.append((index, slot))
                    batch.inputs.append(plaintext)
                    batch.contexts.append(schema.field_context(path, value_type))
                    batch.types.append(value_type)
                elif isinstance(action, Tokenize):
                    if not isinstance(value, str):
                        raise TypeError(f"field {slot.path!r}: only str values can be tokenized")
                    batch = tokens.setdefault((action.key, action.tweak), _new_pending())
                    batch.slots.append((index, slot))
                    batch.inputs.append(value)
                elif isinstance(action, Mask):
                    if isinstance(value, bool) or not isinstance(value, (str, int)):
                        raise TypeError(f"field {slot.path!r}: only str and int values can be masked")
                    slot.set(action.apply(str(value)))
                else:
                    drops.append(slot)

    failures: list[FieldError] = []
    for key, batch in encrypts.items():

        def encrypt(part: slice, key: str = key, batch: _Pending = batch) -> list[Any]:
            return client.encrypt(key, batch.inputs[part], contexts=batch.contexts[part])

        def place_ct(slot: _Slot, ciphertext: Any, i: int, batch: _Pending = batch) -> None:
            slot.set(encode_text(ciphertext, batch.types[i]))

        _run(batch, encrypt, place_ct, max_batch, failures)
    for (key, tweak), batch in tokens.items():

        def tokenize(part: slice, key: str = key, tweak: bytes = tweak, batch: _Pending = batch) -> list[Any]:
            return client.tokenize(key, batch.inputs[part], tweak=tweak)

        _run(batch, tokenize, lambda slot, token, _i: slot.set(token), max_batch, failures)
    for slot in drops:
        del slot.container[slot.key]  # type: ignore[arg-type]  # Drop never targets a list element
    return _finish(out, failures)


def protect_record(
    client: RecordClient, record: Record, schema: Schema, *, max_batch: int = DEFAULT_MAX_BATCH
) -> dict[str, Any]:
    """Protect one record: :func:`protect_records` with a list of one.

    Args:
        client: ``KeyServiceClient``, ``testing.FakeKeyService`` or anything with its calls.
        record: A plain dict (any mapping); never modified.
        schema: The fields to protect and how.
        max_batch: Most items sent in one RPC.

    Returns:
        A new record with the protected fields replaced (or removed).

    Raises:
        TypeError: A value of a type the action cannot take.
        RecordBatchError: Some fields were refused.
        KeysvcError: The service refused a whole call.
    """
    return protect_records(client, [record], schema, max_batch=max_batch)[0]


def reveal_records(
    client: RecordClient,
    records: Sequence[Record],
    schema: Schema,
    *,
    purpose: str,
    masked: bool = False,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> list[dict[str, Any]]:
    """Decrypt and detokenize the schema's fields of every record, batching all records together.

    Makes one Decrypt RPC for all encrypted fields (whatever their keys) and one
    Detokenize RPC per (token key, tweak), more only beyond ``max_batch`` items per RPC.
    Masked and dropped fields stay as they are.

    Args:
        client: ``KeyServiceClient``, ``testing.FakeKeyService`` or anything with its calls.
        records: Records as returned by :func:`protect_records` (after storage); never modified.
        schema: The same schema (and context) used to protect them.
        purpose: Why the values are revealed; sent with every Detokenize and audited
            (Decrypt carries no purpose: it is audited under the caller's identity).
        masked: Ask Detokenize for masked values (``REVEAL_MASKED``).
        max_batch: Most items sent in one RPC.

    Returns:
        New records with encrypted and tokenized fields restored (values keep the type
        they had: ``str``, ``bytes`` or the JSON value).

    Raises:
        ValueError: ``purpose`` is empty.
        CiphertextFormatError: An encrypted field does not hold a text-form ciphertext.
        TypeError: A tokenized field does not hold a ``str``.
        RecordBatchError: Some items did not decrypt or detokenize; the others did.
        KeysvcError: The service refused a whole call.
    """
    if not isinstance(purpose, str) or not purpose.strip():
        raise ValueError("purpose is required: say why the values are revealed")
    _check_max_batch(max_batch)
    out = _copy_records(records)
    decrypts = _new_pending()
    tokens: dict[tuple[str, bytes], _Pending] = {}
    for path, segments, action in schema._items():
        if not isinstance(action, (Encrypt, Tokenize)):
            continue
        for index, record in enumerate(out):
            for slot in _slots(record, segments):
                value = slot.get()
                if isinstance(action, Encrypt):
                    ciphertext, value_type = decode_text(value, path=slot.path)
                    decrypts.slots.append((index, slot))
                    decrypts.inputs.append(ciphertext)
                    decrypts.contexts.append(schema.field_context(path, value_type))
                    decrypts.types.append(value_type)
                else:
                    if not isinstance(value, str):
                        raise TypeError(f"field {slot.path!r}: a token must be a str")
                    batch = tokens.setdefault((action.key, action.tweak), _new_pending())
                    batch.slots.append((index, slot))
                    batch.inputs.append(value)

    failures: list[FieldError] = []

    def decrypt(part: slice) -> list[Any]:
        return client.decrypt(decrypts.inputs[part], contexts=decrypts.contexts[part])

    def place_pt(slot: _Slot, plaintext: Any, i: int) -> None:
        slot.set(_decode_value(plaintext, decrypts.types[i]))

    _run(decrypts, decrypt, place_pt, max_batch, failures)
    for (key, tweak), batch in tokens.items():

        def detokenize(
            part: slice, key: str = key, tweak: bytes = tweak, batch: _Pending = batch
        ) -> list[Any]:
            return client.detokenize(key, batch.inputs[part], purpose=purpose, tweak=tweak, masked=masked)

        _run(batch, detokenize, lambda slot, value, _i: slot.set(value), max_batch, failures)
    return _finish(out, failures)


def reveal_record(
    client: RecordClient,
    record: Record,
    schema: Schema,
    *,
    purpose: str,
    masked: bool = False,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> dict[str, Any]:
    """Reveal one record: :func:`reveal_records` with a list of one.

    Args:
        client: ``KeyServiceClient``, ``testing.FakeKeyService`` or anything with its calls.
        record: A record as returned by :func:`protect_record`; never modified.
        schema: The same schema used to protect it.
        purpose: Why the values are revealed (audited with Detokenize).
        masked: Ask Detokenize for masked values.
        max_batch: Most items sent in one RPC.

    Returns:
        A new record with encrypted and tokenized fields restored.

    Raises:
        ValueError: ``purpose`` is empty.
        CiphertextFormatError: An encrypted field does not hold a text-form ciphertext.
        RecordBatchError: Some fields did not decrypt or detokenize.
        KeysvcError: The service refused a whole call.
    """
    return reveal_records(client, [record], schema, purpose=purpose, masked=masked, max_batch=max_batch)[0]
