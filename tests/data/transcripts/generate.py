"""Generate corpus.jsonl: synthetic call-center utterances with labelled sensitive spans.

Run once and commit the output (``python tests/data/transcripts/generate.py``); the seed is
fixed, so the file is reproducible. No value is real:

- card numbers use public test BINs (411111, 424242, 555555, 378282, 601111, ...) with random
  account digits and a Luhn check digit;
- SSNs use area 900-999 with group 01-49, a range issued neither as SSN nor as ITIN;
- US phone numbers use 555-0100..0199 (reserved for fiction) and UK/AU numbers the Ofcom and
  ACMA drama ranges;
- emails use example.com/.net/.org.

Each line is ``{"text", "spans": [{"kind", "start", "end"}], "category"}``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

SEED = 20240917
OUT = Path(__file__).with_name("corpus.jsonl")

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEST_BINS = [
    ("411111", 16),
    ("424242", 16),
    ("400000", 16),
    ("401288", 16),
    ("411111", 13),
    ("411111", 19),
    ("555555", 16),
    ("510510", 16),
    ("222300", 16),
    ("378282", 15),
    ("371449", 15),
    ("601111", 16),
    ("601100", 16),
    ("353011", 16),
    ("620000", 16),
    ("620000", 19),
    ("305693", 14),
]
AREA_CODES = ["212", "312", "415", "617", "206", "303", "512", "702", "404", "213", "305", "718", "919"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
FIRST = ["jane", "john", "maria", "li", "ahmed", "olga", "sam", "priya", "noah", "emma", "diego", "kofi"]
LAST = ["doe", "smith", "garcia", "chen", "khan", "ivanova", "lee", "patel", "brown", "novak"]
DOMAINS = ["example.com", "example.net", "example.org", "mail.example.com", "example.co.uk"]
FILLERS = ["um", "uh", "uh,", "sorry", "that's", "hmm", "so", "let me see", "hold on", "wait", "okay"]


class Utterance:
    """Builds one labelled text."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[dict[str, object]] = []
        self.length = 0

    def say(self, text: str) -> Utterance:
        self.parts.append(text)
        self.length += len(text)
        return self

    def item(self, kind: str, text: str) -> Utterance:
        self.spans.append({"kind": kind, "start": self.length, "end": self.length + len(text)})
        return self.say(text)

    def record(self, category: str) -> dict[str, object]:
        return {"text": "".join(self.parts), "spans": self.spans, "category": category}


# ---------------------------------------------------------------- values


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(digits: str) -> bool:
    return luhn_digit(digits[:-1]) == digits[-1]


def new_pan(rng: random.Random, amex: bool | None = None) -> str:
    choices = [b for b in TEST_BINS if amex is None or (b[1] == 15) == amex]
    bin_, length = rng.choice(choices)
    body = bin_ + "".join(rng.choice("0123456789") for _ in range(length - len(bin_) - 1))
    return body + luhn_digit(body)


def not_luhn(rng: random.Random, length: int, first: str = "4") -> str:
    while True:
        d = first + "".join(rng.choice("0123456789") for _ in range(length - 1))
        if not luhn_ok(d):
            return d


def luhn_with(rng: random.Random, first: str) -> str:
    """A Luhn-valid 16-digit number whose prefix belongs to no card brand."""
    body = first + "".join(rng.choice("0123456789") for _ in range(14))
    return body + luhn_digit(body)


def new_ssn(rng: random.Random) -> str:
    return f"{rng.randint(900, 999)}{rng.randint(1, 49):02d}{rng.randint(1, 9999):04d}"


def us_phone(rng: random.Random) -> str:
    return rng.choice(AREA_CODES) + "555" + f"01{rng.randint(0, 99):02d}"


def uk_phone(rng: random.Random) -> tuple[str, str]:
    """(E.164 digits without '+', written international form)."""
    if rng.random() < 0.6:
        tail = f"{rng.randint(0, 999):03d}"
        return "4420794600" + tail[-2:], f"+44 20 7946 0{tail[-3:]}"
    tail = f"{rng.randint(0, 999):03d}"
    return "441134960" + tail, f"+44 113 496 0{tail}"


