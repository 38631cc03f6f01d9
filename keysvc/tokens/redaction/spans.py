"""Value types of the redaction engine: spans, words and results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["pan", "cvv", "expiry", "ssn", "phone", "email"]
KINDS: tuple[Kind, ...] = ("pan", "cvv", "expiry", "ssn", "phone", "email")


@dataclass(frozen=True, slots=True)
class Span:
    """A sensitive item at ``text[start:end]`` of the input (code-point offsets, end exclusive)."""

    kind: Kind
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class WordSpan(Span):
    """A span of joined words, with the words (``words[word_start:word_end]``) and times it covers."""

    word_start: int
    word_end: int
    start_ms: int | None
    end_ms: int | None


@dataclass(frozen=True, slots=True)
class Word:
    """One speech-to-text word; times are optional."""

    text: str = field(repr=False)
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Detection:
    """A span plus its normalised value (digits, ``MM/YY``, E.164 or ``local@domain``)."""

    kind: Kind
    start: int
    end: int
    value: str = field(repr=False)


Replacer = Callable[[Span, str], str]
"""Called with a span and its normalised value; returns the text that replaces the span."""


@dataclass(frozen=True, slots=True)
class Redaction:
    """Redacted text; ``spans`` point into the original text."""

    text: str = field(repr=False)
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class WordRedaction:
    """Redacted words, one per input word (covered words become empty or keep only uncovered parts)."""

    words: tuple[Word, ...]
    spans: tuple[WordSpan, ...]
