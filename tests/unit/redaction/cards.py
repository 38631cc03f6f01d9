"""Test card numbers: any body plus its Luhn check digit."""

from __future__ import annotations


def with_check_digit(body: str) -> str:
    """``body`` followed by the digit that makes it Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)