def groups_of(pan: str) -> list[str]:
    if len(pan) == 15:
        return [pan[:4], pan[4:10], pan[10:]]
    out = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    return out


# ---------------------------------------------------------------- spoken forms


def spoken(digits: str, rng: random.Random, zero: str | None = None) -> str:
    zero = zero or rng.choice(["zero", "oh"])
    return " ".join(zero if d == "0" else WORDS[int(d)] for d in digits)


def spoken_repeats(digits: str, zero: str = "oh") -> str:
    """Read runs of equal digits as "double"/"triple"."""
    out: list[str] = []
    i = 0
    while i < len(digits):
        j = i
        while j < len(digits) and digits[j] == digits[i] and j - i < 3:
            j += 1
        word = zero if digits[i] == "0" else WORDS[int(digits[i])]
        out.append({1: word, 2: f"double {word}", 3: f"triple {word}"}[j - i])
        i = j
    return " ".join(out)


def pan_text(pan: str, style: str, rng: random.Random) -> str:
    groups = groups_of(pan)
    if style == "space":
        return " ".join(groups)
    if style == "dash":
        return "-".join(groups)
    if style == "plain":
        return pan
    if style == "spoken":
        return spoken(pan, rng)
    if style == "spoken_groups":
        zero = rng.choice(["zero", "oh"])
        return ", ".join(spoken(g, rng, zero) for g in groups)
    if style == "repeats":
        return ", ".join(spoken_repeats(g) for g in groups)
    if style == "mixed":
        parts = [g if rng.random() < 0.5 else spoken(g, rng) for g in groups]
        if all(p.isdigit() for p in parts):
            parts[-1] = spoken(groups[-1], rng)
        if not any(p.isdigit() for p in parts):
            parts[0] = groups[0]
        return rng.choice([" ", ", "]).join(parts)
    if style == "singles":  # digits typed one by one
        return " ".join(pan)
    if style == "pairs":  # "forty one, eleven, ..." as some callers read cards
        return ", ".join(" ".join(pair_words(g[i : i + 2]) for i in range(0, len(g), 2)) for g in groups)
    if style == "fillers":
        out = groups[0]
        for g in groups[1:]:
            filler = rng.choice(FILLERS)
            out += rng.choice([f" {filler} ", f", {filler}, ", f" {filler}... "]) + (
                g if rng.random() < 0.6 else spoken(g, rng)
            )
        return out
    raise ValueError(style)


