"""Transcript redaction throughput: typical 2-minute call transcripts per second.

    python -m bench.redact [--count 200] [--seconds 3]   (from the repo root)

Each transcript is ~300 words of agent/customer talk with a few sensitive items (a card
number with expiry and security code, a phone number, an email, sometimes an SSN), written
or spoken. ``measure`` takes any ``str -> object`` callable, so a "through the service"
variant only needs another backend next to ``in_process``.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

from keysvc.tokens.redaction import Redactor

Backend = Callable[[str], object]

_CHATTER = [
    "Agent: thank you for calling, my name is Alex, how can I help you today?",
    "Customer: hi, I'm calling about a charge on my last statement that I don't recognise.",
    "Agent: I'm sorry to hear that, I can certainly look into it for you.",
    "Agent: before we start I need to verify a few details on the account.",
    "Customer: sure, no problem, go ahead.",
    "Agent: one moment please while I pull up your account.",
    "Customer: I have one question as well about the late fee from March.",
    "Agent: I see order number 5521039 shipped on 12/03/2024 for $1,234.56.",
    "Customer: yes that was the laptop, but the second charge of $49.99 is not mine.",
    "Agent: okay, I can open a dispute for that, it takes three to five business days.",
    "Customer: great, and can you also update my payment method while we're at it?",
    "Agent: of course, I'll just need the new card details when you're ready.",
    "Customer: um, let me grab my wallet, hold on a second.",
    "Agent: take your time, there's no rush at all.",
    "Agent: your case number is 00451234 in case you need to call back.",
    "Customer: thanks, and my zip code changed too, it's 94105 now.",
    "Agent: got it, I've updated the billing address for you.",
    "Agent: is there anything else I can help you with today?",
    "Customer: no, that's everything, thank you so much for your help.",
    "Agent: you're welcome, have a great day and thanks for calling.",
]
_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _spoken(digits: str) -> str:
    return " ".join(_DIGITS[int(d)] for d in digits)


def _pan(rng: random.Random) -> str:
    body = "411111" + "".join(rng.choice("0123456789") for _ in range(9))
    total = sum(
        (2 * int(d) - 9 if 2 * int(d) > 9 else 2 * int(d)) if i % 2 == 0 else int(d)
        for i, d in enumerate(reversed(body))
    )
    return body + str((10 - total % 10) % 10)


def _sensitive(rng: random.Random) -> list[str]:
    pan = _pan(rng)
    grouped = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    card = rng.choice([grouped, ", ".join(_spoken(pan[i : i + 4]) for i in range(0, 16, 4))])
    phone = f"415555{rng.randint(100, 199):04d}"
    written = f"({phone[:3]}) {phone[3:6]}-{phone[6:]}"
    items = [
        f"Customer: okay, the card number is {card}.",
        f"Agent: and the expiration date? Customer: {rng.randint(1, 12):02d}/{rng.randint(25, 33)}.",
        f"Agent: the security code on the back? Customer: {_spoken(f'{rng.randint(100, 999)}')}.",
        f"Customer: you can call me back on {rng.choice([written, _spoken(phone)])}.",
        "Customer: my email is jane dot doe at example dot com.",
    ]
    if rng.random() < 0.3:
        items.append(
            f"Customer: my social is 9{rng.randint(10, 99)}-{rng.randint(10, 49)}-{rng.randint(1000, 9999)}."
        )
    return items


def make_transcripts(count: int, seed: int = 7, words: int = 300) -> list[str]:
    """``count`` synthetic call transcripts of about ``words`` words each."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        sentences = _sensitive(rng)
        while sum(len(s.split()) for s in sentences) < words:
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(_CHATTER))
        out.append(" ".join(sentences))
    return out


def in_process(region: str = "US") -> Backend:
    """The redaction engine called directly."""
    return Redactor(region=region).redact


def measure(backend: Backend, transcripts: Sequence[str], min_seconds: float) -> float:
    """Transcripts per second, cycling through ``transcripts`` for at least ``min_seconds``."""
    backend(transcripts[0])  # warm-up: regex and phone metadata loading
    done = 0
    start = time.perf_counter()
    while True:
        for text in transcripts:
            backend(text)
        done += len(transcripts)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="distinct transcripts")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum measuring time")
    args = parser.parse_args(argv)
    transcripts = make_transcripts(args.count)
    words = sum(len(t.split()) for t in transcripts) / len(transcripts)
    rate = measure(in_process(), transcripts, args.seconds)
    print(f"redact in-process: {rate:,.0f} transcripts/s ({words:.0f} words each, {1000 / rate:.2f} ms each)")
    from bench._harness import keysvc_server
    from keysvc_client import KeyServiceClient

    with keysvc_server() as (address, token), KeyServiceClient(address, token) as client:
        served = measure(client.redact, transcripts, args.seconds)
    print(f"redact through the service (one call per transcript): {served:,.0f} transcripts/s "
          f"({served / rate:.2f}x in-process)")


if __name__ == "__main__":
    main()
