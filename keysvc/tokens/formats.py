"""Token formats for keys of purpose ``fpe`` (and random tokens for ``vault-token`` keys).

A key's format comes from ``keysvc-admin keys create NAME --purpose fpe --format F
[--format-option K=V ...]`` as a ``FormatSpec``; ``make_format`` checks it and returns a
``TokenFormat``. The service builds one ``FF1(dek, fmt.alphabet)`` per key version and calls
the batch methods; per-item failures come back as ``InvalidArgument`` instances in the result
list (never raised), and no message ever contains the value or token.

==============  ========================================================================
format          what is encrypted (FF1), what stays in clear; options
==============  ========================================================================
digits          every ASCII digit; all other characters stay in place. >= 6 digits.
alphanumeric    every ``[0-9A-Za-z]`` character over that 62-symbol alphabet; others stay.
                Case is part of the value: the token's letters may have any case and an
                all-caps input gives a mixed-case token. For case-insensitive identifiers
                use ``custom`` with ``alphabet=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ``. >= 4.
pan             ``keysvc.tokens.pan``: BIN / last four kept where the domain allows, Luhn
                policy, key version marker. Options keep_prefix, keep_suffix, luhn.
ssn             ``keysvc.tokens.ssn``: vaulted 9XX tokens; FF1 only with allow_issuable=true.
phone           ``keysvc.tokens.contact``: country code kept. Option region (default US).
email           ``keysvc.tokens.contact``: local part over 0-9a-z, domain kept.
custom          options ``alphabet`` and ``pattern`` (a regex the whole value must match).
                Named groups ``keep`` or ``keep_*`` stay in clear (and are bound into the
                tweak); every other character in the alphabet is encrypted, the rest stays.
                A token must match the pattern again, with the same kept parts, or the
                item is refused: give every encrypted position a class that accepts the
                whole alphabet (``(?P<keep>[A-Z]{2})-[0-9A-Z]{6}`` with alphabet 0-9A-Z).
==============  ========================================================================

Key versions: only ``pan`` with ``luhn=invalid`` has room for a marker
(``marker_for``/``version_marker``, the version modulo 9); for every other format the service
must know the version from elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast, get_args

import phonenumbers

from keysvc.crypto.ff1 import FF1, MAX_RADIX
from keysvc.errors import InvalidArgument
from keysvc.tokens._positional import PositionalFormat, Result, Slots, slots_in
from keysvc.tokens.contact import EmailFormat, PhoneFormat
from keysvc.tokens.pan import LuhnPolicy, PanFormat
from keysvc.tokens.ssn import REFUSED_FOR_FPE, SsnFormat

PURPOSES = ("fpe", "vault-token")
ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class FormatSpec:
    """A format name and its options, as given to ``keysvc-admin keys create``."""

    name: str
    options: Mapping[str, str] = field(default_factory=dict)


class TokenFormat(Protocol):
    """What the tokenization service uses; ``make_format`` builds the implementations.

    Attributes:
        name: the format name.
        alphabet: FF1 alphabet; build the cipher as ``FF1(key, fmt.alphabet)``.
    """

    name: str
    alphabet: str

    def tokenize_batch(self, cipher: FF1, values: Sequence[str], tweak: bytes, version: int) -> list[Result]:
        """Tokenize ``values`` with the cipher of key version ``version``, order kept."""
        ...

    def detokenize_batch(self, cipher: FF1, tokens: Sequence[str], tweak: bytes) -> list[Result]:
        """Recover the values of ``tokens`` made with ``cipher`` and ``tweak``."""
        ...

    def version_marker(self, token: str) -> int | None:
        """Marker carried by the token, None if the format has no room (InvalidArgument if malformed)."""
        ...

    def marker_for(self, version: int) -> int | None:
        """Marker a token made under ``version`` carries, None if the format has no room."""
        ...

    def mask(self, value: str) -> str:
        """Masked reveal of a value, e.g. ``************1111`` (InvalidArgument if malformed)."""
        ...

    def random_token(self, value: str, rand: Callable[[int], bytes]) -> str:
        """Random token of the value's format for vaulted mode (``rand`` like ``os.urandom``)."""
        ...

    def validate(self, value: str) -> None:
        """Raise InvalidArgument unless ``value`` can be tokenized."""
        ...

    def describe(self) -> dict[str, str]:
        """Effective settings, for key metadata."""
        ...


class DigitsFormat(PositionalFormat):
    """FF1 radix 10 over every ASCII digit; other characters stay in place."""

    name = "digits"
    unit = "digits"
    alphabet_slots = True

    def __init__(self) -> None:
        super().__init__("0123456789")

    def _slots(self, value: str, token: bool) -> Slots:
        return slots_in(value, self.charset)


class AlphanumericFormat(PositionalFormat):
    """FF1 over ``[0-9A-Za-z]`` (radix 62, case-sensitive); other characters stay in place."""

    name = "alphanumeric"
    unit = "letters and digits"
    alphabet_slots = True

    def __init__(self) -> None:
        super().__init__(ALPHANUMERIC)

    def _slots(self, value: str, token: bool) -> Slots:
        return slots_in(value, self.charset)


