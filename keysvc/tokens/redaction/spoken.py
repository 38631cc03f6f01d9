"""Turn transcript text into digit runs that remember where every digit came from.

Speech-to-text writes numbers as digits ("4111"), as words ("four one one one", "double
five", "oh", "twenty seven") or as both, and splits them with commas and fillers ("um",
"sorry"). A :class:`Group` holds digits that were written or said together and are never
split; a :class:`Run` is a sequence of groups joined only by separators and fillers. Every
digit keeps the ``(start, end)`` of the text that produced it, so any window of digits maps
back to an exact span of the original text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Gap = Literal["space", "dash", "slash", "punct", "filler", "of"]

UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
REPEATS = {"double": 2, "triple": 3}
MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_NUMBER_WORDS = UNITS.keys() | TEENS.keys() | TENS.keys() | REPEATS.keys() | {"hundred", "thousand"}


def _word_pattern(words: Iterable[str]) -> str:
    """An alternation grouped by first letter, so the regex engine rejects most words at once."""
    by_first: dict[str, list[str]] = {}
    for word in sorted(words, key=len, reverse=True):
        by_first.setdefault(word[0], []).append(re.escape(word[1:]))
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in sorted(by_first.items()))


# Only digits, number words and month names are tokens. Amounts, decimals, thousands and clock
# times are matched whole so their digits never join a run; dotted groups ("415.555.0132") are
# not decimals; digits glued to letters ("A123", "21st") are ignored.
_TOKEN = re.compile(
    r"[$£€¥]\s?[0-9][0-9,.]*|[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+\.[0-9]{1,2}(?![.0-9])"
    r"|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?|(?P<digits>(?<![A-Za-z0-9])[0-9]++(?![A-Za-z]))"
    rf"|\b(?P<word>{_word_pattern(_NUMBER_WORDS | MONTHS.keys())})\b",
    re.IGNORECASE,
)
_FILLERS = (
    r"um+|uh+m?|erm?|ah+|hmm+|mm+|sorry|okay|ok|so|yeah|yes|and|then|like|wait|again|actually|right"
    r"|that's|thats|that\ is|it's|its|it\ is|is|the|rest|let\ me\ see|correction|i\ mean|hold\ on|hang\ on"
)
# One character or one word per step, possessive: no nested quantifier, so no backtracking blow-up.
_GAP = re.compile(
    rf"(?:[\s,.;:!?()\[\]\"'/\-\u2013\u2014]|\b(?:{_FILLERS}|slash|dash|hyphen|of)\b)*+", re.IGNORECASE
)
_WORD = re.compile(r"[a-z']+")
_SEPARATOR_WORDS = frozenset({"slash", "dash", "hyphen", "of", "'"})
_MAX_GAP_CHARS = 40
_MAX_FILLER_WORDS = 3
_PLUS_BEFORE = re.compile(r"\b(plus)\s*$", re.IGNORECASE)
_PHONE_PUNCT = re.compile(r"[\s().\-/]*")  # separators libphonenumber accepts inside a number
_LEAD = re.compile(r"[+(][\s(]*$")
_MAX_LEAD = 8
PHONE_MIN_DIGITS = 7


@dataclass(frozen=True, slots=True)
class Group:
    """Digits written or said together; ``spans[i]`` is where digit ``i`` came from."""

    digits: str
    spans: tuple[tuple[int, int], ...]
    spoken: bool
    month: bool = False

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]


@dataclass(frozen=True, slots=True)
class Run:
    """Groups joined by separators or fillers; ``gaps[i]`` is between ``groups[i]`` and ``groups[i + 1]``."""

    groups: tuple[Group, ...]
    gaps: tuple[Gap, ...]

    @property
    def start(self) -> int:
        return self.groups[0].start

    @property
    def end(self) -> int:
        return self.groups[-1].end


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    start: int
    end: int


def digit_runs(text: str) -> list[Run]:
    """Return the digit runs of ``text`` in order."""
    runs: list[Run] = []
    groups: list[Group] = []
    gaps: list[Gap] = []
    for group in _groups(text):
        gap = _gap(text, groups[-1], group) if groups else None
        if gap is None:
            if groups:
                runs.append(Run(tuple(groups), tuple(gaps)))
            groups, gaps = [group], []
        else:
            groups.append(group)
            gaps.append(gap)
    if groups:
        runs.append(Run(tuple(groups), tuple(gaps)))
    return runs


def _groups(text: str) -> list[Group]:
    out: list[Group] = []
    phrase: list[_Word] = []
    singles: list[int] = []  # offsets of digits typed one by one ("4 5 6"), read as one group

    def flush() -> None:
        if phrase:
            out.extend(_spoken_groups(phrase))
            phrase.clear()
        if singles:
            out.append(
                Group("".join(text[i] for i in singles), tuple((i, i + 1) for i in singles), spoken=False)
            )
            singles.clear()

    for m in _TOKEN.finditer(text):
        start, end = m.span()
        word = (m.group("word") or "").lower()
        if word in _NUMBER_WORDS and not (word == "o" and text.startswith("'", end)):
            if singles or (phrase and not _continues(text, phrase[-1], start, word)):
                flush()
            phrase.append(_Word(word, start, end))
        elif m.group("digits") and end - start == 1:
            if phrase or (singles and text[singles[-1] + 1 : start] != " "):
                flush()
            singles.append(start)
        else:
            flush()
            if m.group("digits"):
                out.append(Group(m.group(), tuple((i, i + 1) for i in range(start, end)), spoken=False))
            elif word in MONTHS:
                out.append(
                    Group(f"{MONTHS[word]:02d}", ((start, end), (start, end)), spoken=True, month=True)
                )
    flush()
    return out


def _continues(text: str, prev: _Word, start: int, word: str) -> bool:
    between = text[prev.end : start]
    if between.isspace():
        return True
    return between == "-" and prev.text in TENS and UNITS.get(word, 0) > 0


def _spoken_groups(words: list[_Word]) -> list[Group]:
    """Parse consecutive number words into groups, splitting where a word cannot be read as digits."""
    groups: list[Group] = []
    digits: list[str] = []
    spans: list[tuple[int, int]] = []
    i, n = 0, len(words)
    while i < n:
        chunk, j = _chunk(words, i)
        if chunk is None:
            if digits:
                groups.append(Group("".join(digits), tuple(spans), spoken=True))
                digits, spans = [], []
            i += 1
            continue
        span = (words[i].start, words[j - 1].end)
        digits.append(chunk)
        spans.extend([span] * len(chunk))
        i = j
    if digits:
        groups.append(Group("".join(digits), tuple(spans), spoken=True))
    return groups


def _chunk(words: list[_Word], i: int) -> tuple[str | None, int]:
    """Read one spoken number starting at ``words[i]``: its digits and the index after it."""
    word = words[i].text
    if word in REPEATS:
        nxt = _at(words, i + 1)
        return (str(UNITS[nxt]) * REPEATS[word], i + 2) if nxt in UNITS else (None, i + 1)
    value, j = _hundreds(words, i)
    if value is None:
        return None, i + 1
    if _at(words, j) == "thousand" and value > 0:
        rest, k = _hundreds(words, j + 1)
        return (str(value * 1000 + rest), k) if rest is not None else (str(value * 1000), j + 1)
    return str(value), j


def _hundreds(words: list[_Word], i: int) -> tuple[int | None, int]:
    """Read a number below 1000; "five hundred five" reads as 500 then 5, as digits are dictated."""
    value, j = _small(words, i)
    if value is None or value == 0 or _at(words, j) != "hundred":
        return value, j
    rest, k = _small(words, j + 1)
    return (value * 100 + rest, k) if rest is not None and rest >= 10 else (value * 100, j + 1)


def _small(words: list[_Word], i: int) -> tuple[int | None, int]:
    """Read a number below 100 (a unit, a teen, or tens with an optional unit)."""
    word = _at(words, i)
    if word in UNITS:
        return UNITS[word], i + 1
    if word in TEENS:
        return TEENS[word], i + 1
    if word in TENS:
        unit = UNITS.get(_at(words, i + 1), 0)
        return (TENS[word] + unit, i + 2) if unit else (TENS[word], i + 1)
    return None, i


def _at(words: list[_Word], i: int) -> str:
    return words[i].text if i < len(words) else ""


def _gap(text: str, prev: Group, nxt: Group) -> Gap | None:
    """Classify the text between two groups, or return None if it separates them."""
    between = text[prev.end : nxt.start]
    if len(between) > _MAX_GAP_CHARS or _GAP.fullmatch(between) is None:
        return None
    words = _WORD.findall(between.lower())
    if "of" in words and not prev.month:
        return None
    fillers = sum(1 for w in words if w not in _SEPARATOR_WORDS)
    if fillers:
        return "filler" if fillers <= _MAX_FILLER_WORDS else None
    if "of" in words:
        return "of"
    if "slash" in words or "/" in between:
        return "slash"
    if "dash" in words or "hyphen" in words or any(c in between for c in "-\u2013\u2014"):
        return "dash"
    return "space" if between.isspace() else "punct"


@dataclass(frozen=True, slots=True)
class Normalised:
    """A run as digits and plain separators (spoken digits written out, fillers dropped).

    ``starts[i]``/``ends[i]`` give the original span behind character ``i``.
    """

    text: str
    starts: list[int]
    ends: list[int]

    def original(self, start: int, end: int) -> tuple[int, int]:
        """Map ``text[start:end]`` back to a span of the original text."""
        return self.starts[start], self.ends[end - 1]


def phone_region(text: str, run: Run) -> tuple[int, int] | None:
    """Where a phone number could be: the run plus a leading "+" or "(", if it has enough digits."""
    if sum(len(g.digits) for g in run.groups if not g.month) < PHONE_MIN_DIGITS:
        return None
    lead = _LEAD.search(text, max(0, run.start - _MAX_LEAD), run.start)
    return (lead.start() if lead else run.start), run.end


def normalise(text: str, run: Run, region_start: int) -> Normalised | None:
    """Rewrite ``text[region_start:run.end]``; None when that would not change it."""
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    changed = False

    def copy(a: int, b: int) -> None:
        parts.append(text[a:b])
        starts.extend(range(a, b))
        ends.extend(range(a + 1, b + 1))

    def emit(s: str, a: int, b: int) -> None:
        parts.append(s)
        starts.extend([a] * len(s))
        ends.extend([b] * len(s))

    plus = _PLUS_BEFORE.search(text, max(0, run.start - _MAX_LEAD), run.start)
    if plus:
        emit("+", plus.start(1), plus.end(1))
        changed = True
    else:
        copy(region_start, run.start)
    for i, group in enumerate(run.groups):
        if group.spoken and not group.month:
            for digit, (a, b) in zip(group.digits, group.spans, strict=True):
                emit(digit, a, b)
            changed = True
        else:
            copy(group.start, group.end)
        if i < len(run.gaps):
            a, b = group.end, run.groups[i + 1].start
            if run.gaps[i] != "filler" and _PHONE_PUNCT.fullmatch(text, a, b):
                copy(a, b)
            else:
                emit({"dash": "-", "slash": "/"}.get(run.gaps[i], " "), a, b)
                changed = True
    return Normalised("".join(parts), starts, ends) if changed else None
