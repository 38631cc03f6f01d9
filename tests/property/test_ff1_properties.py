"""Hypothesis: the fast FF1 equals the naive spec transcription, round-trips, and batches agree."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from keysvc.crypto.ff1 import FF1
from tests import ff1_reference as ref

# ASCII printables plus non-ASCII letters, so both the byte and the UTF-32 batch paths run.
POOL = [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x3B1, 0x3C9)] + ["€", "é", "\U0001f600"]
SETTINGS = settings(max_examples=60, deadline=None)


@cache
def _cipher(key: bytes, alphabet: str) -> FF1:
    return FF1(key, alphabet)


@st.composite
def cases(draw: st.DrawFn, max_len: int = 512) -> tuple[FF1, bytes, str]:
    """A random key, alphabet (radix 2..64, random symbol order), tweak and one valid text."""
    key = draw(st.sampled_from([bytes(range(16)), bytes(range(24)), bytes(range(32))]))
    radix = draw(st.integers(2, 64))
    alphabet = "".join(draw(st.permutations(POOL))[:radix])
    f = _cipher(key, alphabet)
    length = draw(st.one_of(st.integers(f.min_length, f.min_length + 3), st.integers(f.min_length, max_len)))
    text = draw(st.text(alphabet=alphabet, min_size=length, max_size=length))
    tweak = draw(st.binary(max_size=32))
    return f, tweak, text


@SETTINGS
@given(cases())
def test_fast_equals_naive(case: tuple[FF1, bytes, str]) -> None:
    f, tweak, text = case
    ct = f.encrypt(text, tweak)
    assert ct == ref.encrypt_text(f._key, f.alphabet, tweak, text)
    assert f.decrypt(text, tweak) == ref.decrypt_text(f._key, f.alphabet, tweak, text)


@SETTINGS
@given(cases())
def test_round_trip_preserves_length_and_alphabet(case: tuple[FF1, bytes, str]) -> None:
    f, tweak, text = case
    ct = f.encrypt(text, tweak)
    assert len(ct) == len(text)
    assert set(ct) <= set(f.alphabet)
    assert f.decrypt(ct, tweak) == text


@SETTINGS
@given(cases(max_len=40), st.integers(1, 8))
def test_batch_equals_single(case: tuple[FF1, bytes, str], copies: int) -> None:
    f, tweak, text = case
    texts = [text[i:] + text[:i] for i in range(copies)]  # same length, different values
    out = f.encrypt_batch(texts, tweak)
    assert out == [f.encrypt(t, tweak) for t in texts]
    assert f.decrypt_batch(out, tweak) == texts


@SETTINGS
@given(st.data())
def test_mixed_length_batch(data: st.DataObject) -> None:
    """Mixed lengths, one shared tweak and then one tweak per item (of mixed lengths too)."""
    f, tweak, _ = data.draw(cases(max_len=64))
    texts = data.draw(
        st.lists(
            st.integers(f.min_length, f.min_length + 40).flatmap(
                lambda n: st.text(alphabet=f.alphabet, min_size=n, max_size=n)
            ),
            min_size=1,
            max_size=12,
        )
    )
    out = f.encrypt_batch(texts, tweak)
    assert out == [f.encrypt(t, tweak) for t in texts]
    assert f.decrypt_batch(out, tweak) == texts
    tweaks = data.draw(st.lists(st.binary(max_size=20), min_size=len(texts), max_size=len(texts)))
    out = f.encrypt_batch(texts, tweaks)
    assert out == [f.encrypt(t, tw) for t, tw in zip(texts, tweaks, strict=True)]
    assert f.decrypt_batch(out, tweaks) == texts
