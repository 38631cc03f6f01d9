"""Luhn (ISO/IEC 7812-1 mod 10) residues, for one digit string or a numpy matrix of digits.

The *residue* of a number is its Luhn sum mod 10: 0 means the number passes the check. The
``pan`` format sets one digit (the "carrier") so that a token has a chosen residue.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # contribution of a digit in a doubled position
_UNDOUBLED = (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)  # inverse: the digit whose doubled contribution is i
_DOUBLED_NP = np.array(_DOUBLED, dtype=np.uint8)
_DIGIT_FOR = {False: np.arange(10, dtype=np.uint8), True: np.array(_UNDOUBLED, dtype=np.uint8)}

Digits = npt.NDArray[np.uint8]


def residue(digits: str) -> int:
    """Luhn sum mod 10 of an ASCII digit string (0: the number passes)."""
    plain = sum(map(int, digits[-1::-2]))
    doubled = sum(_DOUBLED[int(ch)] for ch in digits[-2::-2])
    return (plain + doubled) % 10


def residues(digits: Digits) -> npt.NDArray[np.int64]:
    """Luhn residues of each row of an (N, n) matrix of digit values 0..9."""
    n = digits.shape[1]
    plain = digits[:, n - 1 :: -2].sum(axis=1, dtype=np.int64)
    doubled = _DOUBLED_NP[digits[:, n - 2 :: -2]].sum(axis=1, dtype=np.int64) if n > 1 else 0
    result: npt.NDArray[np.int64] = (plain + doubled) % 10
    return result


def is_doubled(position: int, length: int) -> bool:
    """Whether the digit at ``position`` (0-based from the left) is doubled in the Luhn sum."""
    return (length - 1 - position) % 2 == 1


def carrier_digits(
    residue_without: npt.NDArray[np.int64], target: int | npt.NDArray[np.int64], doubled: bool
) -> Digits:
    """The digit that, written into a position holding 0, moves each residue to ``target``.

    Args:
        residue_without: residues computed with the carrier position set to 0.
        target: wanted residue(s), 0..9.
        doubled: whether the carrier position is doubled (see ``is_doubled``).
    """
    result: Digits = _DIGIT_FOR[doubled][(target - residue_without) % 10]
    return result


def carrier_digit(residue_without: int, target: int, doubled: bool) -> int:
    """Scalar ``carrier_digits``."""
    need = (target - residue_without) % 10
    return _UNDOUBLED[need] if doubled else need
