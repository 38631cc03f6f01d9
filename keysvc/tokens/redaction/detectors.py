"""Numeric detectors over digit runs: card numbers, SSNs, and expiry dates and CVVs near a card.

Windows are always whole groups, so a spoken "one two three" or a written "4111" is never cut.
A run is searched for card numbers first, the rest for SSNs, and what remains for expiry and
security code, which also need card context: a card number shortly before, or a context word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from keysvc.tokens.redaction.context import Topic, topic_before
from keysvc.tokens.redaction.spans import Detection, Kind
from keysvc.tokens.redaction.spoken import Group, Run

_PAN_LENGTHS = (16, 15, 19, 14, 13, 18, 17)  # preference when windows at one start compete
_CARD_REACH = 250
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_UNIT_AFTER = re.compile(
    r"\s*(?:(?:dollars?|bucks|cents?|pounds?|euros?|percent|minutes?|mins?|hours?|hrs?|days?|weeks?"
    r"|months?|years?|times|am|pm|a\.m\.|p\.m\.|o'?clock|items?|people|miles?)\b|%)",
    re.IGNORECASE,
)


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) check of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = ord(ch) - 48
        total += _LUHN_DOUBLED[value] if i & 1 else value
    return total % 10 == 0


def card_brand_length_ok(digits: str) -> bool:
    """Whether the issuer prefix allows this length (Visa, Mastercard, Amex, Discover, JCB, ...)."""
    n, p2, p4 = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if p2 in (34, 37):
        return n == 15
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (30, 36, 38, 39):
        return n >= 14
    if p2 == 35:
        return n >= 16
    return digits[0] == "6" or p2 in (50, 56, 57, 58)


def is_pan(digits: str) -> bool:
    """A plausible payment card number: 13-19 digits, a known issuer prefix, Luhn-valid."""
    return 13 <= len(digits) <= 19 and card_brand_length_ok(digits) and luhn_valid(digits)


def is_ssn(digits: str) -> bool:
    """Nine digits in a possible SSN/ITIN shape: no 000 or 666 area, 00 group or 0000 serial."""
    return (
        len(digits) == 9 and digits[:3] not in ("000", "666") and digits[3:5] != "00" and digits[5:] != "0000"
    )


def find_numeric(text: str, runs: Sequence[Run]) -> list[Detection]:
    """Card numbers, SSNs, expiry dates and security codes in ``runs``, in text order."""
    found: list[Detection] = []
    pans: list[Detection] = []
    for run in runs:
        for lo, hi, is_pan_window in _split(len(run.groups), _pan_windows(run)):
            if is_pan_window:
                pans.append(_detection("pan", run.groups[lo:hi]))
                found.append(pans[-1])
                continue
            for a, b, is_ssn_window in _split(hi - lo, _ssn_windows(text, run, lo, hi)):
                if is_ssn_window:
                    found.append(_detection("ssn", run.groups[lo + a : lo + b]))
                else:
                    found.extend(_card_extras(text, run, lo + a, lo + b, pans))
    return found


def _detection(kind: Kind, groups: Sequence[Group]) -> Detection:
    return Detection(kind, groups[0].start, groups[-1].end, "".join(g.digits for g in groups))


def _split(count: int, windows: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Cut ``range(count)`` into the given windows (True) and the pieces between them (False)."""
    out: list[tuple[int, int, bool]] = []
    pos = 0
    for a, b in windows:
        if a > pos:
            out.append((pos, a, False))
        out.append((a, b, True))
        pos = b
    if pos < count:
        out.append((pos, count, False))
    return out


def _pan_windows(run: Run) -> list[tuple[int, int]]:
    """Card-number windows, left to right; mid-run, a window starts only after a pause or a card.

    At one start, a window ending where the run goes on with a dash ("6200-0064-7147-6194-060")
    loses to a longer one; otherwise the usual lengths win (16, then 15, 19, 14, 13, 18, 17).
    """
    groups, gaps = run.groups, run.gaps
    windows: list[tuple[int, int]] = []
    a = 0
    while a < len(groups):
        best: tuple[tuple[bool, int], int] | None = None
        length = 0
        after_card = bool(windows) and windows[-1][1] == a
        for b in range(a, len(groups) if after_card or _may_start(run, a) else a):
            if groups[b].month:
                break
            length += len(groups[b].digits)
            if length > 19:
                break
            if length >= 13 and is_pan("".join(g.digits for g in groups[a : b + 1])):
                rank = (b < len(gaps) and gaps[b] == "dash", _PAN_LENGTHS.index(length))
                if best is None or rank < best[0]:
                    best = (rank, b + 1)
        if best is None:
            a += 1
        else:
            windows.append((a, best[1]))
            a = best[1]
    return windows


