"""Digit runs: spoken numbers, groups, gaps, and the map back to the original text."""

from __future__ import annotations

import pytest

from keysvc.tokens.redaction.spoken import digit_runs, normalise, phone_region


def digits(text: str) -> list[str]:
    return ["".join(g.digits for g in run.groups) for run in digit_runs(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("four one one one", "4111"),
        ("double five", "55"),
        ("triple seven", "777"),
        ("oh five twenty seven", "0527"),
        ("zero five two seven", "0527"),
        ("o seven", "07"),
        ("twenty twenty seven", "2027"),
        ("two thousand twenty seven", "2027"),
        ("two thousand and seven", None),
        ("nineteen eighty four", "1984"),
        ("forty one eleven", "4111"),
        ("twenty-seven", "27"),
        ("eight hundred", "800"),
        ("one hundred twenty three", "123"),
        ("eight hundred five five five", "800555"),
        ("FOUR One one ONE", "4111"),
        ("4111 one one one one", "41111111"),
    ],
)
def test_spoken_numbers_become_digits(text: str, expected: str | None) -> None:
    if expected is None:  # "and" is a filler between numbers, not part of one
        assert digits(text) == ["20007"]
    else:
        assert digits(text) == [expected]


def test_every_digit_maps_to_the_text_that_produced_it() -> None:
    text = "it's 41 double one, triple one five"
    (run,) = digit_runs(text)
    pieces = [text[a:b] for g in run.groups for a, b in g.spans]
    assert "".join(g.digits for g in run.groups) == "41111115"
    assert pieces == ["4", "1", "double one", "double one", "triple one", "triple one", "triple one", "five"]


def test_fillers_and_punctuation_join_groups_into_one_run() -> None:
    (run,) = digit_runs("4111 um 1111, uh, 1111 sorry one one one one.")
    assert [g.digits for g in run.groups] == ["4111", "1111", "1111", "1111"]
    assert run.gaps == ("filler", "filler", "filler")


@pytest.mark.parametrize(
    ("text", "gaps"),
    [
        ("123-45-6789", ("dash", "dash")),
        ("05/27", ("slash",)),
        ("4111 1111", ("space",)),
        ("4111, 1111", ("punct",)),
    ],
)
def test_gap_kinds(text: str, gaps: tuple[str, ...]) -> None:
    (run,) = digit_runs(text)
    assert run.gaps == gaps


@pytest.mark.parametrize(
    "text",
    ["4111 apples 1111", "4111 um uh er hmm 1111", "4111 and then I said that 1111", "5 of 27"],
)
def test_words_and_long_pauses_separate_runs(text: str) -> None:
    assert len(digit_runs(text)) == 2


def test_of_joins_only_after_a_month() -> None:
    (run,) = digit_runs("May of 27")
    assert [(g.digits, g.month) for g in run.groups] == [("05", True), ("27", False)]
    assert run.gaps == ("of",)


@pytest.mark.parametrize("text", ["$1,234.56", "1,250", "12.99", "10:30", "A123", "21st", "ten o'clock"])
def test_amounts_times_and_glued_digits_are_not_runs(text: str) -> None:
    assert digits(text) in ([], ["10"])


def test_digits_typed_one_by_one_form_one_group() -> None:
    (run,) = digit_runs("code 4 5 6 please")
    assert [g.digits for g in run.groups] == ["456"]


def test_normalised_run_maps_back_to_the_original() -> None:
    text = "call four one five, um, five five five, oh one three two"
    (run,) = digit_runs(text)
    start, _ = phone_region(text, run) or (0, 0)
    normalised = normalise(text, run, start)
    assert normalised is not None
    assert normalised.text == "415 555 0132"
    a, b = normalised.original(0, len(normalised.text))
    assert text[a:b] == "four one five, um, five five five, oh one three two"
    a, b = normalised.original(4, 7)
    assert text[a:b] == "five five five"


def test_plus_before_a_spoken_number_becomes_a_plus_sign() -> None:
    text = "dial plus four four two oh seven nine four six oh one two three"
    (run,) = digit_runs(text)
    normalised = normalise(text, run, run.start)
    assert normalised is not None
    assert normalised.text == "+442079460123"
    assert text[slice(*normalised.original(0, 1))] == "plus"


def test_written_runs_are_not_rewritten() -> None:
    text = "(415) 555-0132"
    (run,) = digit_runs(text)
    assert phone_region(text, run) == (0, len(text))
    assert normalise(text, run, 0) is None


def test_short_runs_have_no_phone_region() -> None:
    (run,) = digit_runs("one two three")
    assert phone_region("one two three", run) is None
