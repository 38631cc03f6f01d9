"""Properties: an inserted card number is found exactly; any text gives well-formed spans."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from keysvc.tokens.redaction import Span, Word, find_spans, redact, redact_words
from keysvc.tokens.redaction.engine import _settle
from keysvc.tokens.redaction.spans import Detection
from tests.unit.redaction.cards import with_check_digit

# Ordinary call words: no digits, number words or month names.
FILLER = st.sampled_from(
    [
        *("okay", "so", "the", "charge", "on", "my", "account", "hello", "thanks", "please", "card"),
        *("number", "yes", "right", "sure", "it's", "um", "uh", "sorry", "let", "me", "check", "that's"),
        *("correct", "and", "I", "would", "like", "to", "pay", "with", "visa", "mastercard", "is", "fine"),
    ]
)
BINS = st.sampled_from(["411111", "424242", "400000", "555555", "510510", "222300", "601111", "353011"])
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@st.composite
def pans(draw: st.DrawFn) -> str:
    body = draw(BINS) + draw(st.text("0123456789", min_size=9, max_size=9))
    return with_check_digit(body)


def render(pan: str, style: str) -> str:
    groups = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    if style == "space":
        return " ".join(groups)
    if style == "dash":
        return "-".join(groups)
    if style == "spoken":
        return ", ".join(" ".join(NAMES[int(d)] for d in g) for g in groups)
    if style == "mixed":
        return " ".join(g if i % 2 else " ".join(NAMES[int(d)] for d in g) for i, g in enumerate(groups))
    return pan


STYLES = st.sampled_from(["plain", "space", "dash", "spoken", "mixed"])
PUNCT = st.sampled_from(["", ".", ",", "?", "!"])


@settings(max_examples=150, deadline=None)
@given(st.lists(FILLER, max_size=12), pans(), STYLES, PUNCT, st.lists(FILLER, max_size=12))
def test_inserted_card_number_is_covered_exactly(
    before: list[str], pan: str, style: str, punct: str, after: list[str]
) -> None:
    said = render(pan, style)
    prefix = " ".join(before) + (" " if before else "")
    text = prefix + said + punct + (" " if after else "") + " ".join(after)
    assert find_spans(text) == [Span("pan", len(prefix), len(prefix) + len(said))]
    assert pan not in redact(text).text.replace(" ", "").replace("-", "")


@settings(max_examples=100, deadline=None)
@given(st.lists(FILLER, max_size=8), pans(), st.lists(FILLER, max_size=8))
def test_inserted_card_number_maps_to_its_words(before: list[str], pan: str, after: list[str]) -> None:
    said = render(pan, "space").split(" ")
    words = [Word(w, i * 100, i * 100 + 80) for i, w in enumerate([*before, *said, *after])]
    (span,) = redact_words(words).spans
    assert (span.word_start, span.word_end) == (len(before), len(before) + len(said))
    assert (span.start_ms, span.end_ms) == (len(before) * 100, (len(before) + len(said) - 1) * 100 + 80)


TEXT = st.lists(
    st.one_of(
        st.sampled_from(list("0123456789 -/.,()+@$:")),
        st.sampled_from(
            [" one ", " oh ", " double ", " twenty ", " at ", " dot ", " um ", " social ", " cvv "]
        ),
        st.characters(codec="utf-8"),
    ),
    max_size=120,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_text_gives_sorted_disjoint_spans_inside_it(text: str) -> None:
    spans = find_spans(text)
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert all(text[s.start : s.end] == text[s.start : s.end].strip() for s in spans)
    out = redact(text)
    assert out.spans == tuple(spans)
    assert len(out.text) == len(text) - sum(s.end - s.start for s in spans) + sum(
        len(f"[{s.kind}]") for s in spans
    )


@given(
    st.lists(
        st.tuples(st.sampled_from(["pan", "ssn", "phone", "cvv"]), st.integers(0, 50), st.integers(1, 10))
    )
)
def test_settle_keeps_disjoint_spans_by_priority(items: list[tuple[str, int, int]]) -> None:
    candidates = [Detection(kind, start, start + length, "") for kind, start, length in items]  # type: ignore[arg-type]
    kept = _settle(candidates)
    assert all(a.end <= b.start for a, b in itertools.pairwise(kept))
    for c in candidates:
        if c not in kept:  # dropped only for an overlapping kept span of the same or higher priority
            rank = ["pan", "ssn", "phone", "cvv"].index
            assert any(k.start < c.end and c.start < k.end and rank(k.kind) <= rank(c.kind) for k in kept)
