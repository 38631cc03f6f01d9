"""Context words that say what a nearby number is (security code, expiry, social, order id...)."""

from __future__ import annotations

import re
from typing import Literal

Topic = Literal["ssn4", "cvv", "expiry", "ssn", "email", "phone", "other"]

# Phrases (regex fragments, each starting with a literal letter or digit, which the lookahead
# below relies on) that set a topic; "card" words only mark card talk. Earlier phrases win
# where two start at the same place.
_PHRASES: dict[str, list[str]] = {
    "ssn4": [r"last (?:four|4)(?: digits)? of (?:your |my |the )?(?:social|ssn|s s n)"],
    "cvv": [
        r"security (?:code|number)",
        r"sec code",
        r"cvv2?",
        r"cvc2?",
        r"csc",
        r"cvn",
        r"cid",
        r"card verification(?: value| code| number)?",
        r"verification (?:code|value|number)",
        *(rf"{n}[- ]digit(?: security)? (?:code|number)" for n in ("three", "four", "3", "4")),
        r"code on the (?:back|front)",
        r"back of the card",
        r"code",
    ],
    "expiry": [r"expir\w*", r"exp", r"valid (?:thru|through|until|to)", r"good (?:thru|through)"],
    "ssn": [r"social security(?: number)?", r"social", r"ssn", r"s s n", r"ss number", r"itin"],
    "email": [r"e-?mail(?: address)?"],
    "phone": [
        r"phone",
        r"cell",
        r"mobile",
        r"telephone",
        r"landline",
        r"call (?:you|me) back",
        r"callback",
        r"reach (?:you|me)",
        r"area code",
    ],
    "other": [
        *(f"{w} code" for w in ("confirmation", "reference", "promo", "discount", "access", "booking")),
        *(f"{w} code" for w in ("tracking", "country", "zip", "postal", "post")),
        *("order", "confirmation", "reference", "ref", "tracking", "ticket", "case", "invoice", "claim"),
        *("policy", "booking", "reservation", "transaction", "serial", "model", "zip", "birth", "born"),
        *("dob", "extension", "ext", "apartment", "apt", "suite", "unit", "room", "flight", "pin"),
        *("routing", "amount", "balance", "total", "charged?", "paid", "owe", "refund", "price"),
        r"date of birth",
        r"ending (?:in|with)",
        r"ends in",
        r"last (?:four|4)",
        r"account number",
        r"member (?:id|number)",
        r"customer (?:id|number)",
    ],
    "card": [
        r"card(?: number)?",
        r"visa",
        r"master ?card",
        r"amex",
        r"american express",
        r"discover",
        r"credit",
        r"debit",
    ],
}
_FIRST = "".join(sorted({frag[0] for frags in _PHRASES.values() for frag in frags}))
_KEYWORDS = re.compile(
    rf"\b(?=[{_FIRST}])(?:" + "|".join(f"(?P<{t}>{'|'.join(f)})" for t, f in _PHRASES.items()) + r")\b",
    re.IGNORECASE,
)
_REACH = 120

_ID_BEFORE = re.compile(
    r"\b(?:(?:order|confirmation|reference|ref|tracking|ticket|case|invoice|claim|policy|booking"
    r"|reservation|transaction|serial)(?:\s+(?:number|no|num|id|code))?"
    r"|(?:account|member|customer|routing)\s+(?:number|no|num|id))"
    r"\s*(?:is|was|:)?\s*#?\s*$",
    re.IGNORECASE,
)


def topic_before(text: str, pos: int, since: int = 0) -> Topic | None:
    """Return the topic of the nearest context word before ``pos`` (card words alone set none).

    Only ``text[max(since, pos - 120):pos]`` is searched, so callers can stop at a card number.
    """
    topic: Topic | None = None
    for m in _KEYWORDS.finditer(text, max(since, pos - _REACH), pos):
        if m.lastgroup != "card":
            topic = m.lastgroup  # type: ignore[assignment]
    return topic


def follows_id_word(text: str, pos: int) -> bool:
    """Whether the number at ``pos`` is introduced as an order, reference or account number."""
    return _ID_BEFORE.search(text, max(0, pos - 50), pos) is not None
