"""FF1: NIST samples, the paths the samples miss, and every validation rule."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import numpy as np
import pytest

from keysvc.crypto import ff1 as ff1_module
from keysvc.crypto.ff1 import FF1
from tests import ff1_reference as ref

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "ff1_nist_sp800_38g.json").read_text())
KEY = bytes(range(32))
DIGITS = "0123456789"


def _vector_id(v: dict[str, object]) -> str:
    return f"sample{v['sample']}"


def test_vector_file_records_provenance() -> None:
    assert "FF1samples.pdf" in VECTORS["provenance"]
    assert "SP 800-38G" in VECTORS["provenance"]
    assert [v["sample"] for v in VECTORS["vectors"]] == list(range(1, 10))


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=_vector_id)
def test_nist_sample(v: dict[str, str]) -> None:
    f = FF1(bytes.fromhex(v["key"]), v["alphabet"])
    tweak = bytes.fromhex(v["tweak"])
    assert f.radix == v["radix"]
    assert f.encrypt(v["plaintext"], tweak) == v["ciphertext"]
    assert f.decrypt(v["ciphertext"], tweak) == v["plaintext"]
    assert f.encrypt_batch([v["plaintext"]] * 3, tweak) == [v["ciphertext"]] * 3
    assert f.decrypt_batch([v["ciphertext"]], tweak) == [v["plaintext"]]


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=_vector_id)
def test_reference_implementation_passes_nist_samples(v: dict[str, str]) -> None:
    key, tweak = bytes.fromhex(v["key"]), bytes.fromhex(v["tweak"])
    assert ref.encrypt_text(key, v["alphabet"], tweak, v["plaintext"]) == v["ciphertext"]
    assert ref.decrypt_text(key, v["alphabet"], tweak, v["ciphertext"]) == v["plaintext"]


@pytest.mark.parametrize(
    ("alphabet", "length", "tweak_len"),
    [
        (DIGITS, 16, 0),  # the common case: one AES block per round
        (DIGITS, 20, 16),  # d = 12, tweak of exactly one block
        (DIGITS, 28, 7),  # widest radix-10 shape on the numpy path
        (DIGITS, 29, 33),  # first radix-10 shape on the Python-int batch path
        (DIGITS, 80, 3),  # b >= 16: several variable Q blocks
        (DIGITS, 200, 0),  # d > 16: S expansion (step 6.iii)
        ("".join(chr(0x4E00 + i) for i in range(65_536)), 9, 5),  # radix 2^16, d > 16
        ("01", 20, 1),  # radix 2 at its minimum length
        ("zyxwvutsrqponmlkjihgfedcba", 5, 2),  # reversed alphabet
        ("".join(chr(c) for c in range(0x3B1, 0x3B1 + 24)) + "é€", 7, 9),  # non-ASCII
    ],
)
def test_matches_reference_on_paths_the_samples_miss(alphabet: str, length: int, tweak_len: int) -> None:
    rng = random.Random(f"{len(alphabet)}/{length}/{tweak_len}")
    f = FF1(KEY[:16], alphabet)
    tweak = rng.randbytes(tweak_len)
    texts = ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(3)]
    expected = [ref.encrypt_text(KEY[:16], alphabet, tweak, t) for t in texts]
    assert [f.encrypt(t, tweak) for t in texts] == expected
    assert f.encrypt_batch(texts, tweak) == expected
    assert f.decrypt_batch(expected, tweak) == texts
    assert [f.decrypt(c, tweak) for c in expected] == texts


def test_max_length_matches_reference() -> None:
    f = FF1(KEY, DIGITS)
    text = "".join(random.Random(7).choice(DIGITS) for _ in range(f.max_length))
    ct = f.encrypt(text, b"t")
    assert ct == ref.encrypt_text(KEY, DIGITS, b"t", text)
    assert f.decrypt(ct, b"t") == text


def test_tweak_and_key_change_the_ciphertext() -> None:
    f = FF1(KEY)
    base = f.encrypt("4111111111111111")
    assert f.encrypt("4111111111111111", b"\x00") != base
    assert FF1(KEY[:16]).encrypt("4111111111111111") != base


def test_tweak_accepts_bytes_like_values() -> None:
    f = FF1(KEY)
    ct = f.encrypt("123456789", b"abc")
    assert f.encrypt("123456789", bytearray(b"abc")) == ct
    assert f.encrypt_batch(["123456789"], memoryview(b"abc")) == [ct]
    with pytest.raises(TypeError, match="tweak must be bytes"):
        f.encrypt("123456789", "abc")  # type: ignore[arg-type]


def test_batch_keeps_order_across_lengths_and_paths() -> None:
    rng = random.Random(3)
    f = FF1(KEY)
    texts = ["".join(rng.choice(DIGITS) for _ in range(rng.choice([6, 7, 16, 19, 40]))) for _ in range(200)]
    out = f.encrypt_batch(texts, b"tw")
    assert out == [f.encrypt(t, b"tw") for t in texts]
    assert [len(c) for c in out] == [len(t) for t in texts]
    assert f.decrypt_batch(out, b"tw") == texts
    assert f.encrypt_batch([]) == []


@pytest.mark.parametrize("length", [6, 16, 20, 40])
def test_per_item_tweaks_equal_single_calls(length: int) -> None:
    rng = random.Random(length)
    f = FF1(KEY)
    texts = ["".join(rng.choice(DIGITS) for _ in range(length)) for _ in range(30)]
    tweaks = [rng.randbytes(rng.choice([0, 4, 4, 13, 16, 40])) for _ in texts]
    out = f.encrypt_batch(texts, tweaks)
    assert out == [f.encrypt(t, tw) for t, tw in zip(texts, tweaks, strict=True)]
    assert f.decrypt_batch(out, tweaks) == texts
    assert f.encrypt_batch(texts, [b"same"] * len(texts)) == f.encrypt_batch(texts, b"same")
    assert f.encrypt_batch(texts[:2], [bytearray(b"x"), memoryview(b"y")]) == [
        f.encrypt(texts[0], b"x"),
        f.encrypt(texts[1], b"y"),
    ]


@pytest.mark.parametrize("length", [16, 40])  # the numpy path and the Python-int path
def test_per_item_tweaks_as_a_uint8_array(length: int) -> None:
    rng = random.Random(length)
    f = FF1(KEY)
    texts = ["".join(rng.choice(DIGITS) for _ in range(length)) for _ in range(20)]
    rows = np.frombuffer(rng.randbytes(20 * 21), dtype=np.uint8).reshape(20, 21)
    out = f.encrypt_batch(texts, rows)
    assert out == f.encrypt_batch(texts, [row.tobytes() for row in rows])
    assert f.decrypt_batch(out, rows) == texts
    assert f.encrypt_batch([texts[0], "12345678"], rows[:2]) == [
        f.encrypt(texts[0], rows[0].tobytes()),
        f.encrypt("12345678", rows[1].tobytes()),
    ]
    with pytest.raises(TypeError, match="2-D uint8"):
        f.encrypt_batch(texts, rows[0])
    with pytest.raises(ValueError, match="one tweak per text"):
        f.encrypt_batch(texts, rows[:3])


def test_per_item_tweaks_must_match_texts() -> None:
    f = FF1(KEY)
    with pytest.raises(ValueError, match="one tweak per text"):
        f.encrypt_batch(["123456", "654321"], [b""])
    with pytest.raises(TypeError, match="tweaks must be bytes"):
        f.encrypt_batch(["123456"], ["abc"])  # type: ignore[list-item]
    assert f.encrypt_batch([], []) == []


def test_alphabet_with_nul_character_in_batches() -> None:
    alphabet = "\x00" + "123456789"
    f = FF1(KEY, alphabet)
    texts = ["1234567\x00", "\x00\x00\x00\x00\x00\x00\x00\x00"]
    out = f.encrypt_batch(texts)
    assert out == [f.encrypt(t) for t in texts]
    assert f.decrypt_batch(out) == texts


def test_shape_cache_is_bounded_and_stays_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ff1_module, "_SHAPE_CACHE_SIZE", 2)
    f = FF1(KEY)
    tweaks = [bytes([i]) for i in range(5)]
    first = [f.encrypt("0123456789", t) for t in tweaks]
    assert len(f._shapes) <= 2
    assert [f.encrypt("0123456789", t) for t in tweaks] == first
    assert first[0] == ref.encrypt_text(KEY, DIGITS, tweaks[0], "0123456789")


def test_threads_share_one_instance() -> None:
    f = FF1(KEY)
    texts = [f"{i:016d}" for i in range(500)]
    expected = f.encrypt_batch(texts)
    results: list[bool] = []

    def work() -> None:
        results.append(
            f.encrypt_batch(texts) == expected and [f.encrypt(t) for t in texts[:50]] == expected[:50]
        )

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 8, 15, 17, 33, 64])
def test_bad_key_length(length: int) -> None:
    with pytest.raises(ValueError, match="16, 24 or 32 bytes"):
        FF1(bytes(length))


def test_key_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="key must be bytes"):
        FF1("0123456789abcdef")  # type: ignore[arg-type]


def test_alphabet_with_repeated_characters() -> None:
    with pytest.raises(ValueError, match="repeated characters"):
        FF1(KEY, "01234567890")


@pytest.mark.parametrize("alphabet", ["", "0", "".join(chr(i) for i in range(65_537))])
def test_radix_out_of_range(alphabet: str) -> None:
    with pytest.raises(ValueError, match="2 to 65536 characters"):
        FF1(KEY, alphabet)


def test_character_outside_alphabet() -> None:
    f = FF1(KEY)
    for bad in ["12345a789", "1234 5678", "١٢٣٤٥٦٧٨٩", "+12345678", "1_2345678", "²34567890"]:
        with pytest.raises(ValueError, match="outside the alphabet") as err:
            f.encrypt(bad)
        assert bad not in str(err.value)
    with pytest.raises(ValueError, match="outside the alphabet at position 3"):
        f.decrypt("123x5678")


@pytest.mark.parametrize("alphabet", [DIGITS, "αβγδεζηθικλμ"])
def test_batch_error_names_item_and_position_not_value(alphabet: str) -> None:
    f = FF1(KEY, alphabet)
    good = alphabet[:8]
    with pytest.raises(ValueError, match=r"item 2: .*outside the alphabet at position 5") as err:
        f.encrypt_batch([good, good, good[:5] + "€" + good[6:]])
    assert good not in str(err.value)
    with pytest.raises(ValueError, match=r"item 1: .*outside the alphabet at position 0"):
        f.encrypt_batch([good, "?" + good[1:]])


@pytest.mark.parametrize(
    ("alphabet", "shortest"),
    [(DIGITS, 6), ("01", 20), ("0123456789abcdefghijklmnopqrstuvwxyz", 4), ("0123456789ABCDEF", 5)],
)
def test_domain_rule_radix_pow_length_at_least_a_million(alphabet: str, shortest: int) -> None:
    f = FF1(KEY, alphabet)
    assert f.min_length == shortest
    assert len(f.encrypt(alphabet[-1] * shortest)) == shortest
    with pytest.raises(ValueError, match=r"domain too small: radix\*\*length must be at least 1,000,000"):
        f.encrypt(alphabet[0] * (shortest - 1))
    with pytest.raises(ValueError, match=rf"item 1: .*needs at least {shortest} characters"):
        f.encrypt_batch([alphabet[0] * shortest, alphabet[0] * (shortest - 1)])


def test_minimum_length_two_even_for_huge_radix() -> None:
    f = FF1(KEY, "".join(chr(0x10000 + i) for i in range(65_536)))
    assert f.min_length == 2
    with pytest.raises(ValueError, match="at least 2 characters"):
        f.encrypt(chr(0x10000))
    assert len(f.encrypt(chr(0x10000) * 2)) == 2


def test_maximum_length() -> None:
    f = FF1(KEY)
    assert f.max_length == 4096
    with pytest.raises(ValueError, match="at most 4096 characters"):
        f.encrypt("1" * 4097)
