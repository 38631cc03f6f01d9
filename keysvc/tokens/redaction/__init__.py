"""Transcript redaction: card numbers, CVVs, expiry dates, SSNs, phone numbers and emails.

Written and spoken forms are both found ("4111 1111 ...", "four one one one ...", "double
five", fillers between groups, read-back by the agent). Offsets always refer to the input.

    >>> redact("card 4111 1111 1111 1111 exp 05/27").text
    'card [PAN] exp [EXPIRY]'
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from keysvc.tokens.redaction.engine import MAX_TEXT_CHARS, Redactor
from keysvc.tokens.redaction.replacers import label, mask
from keysvc.tokens.redaction.spans import (
    KINDS,
    Detection,
    Kind,
    Redaction,
    Replacer,
    Span,
    Word,
    WordRedaction,
    WordSpan,
)

__all__ = [
    "KINDS",
    "MAX_TEXT_CHARS",
    "Detection",
    "Kind",
    "Redaction",
    "Redactor",
    "Replacer",
    "Span",
    "Word",
    "WordRedaction",
    "WordSpan",
    "find_spans",
    "label",
    "mask",
    "redact",
    "redact_words",
]


@lru_cache(maxsize=32)
def _redactor(region: str) -> Redactor:
    return Redactor(region=region)


def find_spans(text: str, *, region: str = "US") -> list[Span]:
    """Sorted, non-overlapping spans of the sensitive items in ``text``."""
    return _redactor(region).find_spans(text)


def redact(text: str, replace: Replacer | None = None, *, region: str = "US") -> Redaction:
    """Redact ``text``; ``replace(span, value)`` defaults to :func:`label` (``[PAN]``, ``[SSN]``...)."""
    return _redactor(region).redact(text, replace)


def redact_words(
    words: Sequence[Word], replace: Replacer | None = None, *, region: str = "US"
) -> WordRedaction:
    """Redact speech-to-text words; spans carry word indexes and times for bleeping audio."""
    return _redactor(region).redact_words(words, replace)
