"""Adversarial inputs finish in time proportional to their size (no regex backtracking blow-up)."""

from __future__ import annotations

import time

import pytest

from keysvc.tokens.redaction import find_spans

SIZE = 20_000
PATHOLOGICAL = {
    "separators between digits": "1" + " ," * 15 + " x ",  # 33 chars: under the 40-char gap cap
    "whitespace around at": "x" + " " * 50 + "at" + " " * 50,
    "digits typed one by one": "4 ",
    "number words": "one ",
    "fillers between groups": "4111 um ",
    "card numbers": "4111 1111 1111 1111, ",
    "dotted local part": "a.",
    "spoken dots": "a dot ",
    "context words and codes": "cvv 123 ",
    "phone numbers": "415 555 0132, ",
    "dashes": "4-",
}


@pytest.mark.parametrize("unit", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_input_is_fast(unit: str) -> None:
    text = unit * (SIZE // len(unit))
    start = time.perf_counter()
    find_spans(text)
    # About 0.1-0.6 s on a shared 2-core machine; catastrophic backtracking would take hours.
    assert time.perf_counter() - start < 5
