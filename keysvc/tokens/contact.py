"""The ``phone`` and ``email`` formats.

phone: E.164 or international (``+14155552671``, ``+44 20 7946 0958``) and national formats
of the ``region`` option (``(415) 555-2671``, ``415-555-2671``). The input must be a possible
number for ``phonenumbers``. International form: the ``+`` and the country calling code stay
in clear (and are bound into the tweak); every later digit, the national significant number,
is encrypted. National form: every digit is encrypted (the country is implied by the region).
Spaces, dashes, dots and parentheses stay in place. Numbers written with an international
call prefix (``011 44 ...``) are refused: write them with ``+``. Fewer than 6 encrypted digits
(a domain below 10^6, e.g. some 4-5 digit Pacific numbers) are refused. Tokens are generally
not valid numbers; detokenizing parses them by structure alone (``+``, then the country code,
which ITU keeps prefix-free).

email: ``local@domain`` with an ASCII dot-atom local part (RFC 5322; quoted local parts and
non-ASCII addresses are refused). The letters and digits of the local part are encrypted
over ``0-9a-z`` (radix 36, at least 4 of them for a 10^6 domain); dots and the other atext
symbols (``!#$%&'*+-/=?^_`{|}~``) stay in place, so a token is a valid address when the input
is. The domain stays in clear and is bound into the tweak. Case: addresses are normalised to
lower case, local part included (RFC 5321 discourages case-sensitive local parts), so tokens
and detokenized values are lower case and a token survives systems that fold case.
"""

from __future__ import annotations

import re

import phonenumbers

from keysvc.errors import InvalidArgument
from keysvc.tokens._positional import PositionalFormat, Slots, slots_in

_DIGITS = "0123456789"
_PHONE_CHARS = re.compile(r"\+?[0-9 ().\-]+", re.ASCII)
_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_IDD = phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD

_LOCAL_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*", re.ASCII)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)


class PhoneFormat(PositionalFormat):
    """Phone numbers; see the module docstring.

    Args:
        region: ISO 3166 region for national-format numbers (default ``US``).
    """

    name = "phone"
    unit = "national digits"
    reveal_min = 8

    def __init__(self, region: str = "US") -> None:
        super().__init__(_DIGITS)
        self.region = region

    def _slots(self, value: str, token: bool) -> Slots:
        if _PHONE_CHARS.fullmatch(value) is None:
            raise InvalidArgument(
                "phone value may contain only digits, spaces, dashes, dots, parentheses and a leading +"
            )
        digits = [i for i, ch in enumerate(value) if ch in self.charset]
        if not token:
            self._check_possible(value)
        if not value.startswith("+"):
            return slots_in(value, self.charset)
        code = next((k for k in (1, 2, 3) if "".join(value[i] for i in digits[:k]) in _COUNTRY_CODES), 0)
        if not code:
            raise InvalidArgument("phone value has an unknown country calling code")
        positions = tuple(digits[code:])
        country = "+" + "".join(value[i] for i in digits[:code])
        return Slots(value, "".join(value[i] for i in positions), positions, (country,))

    def _check_possible(self, value: str) -> None:
        try:
            number = phonenumbers.parse(
                value, None if value.startswith("+") else self.region, keep_raw_input=True
            )
        except phonenumbers.NumberParseException:
            raise InvalidArgument("phone value is not a phone number") from None
        if number.country_code_source == _IDD:
            raise InvalidArgument("phone value uses an international call prefix: write it with a leading +")
        if not phonenumbers.is_possible_number(number):
            raise InvalidArgument("phone value is not a possible phone number for its country")

    def describe(self) -> dict[str, str]:
        return {"format": self.name, "region": self.region, "min_free": str(self.min_free)}


class EmailFormat(PositionalFormat):
    """Email addresses; see the module docstring."""

    name = "email"
    unit = "letters and digits in the local part"

    def __init__(self) -> None:
        super().__init__(_LOCAL_ALPHABET)

    def _slots(self, value: str, token: bool) -> Slots:
        local, at, domain = value.rpartition("@")
        if not at or not value.isascii() or len(local) > 64 or len(domain) > 253:
            raise InvalidArgument("email value must be an ASCII address local@domain")
        if _LOCAL.fullmatch(local) is None:
            raise InvalidArgument(
                "email local part must be a dot-atom (quoted local parts are not supported)"
            )
        if _DOMAIN.fullmatch(domain) is None:
            raise InvalidArgument("email domain must be a host name")
        domain = domain.lower()
        slots = slots_in(local.lower(), self.charset, (domain,))
        return Slots(
            f"{slots.text}@{domain}", slots.free, slots.positions or tuple(range(len(local))), slots.kept
        )

    def mask(self, value: str) -> str:
        """First character of the local part, then ``***``: ``j***@example.com``."""
        slots = self.slots(value)
        return f"{slots.text[0]}***@{slots.kept[0]}"
