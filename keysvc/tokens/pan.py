"""The ``pan`` format: card numbers (13-19 digits, spaces and dashes kept in place).

Layout of a token for an n-digit PAN, left to right::

    [kept prefix: p digits][FF1: e digits][carrier: 1 digit][kept suffix: s digits]

* ``s = keep_suffix`` (default 4: the last four stay in clear).
* ``p = min(keep_prefix, n - s - carrier - 6)``: the BIN (default 6 digits) stays in clear
  only where the digits left still give FF1 a domain of at least 10^6; otherwise fewer prefix
  digits are kept (``describe()["kept_prefix_by_length"]``). A weak token is never produced.
* Carrier, with ``luhn=invalid`` (default) or ``luhn=valid``: the input must pass Luhn, so
  one of its middle digits is determined by the others and only ``n - p - s - 1`` digits carry
  information. The carrier is the middle digit next to the suffix: FF1 encrypts the other
  middle digits (domain 10^e, e >= 6), then the carrier is set so that the token's Luhn residue
  is a chosen value. Detokenizing decrypts the e digits and recomputes the carrier so that the
  PAN passes Luhn again. With ``luhn=any`` there is no carrier and all middle digits are FF1'd.

With the defaults a 16-digit PAN keeps 5 leading digits, not 6: 16 - 4 - 1 = 11 digits are
not in the suffix or the carrier, and 6 of them must be encrypted.

Luhn policy and key version marker:

* ``invalid``: every token fails Luhn, so it can never be mistaken for (or charged as) a card
  number. Its residue is ``1 + (version - 1) % 9``: the key version that made the token can be
  read off the token itself (``version_marker``), modulo 9.
* ``valid``: tokens pass Luhn (residue 0) and carry no marker.
* ``any``: no Luhn constraint on inputs or tokens, no marker.

The kept prefix and suffix digits are bound into the FF1 tweak (see ``_positional``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from keysvc.crypto.ff1 import FF1
from keysvc.errors import InvalidArgument
from keysvc.tokens import luhn
from keysvc.tokens._positional import (
    PositionalFormat,
    Rand,
    Result,
    Slots,
    ascii_rows,
    check_version,
    random_below,
    random_text,
    row_texts,
    uniform_columns,
)

LuhnPolicy = Literal["invalid", "valid", "any"]
MIN_DIGITS, MAX_DIGITS = 13, 19
_DIGITS = "0123456789"
_SEPARATORS = frozenset(" -")
_SEPARATOR_CODES = np.frombuffer(b" -", dtype=np.uint8)
_FREE = 6  # 10^6: the FF1 domain floor


class PanFormat(PositionalFormat):
    """Card numbers; see the module docstring for the layout and the Luhn policy.

    Args:
        keep_prefix: leading digits to keep when the domain allows (0..8, default 6).
        keep_suffix: trailing digits to keep (default 4).
        luhn: ``invalid`` (default), ``valid`` or ``any``.
    """

    name = "pan"
    unit = "digits"

    def __init__(self, keep_prefix: int = 6, keep_suffix: int = 4, luhn: LuhnPolicy = "invalid") -> None:
        super().__init__(_DIGITS)
        self.keep_prefix = keep_prefix
        self.keep_suffix = keep_suffix
        self.luhn = luhn
        self.carrier = 0 if luhn == "any" else 1
        if MIN_DIGITS - keep_suffix - self.carrier < _FREE:
            raise InvalidArgument(
                f"pan: keep_suffix={keep_suffix} leaves fewer than {_FREE} encrypted digits in a "
                f"{MIN_DIGITS}-digit card number (FF1 domain below 10^6)"
            )
        self._allowed = self.charset | _SEPARATORS

    def layout(self, n: int) -> tuple[int, int, int]:
        """(kept prefix digits, FF1 digits, kept suffix digits) for an n-digit PAN."""
        prefix = max(0, min(self.keep_prefix, n - self.keep_suffix - self.carrier - _FREE))
        return prefix, n - prefix - self.keep_suffix - self.carrier, self.keep_suffix

    def marker_for(self, version: int) -> int | None:
        """The Luhn residue of tokens made under ``version`` (``luhn=invalid`` only)."""
        check_version(version)
        return 1 + (version - 1) % 9 if self.luhn == "invalid" else None

    def version_marker(self, token: str) -> int | None:
        """The token's Luhn residue (1..9) with ``luhn=invalid``, else None.

        Raises:
            InvalidArgument: not a token of this format.
        """
        slots = self.slots(token, token=True)
        return luhn.residue(slots.free) if self.luhn == "invalid" else None

    def _slots(self, value: str, token: bool) -> Slots:
        slots = self._structure(value)
        if self.luhn != "any" and not self._luhn_ok(luhn.residue(slots.free), token):
            raise self._luhn_error(token)
        return slots

    def _structure(self, value: str) -> Slots:
        """Digits, separators and length; Luhn is checked by the caller."""
        if value.isascii() and value.isdigit():
            slots = Slots(value, value)
        elif self._allowed.issuperset(value):
            positions = tuple(i for i, ch in enumerate(value) if ch in self.charset)
            slots = Slots(value, "".join(value[i] for i in positions), positions)
        else:
            raise InvalidArgument("pan value may contain only digits, spaces and dashes")
        if not MIN_DIGITS <= len(slots.free) <= MAX_DIGITS:
            raise InvalidArgument(f"pan value must have {MIN_DIGITS} to {MAX_DIGITS} digits")
        return slots

    def _luhn_ok(self, residue: int, token: bool) -> bool:
        """Inputs must pass Luhn; tokens fail it (``invalid``) or pass it (``valid``)."""
        return residue == 0 if not token or self.luhn == "valid" else residue != 0

    @staticmethod
    def _luhn_error(token: bool) -> InvalidArgument:
        if token:
            return InvalidArgument("pan token has the wrong Luhn check for this format")
        return InvalidArgument("pan value fails the Luhn check, so it is not a card number")

    def mask(self, value: str) -> str:
        """All digits but the last four as ``*``, separators kept: ``************1111``."""
        slots = self.slots(value)
        return slots.fill("*" * (len(slots.free) - 4) + slots.free[-4:])

    def random_token(self, value: str, rand: Rand) -> str:
        """A random token with this format's layout and Luhn policy (vaulted mode)."""
        slots = self.slots(value)
        digits = slots.free
        n = len(digits)
        prefix, free, suffix = self.layout(n)
        body = digits[:prefix] + random_text(_DIGITS, free, rand) + "0" * self.carrier + digits[n - suffix :]
        if self.carrier:
            target = 1 + random_below(9, rand) if self.luhn == "invalid" else 0
            carrier = luhn.carrier_digit(luhn.residue(body), target, luhn.is_doubled(prefix + free, n))
            body = body[: prefix + free] + str(carrier) + body[prefix + free + 1 :]
        return slots.fill(body)

    def describe(self) -> dict[str, str]:
        lengths = range(MIN_DIGITS, MAX_DIGITS + 1)
        info = {
            "format": self.name,
            "luhn": self.luhn,
            "keep_prefix": str(self.keep_prefix),
            "keep_suffix": str(self.keep_suffix),
            "kept_prefix_by_length": " ".join(f"{n}:{self.layout(n)[0]}" for n in lengths),
            "encrypted_digits_by_length": " ".join(f"{n}:{self.layout(n)[1]}" for n in lengths),
        }
        if self.luhn == "invalid":
            info["version_marker"] = "Luhn residue = 1 + (version - 1) % 9"
        return info

    def _run(
        self, cipher: FF1, values: Sequence[str], tweak: bytes, encrypt: bool, version: int
    ) -> list[Result]:
        self._check_cipher(cipher)
        values = list(values)
        rows = ascii_rows(values)
        if rows is not None:
            fast = self._run_rows(cipher, rows, tweak, encrypt, version)
            if fast is not None:
                return fast
        results: list[Result] = [""] * len(values)
        templates: list[Slots] = []
        groups: dict[int, list[int]] = {}
        for i, value in enumerate(values):
            try:
                item = self._structure(value)
            except InvalidArgument as exc:
                results[i] = exc
                item = Slots(value, "")
            templates.append(item)
            if item.free:
                groups.setdefault(len(item.free), []).append(i)
        for n, idx in groups.items():
            raw = "".join(templates[i].free for i in idx).encode("ascii")
            digits = np.frombuffer(raw, dtype=np.uint8).reshape(len(idx), n) - 48
            out, ok = self._core(cipher, digits, tweak, encrypt, version)
            tokens = iter(row_texts(out + 48))
            for i, good in zip(idx, ok.tolist(), strict=True):
                results[i] = templates[i].fill(next(tokens)) if good else self._luhn_error(not encrypt)
        return results

    def _run_rows(
        self, cipher: FF1, rows: npt.NDArray[np.uint8], tweak: bytes, encrypt: bool, version: int
    ) -> list[Result] | None:
        """Vectorised path: ASCII values with one shared layout of digits and separators."""
        columns = uniform_columns((rows - 48) < 10)
        if columns is None or not MIN_DIGITS <= int(columns.sum()) <= MAX_DIGITS:
            return None
        whole = bool(columns.all())
        if not whole and not np.isin(rows[:, ~columns], _SEPARATOR_CODES).all():
            return None
        out, ok = self._core(cipher, rows[:, columns] - 48, tweak, encrypt, version)
        if whole:
            codes = out + 48
        else:
            codes = rows[ok]
            codes[:, columns] = out + 48
        tokens: list[Result] = list(row_texts(codes))
        if len(tokens) == len(rows):
            return tokens
        results: list[Result] = [self._luhn_error(not encrypt) for _ in range(len(rows))]
        for i, token in zip(np.flatnonzero(ok).tolist(), tokens, strict=True):
            results[i] = token
        return results

    def _core(
        self, cipher: FF1, digits: npt.NDArray[np.uint8], tweak: bytes, encrypt: bool, version: int
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
        """Check Luhn, then FF1 the middle digits of the good rows and set their carrier.

        Args:
            digits: (N, n) digit values 0..9 of n-digit PANs (or tokens).

        Returns:
            The converted good rows and the mask of good rows.
        """
        ok = np.ones(len(digits), dtype=bool)
        if self.luhn != "any":
            residues = luhn.residues(digits)
            ok = residues == 0 if encrypt or self.luhn == "valid" else residues != 0
            digits = digits[ok]
        if not len(digits):
            return digits, ok
        count, n = digits.shape
        prefix, free, suffix = self.layout(n)
        apply = cipher.encrypt_batch if encrypt else cipher.decrypt_batch
        middle = apply(
            row_texts(digits[:, prefix : prefix + free] + 48), self._tweaks(digits, prefix, suffix, tweak)
        )
        out = digits.copy()
        out[:, prefix : prefix + free] = (
            np.frombuffer("".join(middle).encode("ascii"), dtype=np.uint8).reshape(count, free) - 48
        )
        if self.carrier:
            carrier = prefix + free
            out[:, carrier] = 0
            target = (self.marker_for(version) or 0) if encrypt else 0
            out[:, carrier] = luhn.carrier_digits(luhn.residues(out), target, luhn.is_doubled(carrier, n))
        return out, ok

    @staticmethod
    def _tweaks(
        digits: npt.NDArray[np.uint8], prefix: int, suffix: int, tweak: bytes
    ) -> npt.NDArray[np.uint8]:
        """``bind_tweak(tweak, (kept prefix, kept suffix))`` for every row, as FF1 tweak rows."""
        count, n = digits.shape
        head = np.frombuffer(len(tweak).to_bytes(4, "big") + tweak + prefix.to_bytes(4, "big"), np.uint8)
        at = len(head)
        buf = np.empty((count, at + prefix + 4 + suffix), dtype=np.uint8)
        buf[:, :at] = head
        buf[:, at : at + prefix] = digits[:, :prefix] + 48
        buf[:, at + prefix : at + prefix + 4] = np.frombuffer(suffix.to_bytes(4, "big"), np.uint8)
        buf[:, at + prefix + 4 :] = digits[:, n - suffix :] + 48
        return buf