def two_digit_words(n: int) -> str:
    if n < 10:
        return f"oh {WORDS[n]}"
    if n < 20:
        return [
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ][n - 10]
    return TENS[n // 10] + ("" if n % 10 == 0 else f" {WORDS[n % 10]}")


def pair_words(pair: str) -> str:
    """ "41" -> "forty one", "07" -> "oh seven", "5" -> "five"."""
    return spoken(pair, random.Random(0), "oh") if len(pair) == 1 else two_digit_words(int(pair))


def expiry_text(month: int, year: int, rng: random.Random, keyword: bool) -> str:
    """An expiry; forms that need an expiry word are used only when ``keyword``."""
    forms = [
        f"{month:02d}/{year}",
        f"{month}/{year}",
        f"{month:02d}/20{year}",
        f"{month:02d} {year}",
        f"{two_digit_words(month)} {two_digit_words(year)}",
        f"{spoken(f'{month:02d}{year}', rng)}",
        f"{MONTHS[month - 1]} 20{year}",
        f"{MONTHS[month - 1]} of {year}",
        f"{MONTHS[month - 1]} twenty {two_digit_words(year)}",
        f"{month:02d}{year}",
    ]
    if keyword:
        forms += [
            f"{WORDS[month]} {two_digit_words(year)}" if month < 10 else f"{month}/{year}",
            f"{MONTHS[month - 1]} of twenty {two_digit_words(year)}",
        ]
    return rng.choice(forms)


def cvv_text(cvv: str, rng: random.Random) -> str:
    return rng.choice(
        [cvv, cvv, spoken(cvv, rng), " ".join(cvv), spoken_repeats(cvv) if len(set(cvv)) < 3 else cvv]
    )


def ssn_text(ssn: str, style: str, rng: random.Random) -> str:
    a, g, s = ssn[:3], ssn[3:5], ssn[5:]
    return {
        "dash": f"{a}-{g}-{s}",
        "space": f"{a} {g} {s}",
        "plain": ssn,
        "spoken": spoken(ssn, rng),
        "spoken_groups": f"{spoken(a, rng, 'oh')}, {spoken(g, rng, 'oh')}, {spoken(s, rng, 'oh')}",
        "spoken_dash": f"{spoken(a, rng)} dash {spoken(g, rng)} dash {spoken(s, rng)}",
    }[style]


def phone_text(digits: str, style: str, rng: random.Random) -> str:
    a, e, n = digits[:3], digits[3:6], digits[6:]
    return {
        "paren": f"({a}) {e}-{n}",
        "dash": f"{a}-{e}-{n}",
        "dot": f"{a}.{e}.{n}",
        "space": f"{a} {e} {n}",
        "plain": digits,
        "plus1": f"+1 {a} {e} {n}",
        "one": f"1-{a}-{e}-{n}",
        "spoken": spoken(digits, rng, "oh"),
        "spoken_groups": f"{spoken(a, rng, 'oh')}, {spoken(e, rng, 'oh')}, {spoken(n, rng, 'oh')}",
        "mixed": f"{a} {e} {spoken(n, rng, 'oh')}",
        "area": f"{spoken(a, rng, 'oh')}, then {spoken(e, rng, 'oh')}, {spoken(n, rng, 'oh')}",
    }[style]


def email_text(rng: random.Random, style: str) -> str:
    first, last, domain = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
    if style == "written":
        local = rng.choice(
            [
                f"{first}.{last}",
                f"{first}_{last}{rng.randint(1, 99)}",
                f"{first[0]}{last}",
                f"{first}+billing",
            ]
        )
        return f"{local}@{domain}"
    spoken_domain = domain.replace(".", " dot ")
    return rng.choice(
        [
            f"{first} dot {last} at {spoken_domain}",
            f"{first} underscore {last} at {spoken_domain}",
            f"{first}{last} at {spoken_domain}",
            f"{first}.{last} at {domain}",
            f"{first[0]} dash {last} at {spoken_domain}",
            f"{first} dot {last} {rng.randint(1, 99)} at {spoken_domain}",
        ]
    )


# ---------------------------------------------------------------- utterance families

Gen = Callable[[random.Random], Utterance]


def card_intro(rng: random.Random) -> str:
    return rng.choice(
        [
            "Customer: my card number is ",
            "Customer: sure, it's ",
            "Customer: the card is ",
            "Customer: okay, ",
            "Agent: go ahead with the card number. Customer: ",
            "Customer: yeah the long number is ",
            "Customer: it's a visa, ",
        ]
    )


def pan_only(style: str) -> Gen:
    def gen(rng: random.Random) -> Utterance:
        u = Utterance().say(card_intro(rng))
        u.item("pan", pan_text(new_pan(rng), style, rng))
        return u.say(rng.choice([".", "", ". Agent: thank you.", ", did you get that?", " and that's it."]))

    return gen


def pan_readback(rng: random.Random) -> Utterance:
    pan = new_pan(rng)
    u = (
        Utterance()
        .say(card_intro(rng))
        .item("pan", pan_text(pan, rng.choice(["space", "spoken_groups"]), rng))
    )
    u.say(rng.choice([". Agent: let me read that back, ", ". Agent: okay so that's ", ". Agent: I have "]))
    u.item("pan", pan_text(pan, rng.choice(["spoken_groups", "space", "repeats", "dash"]), rng))
    return u.say(rng.choice([", is that correct? Customer: yes.", ". Right? Customer: correct.", "."]))


def pan_correction(rng: random.Random) -> Utterance:
    pan = new_pan(rng, amex=False)
    g = groups_of(pan)
    u = Utterance().say(card_intro(rng)).say(f"{g[0]} {g[1]}, sorry, let me start again. ")
    return u.item("pan", pan_text(pan, "space", rng)).say(".")


def full_card(rng: random.Random) -> Utterance:
    amex = rng.random() < 0.2
    pan = new_pan(rng, amex=amex)
    month, year = rng.randint(1, 12), rng.randint(25, 34)
    cvv = "".join(rng.choice("0123456789") for _ in range(4 if amex else 3))
    u = (
        Utterance()
        .say(card_intro(rng))
        .item("pan", pan_text(pan, rng.choice(["space", "dash", "spoken_groups", "mixed", "fillers"]), rng))
    )
    if rng.random() < 0.3:  # all in one breath, no keywords
        u.say(", ").item("expiry", f"{month:02d}/{year}").say(", ").item("cvv", cvv).say(".")
        return u
    u.say(
        rng.choice(
            [
                ". Agent: and the expiration date? Customer: ",
                ". Agent: expiry? Customer: it expires ",
                ". Agent: what's the exp date? Customer: ",
                ", valid thru ",
            ]
        )
    )
    u.item("expiry", expiry_text(month, year, rng, keyword=True))
    code = (
        "four digit code on the front"
        if amex
        else rng.choice(
            ["security code", "three digit code on the back", "CVV", "CVC", "code on the back of the card"]
        )
    )
    u.say(
        rng.choice([f". Agent: and the {code}? Customer: ", f". Agent: the {code} please. Customer: it's "])
    )
    return u.item("cvv", cvv_text(cvv, rng)).say(rng.choice([".", ". Agent: thank you.", ""]))


def expiry_first(rng: random.Random) -> Utterance:
    month, year = rng.randint(1, 12), rng.randint(25, 34)
    u = (
        Utterance()
        .say("Customer: the expiration is ")
        .item("expiry", expiry_text(month, year, rng, keyword=True))
    )
    u.say(" and the number is ").item(
        "pan", pan_text(new_pan(rng, amex=False), rng.choice(["space", "spoken"]), rng)
    )
    return u.say(".")


def extras_keyword_only(rng: random.Random) -> Utterance:
    month, year = rng.randint(1, 12), rng.randint(25, 34)
    cvv = f"{rng.randint(100, 999)}"
    u = Utterance()
    if rng.random() < 0.5:
        u.say("Agent: can you confirm the expiration date on the card? Customer: ")
        return u.item("expiry", expiry_text(month, year, rng, keyword=True)).say(".")
    u.say(
        rng.choice(
            [
                "Agent: and the security code? Customer: ",
                "Customer: the CVV is ",
                "Agent: the three digit number on the back? Customer: uh ",
            ]
        )
    )
    return u.item("cvv", cvv_text(cvv, rng)).say(".")


def ssn(style: str) -> Gen:
    def gen(rng: random.Random) -> Utterance:
        intros = [
            "Agent: can I have your social security number? Customer: ",
            "Customer: my social is ",
            "Agent: to verify, your SSN please. Customer: it's ",
            "Customer: social security number ",
        ]
        if style == "dash":  # the dashed shape needs no context word
            intros += ["Customer: yes, it's ", "Customer: the number they gave me was "]
        u = Utterance().say(rng.choice(intros))
        return u.item("ssn", ssn_text(new_ssn(rng), style, rng)).say(
            rng.choice([".", "", ". Agent: thanks."])
        )

    return gen


def ssn_last_four(rng: random.Random) -> Utterance:
    tail = new_ssn(rng)[5:]
    u = Utterance().say(
        rng.choice(
            [
                "Agent: what are the last four of your social? Customer: ",
                "Agent: and the last 4 digits of your SSN? Customer: ",
            ]
        )
    )
    return u.item("ssn", rng.choice([tail, spoken(tail, rng)])).say(".")


def phone(style: str) -> Gen:
    def gen(rng: random.Random) -> Utterance:
        u = Utterance().say(
            rng.choice(
                [
                    "Customer: you can reach me at ",
                    "Agent: best callback number? Customer: ",
                    "Customer: my cell is ",
                    "Customer: the phone number on the account is ",
                    "Customer: call me on ",
                ]
            )
        )
        if style == "area":
            u.say("area code ")
        return u.item("phone", phone_text(us_phone(rng), style, rng)).say(rng.choice([".", " anytime.", ""]))

    return gen


def phone_intl(rng: random.Random) -> Utterance:
    digits, written = uk_phone(rng)
    u = Utterance().say(rng.choice(["Customer: I'm in London, my number is ", "Customer: my mobile is "]))
    if rng.random() < 0.7:
        return u.item("phone", written).say(".")
    return u.item("phone", "plus " + spoken(digits, rng, "oh")).say(".")


def email(style: str) -> Gen:
    def gen(rng: random.Random) -> Utterance:
        u = Utterance().say(
            rng.choice(
                [
                    "Customer: my email is ",
                    "Agent: and the email address on file? Customer: ",
                    "Customer: send the receipt to my email, ",
                    "Customer: e-mail is ",
                ]
            )
        )
        return u.item("email", email_text(rng, style)).say(rng.choice([".", "", ", thanks."]))

    return gen


def multi(rng: random.Random) -> Utterance:
    u = Utterance().say("Agent: thanks for calling, can I get your phone number? Customer: ")
    u.item("phone", phone_text(us_phone(rng), rng.choice(["dash", "spoken_groups", "space"]), rng))
    u.say(". Agent: and your email? Customer: ").item(
        "email", email_text(rng, rng.choice(["written", "spoken"]))
    )
    u.say(". Agent: I'll take the payment now, card number please. Customer: ")
    pan = new_pan(rng, amex=False)
    u.item("pan", pan_text(pan, rng.choice(["space", "spoken_groups", "fillers"]), rng))
    u.say(". Agent: expiration? Customer: ").item(
        "expiry", expiry_text(rng.randint(1, 12), rng.randint(25, 34), rng, keyword=True)
    )
    u.say(". Agent: and the security code? Customer: ").item("cvv", f"{rng.randint(100, 999)}")
    return u.say(rng.choice([". Agent: your total is $49.99, thank you.", ". Agent: that's all, thanks."]))


# ---------------------------------------------------------------- hard negatives


def negative(templates: list[Callable[[random.Random], str]]) -> Gen:
    def gen(rng: random.Random) -> Utterance:
        return Utterance().say(rng.choice(templates)(rng))

    return gen


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


ORDER_IDS: list[Callable[[random.Random], str]] = [
    lambda r: f"Customer: my order number is {r.randint(1000000, 9999999)}.",
    lambda r: f"Agent: I see order #{r.randint(10000, 99999)} shipped yesterday.",
    lambda r: f"Customer: the order is A-{r.randint(10000, 99999)}.",
    lambda r: f"Agent: your confirmation number is {_digits(r, 3)} {_digits(r, 3)} {_digits(r, 4)}.",
    lambda r: f"Customer: order number {spoken(_digits(r, 6), r)}.",
    lambda r: f"Agent: your reference number is {r.choice('ABCDEFGHJK')}{_digits(r, 8)}.",
    lambda r: f"Customer: the ticket number is {_digits(r, 8)}.",
    lambda r: f"Agent: case {_digits(r, 4)}-{_digits(r, 4)} is open.",
    lambda r: f"Customer: my account number is {_digits(r, 10)}.",
    lambda r: f"Agent: order number {us_phone(r)} was refunded.",
    lambda r: f"Agent: the tracking number is 9400 1000 {_digits(r, 4)} {_digits(r, 4)} {_digits(r, 4)} 00.",
    lambda r: f"Customer: my member id is {_digits(r, 9)}.",
]
NON_LUHN: list[Callable[[random.Random], str]] = [
    lambda r: "Agent: the reference is " + " ".join(groups_of(not_luhn(r, 16))) + ".",
    lambda r: f"Customer: confirmation {not_luhn(r, 16, '5')}.",
    lambda r: "Agent: your account number is " + "-".join(groups_of(not_luhn(r, 16, "6"))) + ".",
    lambda r: f"Customer: the gift card says {spoken(not_luhn(r, 16), r)}, is that valid?",
    lambda r: f"Agent: transaction id {not_luhn(r, 19, '3')}.",
    lambda r: "Customer: the number on the letter is " + ", ".join(groups_of(not_luhn(r, 16, "2"))) + ".",
    lambda r: "Customer: my loyalty number is " + " ".join(groups_of(luhn_with(r, r.choice("01789")))) + ".",
]
DATES: list[Callable[[random.Random], str]] = [
    lambda r: f"Customer: I was charged on {r.randint(1, 12)}/{r.randint(1, 28)}/2024.",
    lambda r: f"Agent: your next bill is due {r.choice(MONTHS)} {r.randint(1, 28)}th.",
    lambda r: f"Customer: I moved here in {r.choice(MONTHS)} {r.randint(2001, 2023)}.",
    lambda r: f"Agent: the plan renews on 2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}.",
    lambda r: (
        f"Customer: my date of birth is {r.randint(1, 12):02d}/{r.randint(1, 28):02d}/19{r.randint(50, 99)}."
    ),
    lambda r: f"Agent: that was back in {r.randint(2015, 2023)}, right?",
    lambda r: f"Customer: the {r.randint(1, 28)}th of {r.choice(MONTHS)} works for me.",
    lambda r: f"Agent: you may want to call back after {r.choice(MONTHS[:6])} {r.randint(1, 28)}.",
]
AMOUNTS: list[Callable[[random.Random], str]] = [
    lambda r: f"Agent: the balance is ${r.randint(1, 9)},{_digits(r, 3)}.{_digits(r, 2)}.",
    lambda r: f"Customer: I paid ${r.randint(10, 99)}.{_digits(r, 2)} last month.",
    lambda r: f"Agent: that's {two_digit_words(r.randint(20, 59))} dollars and {r.randint(1, 99)} cents.",
    lambda r: f"Customer: it was {WORDS[r.randint(1, 9)]} hundred dollars.",
    lambda r: f"Agent: a fee of {r.randint(100, 999)} dollars applies.",
    lambda r: f"Customer: they took out ${r.randint(100, 999)} twice.",
]
TIMES: list[Callable[[random.Random], str]] = [
    lambda r: f"Agent: we open at {r.randint(7, 10)}:{r.choice(['00', '30'])} am.",
    lambda r: f"Customer: call me after {r.randint(1, 5)}:{r.randint(10, 59)} pm.",
    lambda r: f"Agent: the technician comes at {r.choice(['ten thirty', 'two fifteen', 'nine forty five'])}.",
    lambda r: f"Customer: around {WORDS[r.randint(2, 9)]} o'clock is fine.",
]
ZIPS: list[Callable[[random.Random], str]] = [
    lambda r: f"Customer: my zip code is {r.randint(10000, 99999)}.",
    lambda r: f"Customer: zip is {r.randint(10000, 99999)}-{_digits(r, 4)}.",
    lambda r: f"Agent: and the billing zip? Customer: {spoken(str(r.randint(10000, 99999)), r, 'oh')}.",
    lambda r: (
        f"Customer: it's {r.randint(100, 999)} Main Street, apartment {r.randint(1, 40)}{r.choice('ABC')}."
    ),
]
SMALL_TALK: list[Callable[[random.Random], str]] = [
    lambda r: "Agent: one moment please while I pull that up.",
    lambda r: "Customer: I have one question about my bill.",
    lambda r: "Agent: it takes two or three business days.",
    lambda r: f"Customer: I called {WORDS[r.randint(2, 5)]} times already.",
    lambda r: "Agent: give me one second. Customer: oh, okay, no problem.",
    lambda r: "Customer: I have two cards and one of them is blocked.",
    lambda r: "Agent: is there anything else? Customer: no, that's it, thanks.",
    lambda r: "Customer: my son is seventeen and my daughter is twenty one.",
]
CARD_CONTEXT: list[Callable[[random.Random], str]] = [
    lambda r: f"Agent: I see the card ending in {_digits(r, 4)} on file.",
    lambda r: f"Customer: the one ending in {spoken(_digits(r, 4), r)}.",
    lambda r: f"Agent: can you confirm the last four digits of the card? Customer: {_digits(r, 4)}.",
    lambda r: f"Agent: your card was charged {r.randint(100, 999)} dollars on the {r.randint(2, 28)}th.",
    lambda r: f"Customer: my debit card PIN is not working, the branch is {r.randint(100, 999)} Oak Road.",
    lambda r: f"Agent: your extension is {_digits(r, 4)}.",
    lambda r: f"Customer: my room number is {r.randint(100, 999)}, and I want to update my credit card.",
]


def card_with_negative(rng: random.Random) -> Utterance:
    """A card number followed by things that must stay: amounts, order ids, dates."""
    u = Utterance().say(card_intro(rng)).item("pan", pan_text(new_pan(rng, amex=False), "space", rng))
    return u.say(
        rng.choice(
            [
                f". Agent: I'll charge ${rng.randint(10, 99)}.{_digits(rng, 2)} to that card.",
                f". Agent: that's for order number {rng.randint(1000, 9999)}, right?",
                f". Agent: the payment will post by {rng.choice(MONTHS)} {rng.randint(2, 28)}th.",
                f". Agent: your balance after this is {rng.randint(100, 999)} dollars.",
                f". Agent: and the billing zip code? Customer: {rng.randint(10000, 99999)}.",
            ]
        )
    )


FAMILIES: list[tuple[str, int, Gen]] = [
    ("pan_written_spaces", 14, pan_only("space")),
    ("pan_written_dashes", 10, pan_only("dash")),
    ("pan_contiguous", 8, pan_only("plain")),
    ("pan_spoken", 10, pan_only("spoken")),
    ("pan_spoken_groups", 8, pan_only("spoken_groups")),
    ("pan_double_triple", 12, pan_only("repeats")),
    ("pan_mixed", 12, pan_only("mixed")),
    ("pan_pairs", 6, pan_only("pairs")),
    ("pan_single_digits", 4, pan_only("singles")),
    ("pan_fillers", 16, pan_only("fillers")),
    ("pan_readback", 14, pan_readback),
    ("pan_correction", 5, pan_correction),
    ("card_full", 28, full_card),
    ("card_extras_keyword", 14, extras_keyword_only),
    ("card_expiry_first", 6, expiry_first),
    ("ssn_dash", 8, ssn("dash")),
    ("ssn_space_plain", 8, lambda r: ssn(r.choice(["space", "plain"]))(r)),
    ("ssn_spoken", 12, lambda r: ssn(r.choice(["spoken", "spoken_groups", "spoken_dash"]))(r)),
    ("ssn_last_four", 6, ssn_last_four),
    (
        "phone_us_written",
        24,
        lambda r: phone(r.choice(["paren", "dash", "dot", "space", "plain", "plus1", "one"]))(r),
    ),
    ("phone_us_spoken", 14, lambda r: phone(r.choice(["spoken", "spoken_groups", "mixed", "area"]))(r)),
    ("phone_intl", 10, phone_intl),
    ("email_written", 12, email("written")),
    ("email_spoken", 14, email("spoken")),
    ("multi_item", 14, multi),
    ("neg_order_ids", 24, negative(ORDER_IDS)),
    ("neg_non_luhn", 14, negative(NON_LUHN)),
    ("neg_dates", 14, negative(DATES)),
    ("neg_amounts", 12, negative(AMOUNTS)),
    ("neg_times", 8, negative(TIMES)),
    ("neg_zip_address", 8, negative(ZIPS)),
    ("neg_small_talk", 10, negative(SMALL_TALK)),
    ("neg_card_context", 12, negative(CARD_CONTEXT)),
    ("neg_after_card", 10, card_with_negative),
]


def generate(seed: int = SEED) -> list[dict[str, object]]:
    """All records, in a fixed order."""
    rng = random.Random(seed)
    return [gen(rng).record(name) for name, count, gen in FAMILIES for _ in range(count)]


def main() -> None:
    records = generate()
    with OUT.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} utterances to {OUT}")


if __name__ == "__main__":
    main()