def _may_start(run: Run, a: int) -> bool:
    """A window may start at the run's start or after a pause (punctuation or a filler)."""
    return a == 0 or run.gaps[a - 1] in ("punct", "filler")


def _ssn_windows(text: str, run: Run, lo: int, hi: int) -> list[tuple[int, int]]:
    """SSN windows (relative to ``lo``): dashed 3-2-4 anywhere, other nine-digit forms after "social"."""
    windows: list[tuple[int, int]] = []
    a = lo
    while a < hi:
        if a > lo and not _may_start(run, a):
            a += 1
            continue
        length, b = 0, a
        while b < hi and length < 9 and not run.groups[b].month:
            length += len(run.groups[b].digits)
            b += 1
        groups = run.groups[a:b]
        digits = "".join(g.digits for g in groups)
        dashed = [len(g.digits) for g in groups] == [3, 2, 4] and run.gaps[a : b - 1] == ("dash", "dash")
        if is_ssn(digits) and (dashed or topic_before(text, groups[0].start) == "ssn"):
            windows.append((a - lo, b - lo))
            a = b
        elif hi - lo == 1 and len(digits) == 4 and topic_before(text, groups[0].start) == "ssn4":
            windows.append((0, 1))
            a = b
        else:
            a += 1
    return windows


def _card_extras(text: str, run: Run, lo: int, hi: int, pans: list[Detection]) -> list[Detection]:
    """Expiry date and/or security code filling ``run.groups[lo:hi]`` exactly, when the context says so."""
    groups = run.groups[lo:hi]
    # Shape first (the most permissive reading), context only if the shape fits: it is cheaper.
    if not (_parse_extras(groups, "expiry", True) or _parse_extras(groups, "cvv", True)):
        return []
    start = groups[0].start
    pan = pans[-1] if pans and start - pans[-1].end <= _CARD_REACH else None
    topic = topic_before(text, start, since=pan.end if pan else 0)
    if topic not in (None, "cvv", "expiry") or (topic is None and pan is None):
        return []
    if _UNIT_AFTER.match(text, groups[-1].end):
        return []
    amex = pan is not None and pan.value[:2] in ("34", "37")
    return _parse_extras(groups, topic, amex) or []


def _parse_extras(
    groups: Sequence[Group], topic: Topic | None, amex: bool, used: frozenset[str] = frozenset()
) -> list[Detection] | None:
    """Cover ``groups`` with at most one expiry and one security code, in either order."""
    if not groups:
        return []
    options: list[tuple[int, Detection | None]] = []
    if "expiry" not in used:
        if len(groups) >= 2:
            options.append((2, _expiry2(groups[0], groups[1])))
        options.append((1, _expiry1(groups[0], topic)))
    if "cvv" not in used:
        g = groups[0]
        ok = not g.month and (len(g.digits) == 3 or (len(g.digits) == 4 and (topic == "cvv" or amex)))
        cvv = Detection("cvv", g.start, g.end, g.digits) if ok else None
        options.insert(0 if topic == "cvv" else len(options), (1, cvv))
    for width, hit in options:
        if hit is None:
            continue
        rest = _parse_extras(groups[width:], topic, amex, used | {hit.kind})
        if rest is not None:
            return [hit, *rest]
    return None


def _expiry1(group: Group, topic: Topic | None) -> Detection | None:
    """One group read as MMYY or MMYYYY, or (after an expiry word) MYY or MYYYY."""
    d = group.digits
    if group.month or not 3 <= len(d) <= 6 or (len(d) % 2 and topic != "expiry"):
        return None
    cut = 2 - len(d) % 2
    return _expiry(group, group, d[:cut], d[cut:])


def _expiry2(first: Group, second: Group) -> Detection | None:
    """A month (digits or name) followed by a year: "05/27", "May 2027", "oh five, twenty seven"."""
    if len(first.digits) > 2 or second.month:
        return None
    return _expiry(first, second, first.digits, second.digits)


def _expiry(first: Group, last: Group, month: str, year: str) -> Detection | None:
    if not 1 <= int(month) <= 12:
        return None
    if len(year) == 4 and year.startswith("20"):
        year = year[2:]
    if len(year) != 2 or int(year) >= 50:
        return None
    return Detection("expiry", first.start, last.end, f"{int(month):02d}/{year}")
