"""Machinery shared by the FF1 token formats.

A format parses a value (or a token) into ``Slots``: the characters FF1 works on, where they
sit in the string, and the parts kept in clear. Tokenizing encrypts the free characters and
writes them back into the same places, so separators, country codes or domains stay put.

Tweak binding: parts a format keeps in clear (a PAN's BIN and last four digits, an email's
domain, a phone number's country code) are bound into the FF1 tweak, as SP 800-38G
Appendix C suggests, so equal free digits under different clear parts give unrelated tokens
and a token cannot be moved onto other clear parts. The tweak for kept parts k1..kn is
``u32(len(T)) || T || u32(len(k1)) || utf8(k1) || ... || u32(len(kn)) || utf8(kn)``, with T the
caller's tweak and u32 a 4-byte big-endian length; with no kept parts FF1 gets T itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from keysvc.crypto.ff1 import FF1, MAX_LENGTH, MIN_DOMAIN
from keysvc.errors import InvalidArgument

Result = str | InvalidArgument
Rand = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Slots:
    """Where a value's FF1 characters sit.

    Attributes:
        text: the value (normalised, where the format normalises).
        free: the characters FF1 works on, in order.
        positions: their indexes in ``text``; None when all of ``text`` is free.
        kept: parts kept in clear that are bound into the tweak.
    """

    text: str
    free: str
    positions: tuple[int, ...] | None = None
    kept: tuple[str, ...] = ()

    def fill(self, chars: str) -> str:
        """``text`` with the free characters replaced by ``chars`` (same count)."""
        if self.positions is None:
            return chars
        out = list(self.text)
        for pos, ch in zip(self.positions, chars, strict=True):
            out[pos] = ch
        return "".join(out)


def slots_in(text: str, charset: frozenset[str], kept: tuple[str, ...] = ()) -> Slots:
    """Slots for "every character of ``charset`` is free, everything else stays"."""
    positions = tuple(i for i, ch in enumerate(text) if ch in charset)
    if len(positions) == len(text):
        return Slots(text, text, None, kept)
    return Slots(text, "".join(text[i] for i in positions), positions, kept)


def bind_tweak(tweak: bytes, kept: Sequence[str]) -> bytes:
    """The FF1 tweak for a value whose ``kept`` parts stay in clear (see the module docstring)."""
    out = [len(tweak).to_bytes(4, "big"), tweak]
    for part in kept:
        data = part.encode("utf-8", "surrogatepass")
        out += [len(data).to_bytes(4, "big"), data]
    return b"".join(out)


def min_free(radix: int) -> int:
    """Fewest FF1 characters over ``radix`` symbols that give a domain of at least 10^6."""
    return max(2, next(n for n in range(1, 21) if radix**n >= MIN_DOMAIN))


def random_below(bound: int, rand: Rand) -> int:
    """A uniform integer in [0, bound) from ``rand`` bytes (rejection sampling, no modulo bias)."""
    size = max(1, (bound.bit_length() + 7) // 8) + 1
    limit = (256**size // bound) * bound
    while True:
        x = int.from_bytes(rand(size), "big")
        if x < limit:
            return x % bound


def random_text(alphabet: str, count: int, rand: Rand) -> str:
    """``count`` characters drawn uniformly from ``alphabet``."""
    return "".join(alphabet[random_below(len(alphabet), rand)] for _ in range(count))


Codes = npt.NDArray[np.uint8]


def ascii_rows(values: list[str]) -> Codes | None:
    """The values as an (N, L) matrix of ASCII codes, if all are ASCII and of one length L.

    Values with NUL characters are left out: ``row_texts`` could not give them back.
    """
    joined = "".join(values)
    if not values or not joined.isascii() or "\x00" in joined:
        return None
    lengths = list(map(len, values))
    if min(lengths) != max(lengths):
        return None
    return np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(values), lengths[0])


def row_texts(codes: Codes) -> list[str]:
    """Rows of ASCII codes (no NULs: a NumPy str array drops trailing ones) as strings."""
    wide = np.ascontiguousarray(codes, dtype=np.uint32)
    texts: list[str] = wide.view(f"<U{codes.shape[1]}").ravel().tolist()
    return texts


def uniform_columns(free: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_] | None:
    """The shared free-column mask when every row has its free characters in the same columns."""
    columns = free[0]
    return columns if bool((free == columns).all()) else None


def check_version(version: int) -> None:
    if version < 1:
        raise ValueError("key versions start at 1")


class PositionalFormat:
    """Base of the FF1 formats: subclasses implement ``_slots``; batches go through FF1 batches.

    Attributes:
        name: format name, as in ``FormatSpec.name``.
        alphabet: the FF1 alphabet; the service builds ``FF1(key, fmt.alphabet)``.
        min_free: fewest free characters (FF1 domain >= 10^6).
    """

    name = "positional"
    unit = "characters"  # what the free characters are called in error messages
    reveal = 4  # mask: trailing free characters left visible ...
    reveal_min = 10  # ... when the value has at least this many

    alphabet_slots = False  # True: _slots is slots_in(value, charset); enables the vectorised path

    def __init__(self, alphabet: str) -> None:
        self.alphabet = alphabet
        self.charset = frozenset(alphabet)
        self.min_free = min_free(len(alphabet))
        self._ascii_free = np.zeros(256, dtype=bool)
        if alphabet.isascii():
            self._ascii_free[np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)] = True

    def _slots(self, value: str, token: bool) -> Slots:
        """Parse a value (``token`` False) or a token; raise InvalidArgument when malformed."""
        raise NotImplementedError

    def _finish(self, slots: Slots, result: str, encrypt: bool) -> Result:
        """Hook to check or adjust one output; the default returns it."""
        return result

    def slots(self, value: str, token: bool = False) -> Slots:
        """``_slots`` plus the FF1 length rules.

        Raises:
            InvalidArgument: malformed, too short for a 10^6 domain, or too long.
        """
        slots = self._slots(value, token)
        if len(slots.free) < self.min_free:
            raise InvalidArgument(
                f"{self.name} value has too few {self.unit} to tokenize: at least {self.min_free} are "
                f"needed for an FF1 domain of at least {MIN_DOMAIN:,}"
            )
        if len(slots.free) > MAX_LENGTH:
            raise InvalidArgument(f"{self.name} value is too long: at most {MAX_LENGTH} {self.unit}")
        return slots

    def validate(self, value: str) -> None:
        """Raise InvalidArgument unless ``value`` can be tokenized by this format."""
        self.slots(value)

    def tokenize_batch(self, cipher: FF1, values: Sequence[str], tweak: bytes, version: int) -> list[Result]:
        """Tokenize values under the key version ``version``; bad items become InvalidArgument."""
        check_version(version)
        return self._run(cipher, values, tweak, True, version)

    def detokenize_batch(self, cipher: FF1, tokens: Sequence[str], tweak: bytes) -> list[Result]:
        """Invert ``tokenize_batch`` (same cipher and tweak); bad items become InvalidArgument."""
        return self._run(cipher, tokens, tweak, False, 0)

    def version_marker(self, token: str) -> int | None:
        """None: these tokens have no room for a version (InvalidArgument if malformed)."""
        self.slots(token, token=True)
        return None

    def marker_for(self, version: int) -> int | None:
        """None: these tokens carry no version marker."""
        check_version(version)
        return None

    def mask(self, value: str) -> str:
        """Free characters as ``*``, except the last ``reveal`` when there are ``reveal_min``."""
        slots = self.slots(value)
        shown = self.reveal if len(slots.free) >= self.reveal_min else 0
        hidden = len(slots.free) - shown
        return slots.fill("*" * hidden + slots.free[hidden:])

    def random_token(self, value: str, rand: Rand) -> str:
        """A token of the value's shape with uniformly random free characters (vaulted mode)."""
        slots = self.slots(value)
        return slots.fill(random_text(self.alphabet, len(slots.free), rand))

    def describe(self) -> dict[str, str]:
        """The effective settings, for key metadata (``keys show``)."""
        return {"format": self.name, "alphabet": self.alphabet, "min_free": str(self.min_free)}

    def _check_cipher(self, cipher: FF1) -> None:
        if cipher.alphabet != self.alphabet:
            raise ValueError(f"the {self.name} format needs an FF1 cipher over its own alphabet")

    def _run_uniform(
        self, apply: Callable[[list[str], bytes], list[str]], rows: Codes, tweak: bytes
    ) -> list[Result] | None:
        """Vectorised path for ASCII values that all share one layout; None if they do not."""
        columns = uniform_columns(self._ascii_free[rows])
        if columns is None or not self.min_free <= int(columns.sum()) <= MAX_LENGTH:
            return None
        if columns.all():
            out: list[Result] = list(apply(row_texts(rows), tweak))
            return out
        free = apply(row_texts(rows[:, columns]), tweak)
        codes = rows.copy()
        codes[:, columns] = np.frombuffer("".join(free).encode("ascii"), dtype=np.uint8).reshape(
            len(rows), -1
        )
        return list(row_texts(codes))

    def _run(
        self, cipher: FF1, values: Sequence[str], tweak: bytes, encrypt: bool, version: int
    ) -> list[Result]:
        self._check_cipher(cipher)
        apply = cipher.encrypt_batch if encrypt else cipher.decrypt_batch
        values = list(values)
        rows = ascii_rows(values) if self.alphabet_slots else None
        if rows is not None:
            fast = self._run_uniform(apply, rows, tweak)
            if fast is not None:
                return fast
        results: list[Result] = []
        good: list[tuple[int, Slots]] = []
        for i, value in enumerate(values):
            try:
                good.append((i, self.slots(value, token=not encrypt)))
                results.append("")
            except InvalidArgument as exc:
                results.append(exc)
        if good:
            frees = [slots.free for _, slots in good]
            if any(slots.kept for _, slots in good):
                outputs = apply(frees, [bind_tweak(tweak, slots.kept) for _, slots in good])
            else:
                outputs = apply(frees, tweak)
            for (i, slots), out in zip(good, outputs, strict=True):
                results[i] = self._finish(slots, slots.fill(out), encrypt)
        return results
