"""The engine: replacement, overlaps, word lists, errors, public API."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

import keysvc.tokens.redaction as redaction
from keysvc.errors import InvalidArgument
from keysvc.tokens.redaction import (
    MAX_TEXT_CHARS,
    Redactor,
    Span,
    Word,
    WordSpan,
    find_spans,
    label,
    mask,
    redact,
    redact_words,
)
from tests.unit.redaction.cards import with_check_digit

CALL = (
    "Customer: my card is four one one one, one one one one, one one one one, one one one one. "
    "Agent: expiry? Customer: 05/27. Agent: and the security code? Customer: 123. "
    "Customer: call me on (415) 555-0132 or email Jane.Doe at Example dot com. My social is 912-34-5678."
)


def test_default_labels() -> None:
    assert redact(CALL).text == (
        "Customer: my card is [PAN]. Agent: expiry? Customer: [EXPIRY]. Agent: and the security code? "
        "Customer: [CVV]. Customer: call me on [PHONE] or email [EMAIL]. My social is [SSN]."
    )


def test_spans_refer_to_the_original_text() -> None:
    result = redact(CALL)
    assert [s.kind for s in result.spans] == ["pan", "expiry", "cvv", "phone", "email", "ssn"]
    assert result.spans == tuple(find_spans(CALL))
    texts = [CALL[s.start : s.end] for s in result.spans]
    assert texts[0] == "four one one one, one one one one, one one one one, one one one one"
    assert texts[3:] == ["(415) 555-0132", "Jane.Doe at Example dot com", "912-34-5678"]


def test_mask_keeps_the_last_four_digits_of_a_card() -> None:
    pan = with_check_digit("411111111111123")
    assert redact(f"card {pan} ok", mask).text == f"card [PAN ****{pan[-4:]}] ok"
    assert redact("card four one one one, one one one one, one one one one, one one one one", mask).text == (
        "card [PAN ****1111]"
    )
    assert mask(Span("ssn", 0, 9), "912345678") == "[SSN]"


def test_replacer_gets_normalised_values() -> None:
    seen: list[tuple[str, str]] = []

    def record(span: Span, value: str) -> str:
        seen.append((span.kind, value))
        return f"<{span.kind}>"

    out = redact(CALL, record)
    assert "<pan>" in out.text
    assert seen == [
        ("pan", "4111111111111111"),
        ("expiry", "05/27"),
        ("cvv", "123"),
        ("phone", "+14155550132"),
        ("email", "jane.doe@example.com"),
        ("ssn", "912345678"),
    ]


def test_replacer_must_return_text() -> None:
    bad: Callable[[Span, str], str] = lambda span, value: None  # type: ignore[assignment,return-value]  # noqa: E731
    with pytest.raises(InvalidArgument) as err:
        redact("ssn 912-34-5678", bad)
    assert "912" not in str(err.value)


def test_card_beats_an_overlapping_phone_number() -> None:
    pan = with_check_digit("415555013200000")  # starts with the valid phone number 415 555 0132
    text = f"{pan[:3]} {pan[3:6]} {pan[6:10]} {pan[10:]}"
    assert Redactor().detect(text)[0].value == pan
    assert [s.kind for s in find_spans(text)] == ["pan"]


def test_no_overlaps_and_sorted() -> None:
    spans = find_spans(CALL + " " + CALL)
    assert spans == sorted(spans, key=lambda s: s.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


# ---------------------------------------------------------------- words


def words_of(text: str, step: int = 300) -> list[Word]:
    return [Word(w, i * step, i * step + 250) for i, w in enumerate(text.split(" "))]


def test_redact_words_maps_spans_to_word_indexes_and_times() -> None:
    words = words_of("my card is 4111 1111 1111 1111, thanks, and my email is jo@example.com.")
    result = redact_words(words)
    pan, email = result.spans
    assert isinstance(pan, WordSpan)
    assert (pan.kind, pan.word_start, pan.word_end, pan.start_ms, pan.end_ms) == ("pan", 3, 7, 900, 2050)
    assert (email.word_start, email.word_end) == (12, 13)
    assert [w.text for w in result.words] == [
        "my", "card", "is", "[PAN]", "", "", ",", "thanks,", "and", "my", "email", "is", "[EMAIL].",
    ]  # fmt: skip
    assert [(w.start_ms, w.end_ms) for w in result.words] == [(w.start_ms, w.end_ms) for w in words]


def test_redact_words_offsets_are_those_of_the_joined_text() -> None:
    words = words_of("call four one five five five five oh one three two please")
    joined = " ".join(w.text for w in words)
    (span,) = redact_words(words).spans
    assert joined[span.start : span.end] == "four one five five five five oh one three two"
    assert [w.text for w in words[span.word_start : span.word_end]] == joined[span.start : span.end].split()


def test_redact_words_without_times() -> None:
    result = redact_words([Word("ssn"), Word("912-34-5678")], mask)
    (span,) = result.spans
    assert (span.start_ms, span.end_ms) == (None, None)
    assert [w.text for w in result.words] == ["ssn", "[SSN]"]


def test_redact_words_with_several_spans_in_one_word() -> None:
    result = redact_words([Word("cvv"), Word("123,05/27?")], label)
    assert [w.text for w in result.words][1] in ("[CVV],05/27?", "[CVV],[EXPIRY]?")
    assert result.words[1].text.count("[") == len([s for s in result.spans if s.word_start == 1])


# ---------------------------------------------------------------- errors never echo input

SECRET = "4111 1111 1111 1111"


def assert_safe(err: pytest.ExceptionInfo[BaseException]) -> None:
    for rendered in (str(err.value), repr(err.value), *map(str, err.value.args)):
        assert "4111" not in rendered
        assert "1111" not in rendered


@pytest.mark.parametrize(
    "call",
    [
        lambda: redact(SECRET.encode()),  # type: ignore[arg-type]
        lambda: find_spans(SECRET + " " * MAX_TEXT_CHARS),
        lambda: redact_words([Word(SECRET), Word(b"1111")]),  # type: ignore[arg-type]
        lambda: redact_words([SECRET]),  # type: ignore[list-item]
        lambda: redact(SECRET, lambda span, value: value.encode()),  # type: ignore[arg-type,return-value]
        lambda: find_spans(SECRET, region="XX"),
    ],
    ids=["bytes", "too-long", "word-bytes", "not-a-word", "bad-replacement", "bad-region"],
)
def test_errors_never_contain_input_text(call: Callable[[], object]) -> None:
    with pytest.raises(InvalidArgument) as err:
        call()
    assert_safe(err)


def test_reprs_do_not_show_text() -> None:
    assert "4111" not in repr(Word(SECRET, 1, 2))
    assert "4111" not in repr(Redactor().detect("card " + SECRET))
    assert "PAN" not in repr(redact("card " + SECRET))


def test_public_api() -> None:
    assert sorted(redaction.__all__) == sorted(
        [
            "KINDS", "MAX_TEXT_CHARS", "Detection", "Kind", "Redaction", "Redactor", "Replacer", "Span",
            "Word", "WordRedaction", "WordSpan", "find_spans", "label", "mask", "redact", "redact_words",
        ]
    )  # fmt: skip
    assert redaction.KINDS == ("pan", "cvv", "expiry", "ssn", "phone", "email")
