"""Each detector on its own: card numbers, security codes, expiry dates, SSNs, phones, emails."""

from __future__ import annotations

import pytest

from keysvc.tokens.redaction import Redactor, find_spans
from keysvc.tokens.redaction.detectors import is_pan, is_ssn, luhn_valid


def found(text: str, region: str = "US") -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in find_spans(text, region=region)]


# ---------------------------------------------------------------- primitives


@pytest.mark.parametrize(
    ("digits", "ok"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("0", True)],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_valid(digits) is ok


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("4111111111111111", True),  # Visa 16
        ("4222222222222", True),  # Visa 13
        ("378282246310005", True),  # Amex 15
        ("3782822463100050", False),  # Amex is never 16
        ("5555555555554444", True),  # Mastercard
        ("2223003122003222", True),  # Mastercard 2-series
        ("6011111111111117", True),  # Discover
        ("3530111333300000", True),  # JCB
        ("30569309025904", True),  # Diners 14
        ("9111111111111111", False),  # Luhn-valid, but no card brand starts with 9
        ("7111111111111117", False),
        ("411111111111", False),  # 12 digits
    ],
)
def test_is_pan_checks_luhn_brand_and_length(digits: str, ok: bool) -> None:
    assert luhn_valid(digits) or not ok
    assert is_pan(digits) is ok


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("912345678", True),
        ("000123456", False),
        ("666123456", False),
        ("912005678", False),
        ("912340000", False),
    ],
)
def test_is_ssn(digits: str, ok: bool) -> None:
    assert is_ssn(digits) is ok


# ---------------------------------------------------------------- card numbers

PAN_FORMS = [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "3782 822463 10005",
    "four one one one one one one one one one one one one one one one",
    "four one one one, one one one one, one one one one, one one one one",
    "four triple one, double one double one, one one one one, triple one one",
    "4111 one one one one 1111 one one one one",
    "4111 um 1111, uh, 1111 sorry, one one one one",
    "forty one eleven, eleven eleven, eleven eleven, eleven eleven",
    "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
    "6200-0064-7147-0007-003",  # 19 digits, its first 16 Luhn-valid too: the dashes carry on
]


@pytest.mark.parametrize("pan", PAN_FORMS)
def test_card_number_forms(pan: str) -> None:
    assert found(f"Customer: my card number is {pan}. Agent: thank you.") == [("pan", pan)]


def test_read_back_finds_both_readings() -> None:
    text = (
        "Customer: 4111 1111 1111 1111. "
        "Agent: so that's four one one one, one one one one, one one one one, one one one one?"
    )
    assert [k for k, _ in found(text)] == ["pan", "pan"]


def test_read_back_without_a_pause() -> None:
    assert found("4111 1111 1111 1111 4111 1111 1111 1111") == [
        ("pan", "4111 1111 1111 1111"),
        ("pan", "4111 1111 1111 1111"),
    ]


def test_correction_keeps_only_the_full_number() -> None:
    text = "it's 4111 1111, sorry, let me start again, 5555 5555 5555 4444"
    assert found(text) == [("pan", "5555 5555 5555 4444")]


@pytest.mark.parametrize(
    "text",
    [
        "the reference is 4532 7788 1234 5678",  # not Luhn-valid
        "confirmation 4532778812345678",
        "four five three two seven seven eight eight one two three four five six seven eight",
        "loyalty number 9111 1111 1111 1111",  # Luhn-valid, no card brand
        "tracking 9400 1000 0000 0000 0000 00",
        "the 16 items cost 4,111.11 dollars",
    ],
)
def test_card_number_negatives(text: str) -> None:
    assert found(text) == []


# ---------------------------------------------------------------- security code and expiry


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the security code is 737", [("cvv", "737")]),
        ("CVV one two three", [("cvv", "one two three")]),
        ("the code on the back is 4 5 6", [("cvv", "4 5 6")]),
        ("and the code's double four seven", [("cvv", "double four seven")]),
        ("card 4111 1111 1111 1111, 123", [("pan", "4111 1111 1111 1111"), ("cvv", "123")]),
        (
            "Amex 3782 822463 10005 and the four digit code on the front is 1234",
            [("pan", "3782 822463 10005"), ("cvv", "1234")],
        ),
        (
            "the code is 1234 and the card is 5555 5555 5555 4444",
            [("cvv", "1234"), ("pan", "5555 5555 5555 4444")],
        ),
    ],
)
def test_security_code_with_context(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "expiry",
    [
        "05/27",
        "5/27",
        "05/2027",
        "05 27",
        "0527",
        "oh five twenty seven",
        "zero five two seven",
        "five twenty seven",
        "oh five slash twenty seven",
        "May 2027",
        "May of 27",
        "May twenty twenty seven",
        "May of twenty twenty seven",
    ],
)
def test_expiry_forms_after_an_expiry_word(expiry: str) -> None:
    assert found(f"Agent: and the expiration date? Customer: {expiry}.") == [("expiry", expiry)]


