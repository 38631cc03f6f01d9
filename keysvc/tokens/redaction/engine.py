"""The redaction engine: run every detector, settle overlaps, and rewrite text or word lists."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from keysvc.errors import InvalidArgument
from keysvc.tokens.redaction.detectors import find_numeric
from keysvc.tokens.redaction.emails import find_emails
from keysvc.tokens.redaction.phones import check_region, find_phones
from keysvc.tokens.redaction.replacers import label
from keysvc.tokens.redaction.spans import Detection, Redaction, Replacer, Span, Word, WordRedaction, WordSpan
from keysvc.tokens.redaction.spoken import digit_runs

MAX_TEXT_CHARS = 1_000_000
# When detections overlap, the earlier kind wins: a validated card number beats a phone
# number inside it, and a phone number beats a context-only security code.
_PRIORITY = {"pan": 0, "ssn": 1, "email": 2, "phone": 3, "expiry": 4, "cvv": 5}


class Redactor:
    """Finds and replaces card data, SSNs, phone numbers and emails in transcripts.

    Args:
        region: default region (ISO 3166 alpha-2) for phone numbers written without a country code.

    Raises:
        InvalidArgument: the region is unknown to libphonenumber.
    """

    def __init__(self, *, region: str = "US") -> None:
        self._region = check_region(region)

    def detect(self, text: str) -> list[Detection]:
        """Sensitive items of ``text`` with their normalised values, sorted and non-overlapping.

        Raises:
            InvalidArgument: ``text`` is not a string or is longer than MAX_TEXT_CHARS.
        """
        if not isinstance(text, str):
            raise InvalidArgument("text must be a string")
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidArgument("text exceeds the redaction size limit")
        runs = digit_runs(text)
        numeric = find_numeric(text, runs)
        phones = find_phones(
            text, runs, self._region, claimed=[d for d in numeric if d.kind in ("pan", "ssn")]
        )
        return _settle(numeric + phones + find_emails(text))

    def find_spans(self, text: str) -> list[Span]:
        """Spans of the sensitive items of ``text``, sorted and non-overlapping."""
        return [Span(d.kind, d.start, d.end) for d in self.detect(text)]

    def redact(self, text: str, replace: Replacer | None = None) -> Redaction:
        """Replace every sensitive item; ``replace(span, value)`` defaults to a ``[KIND]`` label.

        Raises:
            InvalidArgument: bad text, or ``replace`` returned something other than a string.
        """
        replace = replace or label
        spans: list[Span] = []
        parts: list[str] = []
        pos = 0
        for d in self.detect(text):
            span = Span(d.kind, d.start, d.end)
            parts += [text[pos : d.start], _replacement(replace, span, d.value)]
            spans.append(span)
            pos = d.end
        parts.append(text[pos:])
        return Redaction("".join(parts), tuple(spans))

    def redact_words(self, words: Sequence[Word], replace: Replacer | None = None) -> WordRedaction:
        """Redact a word list; the words are joined with single spaces and offsets refer to that text.

        Each returned word matches the input word at the same index: the first word of a span
        carries the replacement, the other covered words keep only their uncovered characters.

        Raises:
            InvalidArgument: a word's text is not a string, or as for :meth:`redact`.
        """
        if not all(isinstance(w, Word) and isinstance(w.text, str) for w in words):
            raise InvalidArgument("words must be Word values with string text")
        replace = replace or label
        offsets: list[int] = []
        pos = 0
        for w in words:
            offsets.append(pos)
            pos += len(w.text) + 1
        texts = [w.text for w in words]
        edits: list[tuple[WordSpan, str]] = []
        for d in self.detect(" ".join(texts)):
            first = bisect_right(offsets, d.start) - 1
            last = bisect_right(offsets, d.end - 1) - 1
            span = WordSpan(
                d.kind, d.start, d.end, first, last + 1, words[first].start_ms, words[last].end_ms
            )
            edits.append((span, _replacement(replace, span, d.value)))
        for span, text in reversed(edits):  # right to left, so earlier offsets stay valid
            for k in range(span.word_start, span.word_end):
                a = max(span.start - offsets[k], 0)
                b = min(span.end - offsets[k], len(words[k].text))
                texts[k] = texts[k][:a] + (text if k == span.word_start else "") + texts[k][b:]
        redacted = tuple(Word(t, w.start_ms, w.end_ms) for t, w in zip(texts, words, strict=True))
        return WordRedaction(redacted, tuple(span for span, _ in edits))


def _replacement(replace: Replacer, span: Span, value: str) -> str:
    out = replace(span, value)
    if not isinstance(out, str):
        raise InvalidArgument("replacement must be a string")
    return out


def _settle(candidates: list[Detection]) -> list[Detection]:
    """Keep the highest-priority detections that do not overlap, in text order."""
    starts: list[int] = []
    taken: list[Detection] = []
    for d in sorted(candidates, key=lambda c: (_PRIORITY[c.kind], c.start, -c.end)):
        i = bisect_right(starts, d.start)
        if (i == 0 or taken[i - 1].end <= d.start) and (i == len(taken) or d.end <= taken[i].start):
            starts.insert(i, d.start)
            taken.insert(i, d)
    return taken