class CustomFormat(PositionalFormat):
    """Operator-defined: ``pattern`` says what is kept, ``alphabet`` what is encrypted.

    Args:
        alphabet: FF1 alphabet (2..65,536 distinct characters).
        pattern: regex the whole value must match; groups ``keep``/``keep_*`` stay in clear.
    """

    name = "custom"

    def __init__(self, alphabet: str, pattern: re.Pattern[str]) -> None:
        super().__init__(alphabet)
        self.pattern = pattern
        self._keep = [g for g in pattern.groupindex if g == "keep" or g.startswith("keep_")]

    def _slots(self, value: str, token: bool) -> Slots:
        match = self.pattern.fullmatch(value)
        if match is None:
            raise InvalidArgument("custom value does not match the format's pattern")
        kept_at: set[int] = set()
        for group in self._keep:
            start, end = match.span(group)
            kept_at.update(range(start, end))
        positions = tuple(i for i, ch in enumerate(value) if ch in self.charset and i not in kept_at)
        kept = tuple(match.group(g) or "" for g in self._keep)
        return Slots(value, "".join(value[i] for i in positions), positions, kept)

    def _finish(self, slots: Slots, result: str, encrypt: bool) -> Result:
        try:
            again = self._slots(result, not encrypt)
        except InvalidArgument:
            again = None
        if again is None or again.positions != slots.positions or again.kept != slots.kept:
            return InvalidArgument(
                "custom token would not match the format's pattern: every encrypted position "
                "must accept the whole alphabet"
            )
        return result

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "pattern": self.pattern.pattern}


_OPTIONS: dict[str, tuple[str, ...]] = {
    "digits": (),
    "alphanumeric": (),
    "pan": ("keep_prefix", "keep_suffix", "luhn"),
    "ssn": ("allow_issuable",),
    "phone": ("region",),
    "email": (),
    "custom": ("alphabet", "pattern"),
}


def make_format(spec: FormatSpec, *, purpose: str = "fpe") -> TokenFormat:
    """Build the format a key uses.

    Args:
        spec: format name and options.
        purpose: the key's purpose, ``fpe`` or ``vault-token`` (``ssn`` depends on it).

    Raises:
        InvalidArgument: unknown format or option, bad option value, or a combination that
            could produce weak tokens.
    """
    if purpose not in PURPOSES:
        raise InvalidArgument(f"token formats are for keys of purpose {' or '.join(PURPOSES)}")
    allowed = _OPTIONS.get(spec.name)
    if allowed is None:
        raise InvalidArgument(f"unknown token format; known formats: {', '.join(_OPTIONS)}")
    unknown = sorted(set(spec.options) - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"unknown {spec.name} format option {unknown[0]}; allowed: {', '.join(allowed) or 'none'}"
        )
    options = _Options(spec)
    built: TokenFormat
    if spec.name == "digits":
        built = DigitsFormat()
    elif spec.name == "alphanumeric":
        built = AlphanumericFormat()
    elif spec.name == "pan":
        luhn = cast(LuhnPolicy, options.choice("luhn", get_args(LuhnPolicy), "invalid"))
        built = PanFormat(
            options.integer("keep_prefix", 6, 0, 8), options.integer("keep_suffix", 4, 0, 7), luhn
        )
    elif spec.name == "ssn":
        allow = options.flag("allow_issuable")
        if purpose == "fpe" and not allow:
            raise InvalidArgument(REFUSED_FOR_FPE)
        built = SsnFormat(allow_fpe=allow)
    elif spec.name == "phone":
        region = options.text("region", "US").upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidArgument("phone format option region must be a supported ISO 3166 region code")
        built = PhoneFormat(region)
    elif spec.name == "email":
        built = EmailFormat()
    else:
        built = CustomFormat(
            _custom_alphabet(options.required("alphabet")), _pattern(options.required("pattern"))
        )
    return built


class _Options:
    """Typed access to a spec's options."""

    def __init__(self, spec: FormatSpec) -> None:
        self.format = spec.name
        self.values = dict(spec.options)

    def text(self, name: str, default: str) -> str:
        return self.values.get(name, default)

    def required(self, name: str) -> str:
        if name not in self.values:
            raise InvalidArgument(f"{self.format} format needs the option {name}")
        return self.text(name, "")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name, str(default))
        if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
            raise InvalidArgument(
                f"{self.format} format option {name} must be an integer from {low} to {high}"
            )
        return int(raw)

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self.text(name, default)
        if raw not in allowed:
            raise InvalidArgument(f"{self.format} format option {name} must be one of {', '.join(allowed)}")
        return raw

    def flag(self, name: str) -> bool:
        return self.choice(name, ("true", "false"), "false") == "true"


def _custom_alphabet(alphabet: str) -> str:
    if not 2 <= len(alphabet) <= MAX_RADIX or len(set(alphabet)) != len(alphabet):
        raise InvalidArgument(f"custom format alphabet must have 2 to {MAX_RADIX} distinct characters")
    return alphabet


def _pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error:
        raise InvalidArgument("custom format pattern is not a valid regular expression") from None
