"""The ``ssn`` format: US Social Security numbers, ``###-##-####`` or 9 bare digits.

Requirement: SSN tokens should use never-issued area numbers (900-999), so a token can never
be a real SSN. A format-preserving cipher cannot do that, by counting: SSA issues area
001-899 except 666, group 01-99 and serial 0001-9999, about 898 * 99 * 9999 ~ 8.9e8 valid
SSNs, while only 100 * 10^4 * 10^4 = 10^8 strings have a 9xx area. FF1 is a permutation, so
it cannot map the larger set one-to-one into the smaller one. (Keeping the last four digits,
as some products do, leaves 10^5 encrypted values: below the 10^6 floor as well.)

So keysvc offers two modes:

* Vaulted tokens (``--purpose vault-token``, the recommended mode): ``random_token`` draws
  ``9XX-GG-SSSS`` with area 900-999, group 01-49 and serial 0001-9999, keeping the input's
  shape. Area 9xx is never issued as an SSN, and groups below 50 are outside the IRS ranges
  for ITINs (groups 50-65, 70-88, 90-92, 94-99) and ATINs (93), so a token is no taxpayer
  number of any kind. The vault maps tokens back to values.
* FF1 (``--purpose fpe``) only with the option ``allow_issuable=true``: FF1 over the 9 digits
  with the shape kept. Tokens then look like, and may equal, issuable SSNs of other people.
  Without the option ``make_format`` refuses ``ssn`` for FPE keys.

Inputs must be well formed: area not 000 or 666, group not 00, serial not 0000, and not in
the token range above (a 9xx area with a group below 50 is a keysvc token, not an SSN, so a
token is never tokenized again). ITINs (9xx with group 50-99) are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from keysvc.crypto.ff1 import FF1
from keysvc.errors import FailedPrecondition, InvalidArgument
from keysvc.tokens._positional import PositionalFormat, Rand, Result, Slots, random_below

_SHAPE = re.compile(r"(\d{3})-(\d{2})-(\d{4})|(\d{3})(\d{2})(\d{4})", re.ASCII)
_DASHED_POSITIONS = (0, 1, 2, 4, 5, 7, 8, 9, 10)
REFUSED_FOR_FPE = (
    "ssn tokens made with FF1 cannot avoid issuable SSNs: about 8.9e8 valid SSNs do not fit "
    "one-to-one into the 10^8 numbers with a never-issued 9xx area. Use a vaulted key "
    "(keysvc-admin keys create NAME --purpose vault-token --format ssn), or accept FF1 tokens "
    "that look like real SSNs with --format-option allow_issuable=true"
)


class SsnFormat(PositionalFormat):
    """SSNs; see the module docstring for why FF1 is opt-in.

    Args:
        allow_fpe: FF1 tokenization allowed (``allow_issuable=true``); without it only
            ``random_token`` (vaulted mode) and the helpers work.
    """

    name = "ssn"
    unit = "digits"
    reveal_min = 9  # mask: ***-**-6789

    def __init__(self, allow_fpe: bool) -> None:
        super().__init__("0123456789")
        self.allow_fpe = allow_fpe

    def _slots(self, value: str, token: bool) -> Slots:
        match = _SHAPE.fullmatch(value)
        if match is None:
            raise InvalidArgument("ssn value must look like 123-45-6789 or 123456789")
        area, group, serial = (part for part in match.groups() if part is not None)
        if not token:
            if area in ("000", "666") or group == "00" or serial == "0000":
                raise InvalidArgument("ssn value is not a valid SSN (area, group or serial out of range)")
            if area[0] == "9" and group < "50":
                raise InvalidArgument("ssn value is in the keysvc token range (9xx area, group below 50)")
        if len(value) == 9:
            return Slots(value, value)
        return Slots(value, area + group + serial, _DASHED_POSITIONS)

    def _run(
        self, cipher: FF1, values: Sequence[str], tweak: bytes, encrypt: bool, version: int
    ) -> list[Result]:
        if not self.allow_fpe:
            raise FailedPrecondition(REFUSED_FOR_FPE)
        return super()._run(cipher, values, tweak, encrypt, version)

    def random_token(self, value: str, rand: Rand) -> str:
        """``9XX-GG-SSSS`` in the value's shape: area 900-999, group 01-49, serial 0001-9999."""
        slots = self.slots(value)
        area, group, serial = (
            900 + random_below(100, rand),
            1 + random_below(49, rand),
            1 + random_below(9999, rand),
        )
        return slots.fill(f"{area}{group:02d}{serial:04d}")

    def describe(self) -> dict[str, str]:
        mode = "ff1 (tokens may be issuable SSNs)" if self.allow_fpe else "vaulted tokens 9XX-GG-SSSS only"
        return {"format": self.name, "mode": mode}
