"""Phone numbers, found by libphonenumber's matcher on the text and on its normalised form."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberMatcher

from keysvc.errors import InvalidArgument
from keysvc.tokens.redaction.context import follows_id_word
from keysvc.tokens.redaction.spans import Detection
from keysvc.tokens.redaction.spoken import Run, normalise, phone_region

# VALID: the number must be a real allocated number for its region, but its grouping is free.
# Speech-to-text groups digits as it hears them ("415 5550 132"), so STRICT_GROUPING and
# EXACT_GROUPING would miss dictated numbers, and POSSIBLE would take order ids and dates.
LENIENCY = Leniency.VALID


def check_region(region: str) -> str:
    """Return ``region`` if libphonenumber knows it, else raise InvalidArgument."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidArgument("unsupported phone region")
    return region


def find_phones(text: str, runs: Sequence[Run], region: str, claimed: Sequence[Detection]) -> list[Detection]:
    """Phone numbers in the digit runs of ``text``, written or spoken.

    The matcher sees each run long enough to be a phone number twice: as written, and with
    spoken digits written out and fillers dropped. Runs inside ``claimed`` spans are skipped.
    """
    found: dict[tuple[int, int], Detection] = {}
    claimed = sorted(claimed, key=lambda d: d.start)
    starts = [d.start for d in claimed]
    for run in runs:
        where = phone_region(text, run)
        i = bisect_right(starts, run.start) - 1
        if where is None or (i >= 0 and run.end <= claimed[i].end):
            continue
        start = where[0]
        for m in PhoneNumberMatcher(text[start : run.end], region, leniency=LENIENCY):
            found[(start + m.start, start + m.end)] = _detection(m.number, start + m.start, start + m.end)
        normalised = normalise(text, run, start)
        if normalised is not None:
            for m in PhoneNumberMatcher(normalised.text, region, leniency=LENIENCY):
                a, b = normalised.original(m.start, m.end)
                found.setdefault((a, b), _detection(m.number, a, b))
    return [d for d in found.values() if not follows_id_word(text, d.start)]


def _detection(number: phonenumbers.PhoneNumber, start: int, end: int) -> Detection:
    return Detection("phone", start, end, phonenumbers.format_number(number, PhoneNumberFormat.E164))