def test_expiry_and_code_right_after_the_card() -> None:
    text = "4111 1111 1111 1111, 05/27, 123"
    assert found(text) == [("pan", "4111 1111 1111 1111"), ("expiry", "05/27"), ("cvv", "123")]


@pytest.mark.parametrize(
    "text",
    [
        "order 123 shipped on 05/27",
        "I moved here in May 2019",
        "you may 2 do that",
        "your card ending in 4242 was charged 125 dollars",
        "card 4111 1111 1111 1111. Agent: is this for order 5521?",
        "card 4111 1111 1111 1111. Agent: what's your date of birth? Customer: 04/12/1985",
        "card 4111 1111 1111 1111. Agent: your balance is 250 dollars",
        "card 4111 1111 1111 1111. Agent: and the billing zip code? Customer: 941",
        "Agent: can you confirm the last four of the card? Customer: 1111",
    ],
)
def test_codes_and_dates_without_card_context_stay(text: str) -> None:
    assert [k for k, _ in found(text) if k != "pan"] == []


# ---------------------------------------------------------------- SSN


@pytest.mark.parametrize(
    ("text", "ssn"),
    [
        ("yes, it's 912-34-5678", "912-34-5678"),
        ("my social is 912 34 5678", "912 34 5678"),
        ("SSN 912345678", "912345678"),
        (
            "social security number nine one two three four five six seven eight",
            "nine one two three four five six seven eight",
        ),
        (
            "my social is nine one two, three four, five six seven eight",
            "nine one two, three four, five six seven eight",
        ),
        (
            "social: nine one two dash three four dash five six seven eight",
            "nine one two dash three four dash five six seven eight",
        ),
        ("the last four of my social are 5678", "5678"),
    ],
)
def test_ssn_forms(text: str, ssn: str) -> None:
    assert found(text) == [("ssn", ssn)]


@pytest.mark.parametrize(
    "text", ["the claim number is 912 34 5678", "ticket 912345678", "last four 5678", "000-12-3456"]
)
def test_ssn_negatives(text: str) -> None:
    assert found(text) == []


# ---------------------------------------------------------------- phone


@pytest.mark.parametrize(
    "phone",
    [
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "415 555 0132",
        "4155550132",
        "+1 415 555 0132",
        "1-800-555-0199",
        "+44 20 7946 0123",
        "four one five five five five oh one three two",
        "four one five, five five five, oh one three two",
        "415 555 oh one three two",
        "plus four four two oh seven nine four six oh one two three",
    ],
)
def test_phone_forms(phone: str) -> None:
    assert found(f"you can reach me at {phone} anytime") == [("phone", phone)]


def test_phone_region_is_configurable() -> None:
    text = "my number is 020 7946 0123"
    assert found(text) == []
    assert [(s.kind, text[s.start : s.end]) for s in Redactor(region="GB").find_spans(text)] == [
        ("phone", "020 7946 0123")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "order number 4155550132 was refunded",
        "my account number is 4155550132",
        "zip 94105",
        "on 12/25/2023 at 10:30",
        "it was $1,234.56",
        "we are open 9 to 5",
    ],
)
def test_phone_negatives(text: str) -> None:
    assert found(text) == []


# ---------------------------------------------------------------- email


@pytest.mark.parametrize(
    "email",
    [
        "jane.doe@example.com",
        "j_smith42@example.co.uk",
        "jane+billing@example.org",
        "jane dot doe at example dot com",
        "jane underscore doe at example dot net",
        "j dash doe at mail dot example dot com",
        "jane.doe at example.com",
        "jane dot doe 42 at example dot com",
        "janedoe at example dot com",
    ],
)
def test_email_forms(email: str) -> None:
    assert found(f"my email is {email}, thanks") == [("email", email)]


@pytest.mark.parametrize(
    "text",
    [
        "I'll look at google dot com later",
        "meet me at the office",
        "we're at home",
        "the site is example dot com",
    ],
)
def test_email_negatives(text: str) -> None:
    assert found(text) == []


# ---------------------------------------------------------------- hard negatives

HARD_NEGATIVES = [
    "Agent: one moment please while I pull that up.",
    "Customer: I have one question about my bill.",
    "Agent: it takes two or three business days.",
    "Customer: I need 3 tickets for 2 adults and 1 child on flight 2231.",
    "Agent: your order number is 5521039 and it ships on 12/03/2024.",
    "Agent: the balance is $1,234.56 and the minimum payment is $25.",
    "Customer: call me after 3:45 pm, or around ten thirty.",
    "Customer: my zip code is 94105-1234.",
    "Agent: your confirmation number is 482 913 7730.",
    "Customer: my son is seventeen and my daughter is twenty one.",
    "Agent: I see the card ending in 4242 on file.",
    "Customer: it's 221 Baker Street, apartment 4B.",
    "Agent: that was back in 2019, right?",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives(text: str) -> None:
    assert found(text) == []
