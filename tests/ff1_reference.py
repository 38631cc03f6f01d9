"""A deliberately naive FF1, written line by line from NIST SP 800-38G (Algorithms 1-3, 7, 8).

Used only by tests, as an independent check on ``keysvc.crypto.ff1``: no caching, a new AES
context per block, numeral strings as lists of ints, and the full S expansion of step 6.iii.
"""

from __future__ import annotations

import math

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def num_radix(x: list[int], radix: int) -> int:
    """Algorithm 1: NUM_radix(X)."""
    value = 0
    for digit in x:
        value = value * radix + digit
    return value


def num(x: bytes) -> int:
    """Algorithm 2: NUM(X), the byte string read as a big-endian integer."""
    value = 0
    for byte in x:
        value = value * 256 + byte
    return value


def str_radix(m: int, radix: int, x: int) -> list[int]:
    """Algorithm 3: STR^m_radix(x)."""
    out = [0] * m
    for i in range(1, m + 1):
        out[m - i] = x % radix
        x = x // radix
    return out


def be(value: int, length: int) -> bytes:
    """[x]^s: the integer as s big-endian bytes."""
    return value.to_bytes(length, "big")


def ciph(key: bytes, block: bytes) -> bytes:
    """CIPH_K: AES on one block (a fresh context every time, on purpose)."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def xor(x: bytes, y: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(x, y, strict=True))


def prf(key: bytes, x: bytes) -> bytes:
    """Algorithm 6: PRF(X), CBC-MAC with a zero IV."""
    assert len(x) % 16 == 0
    y = bytes(16)
    for j in range(len(x) // 16):
        y = ciph(key, xor(y, x[16 * j : 16 * j + 16]))
    return y


def _setup(radix: int, n: int, t: int) -> tuple[int, int, int, int, bytes]:
    u = n // 2
    v = n - u
    b = math.ceil(math.ceil(v * math.log2(radix)) / 8)
    d = 4 * math.ceil(b / 4) + 4
    p = be(1, 1) + be(2, 1) + be(1, 1) + be(radix, 3) + be(10, 1) + be(u % 256, 1) + be(n, 4) + be(t, 4)
    return u, v, b, d, p


def _s(key: bytes, r: bytes, d: int) -> bytes:
    """Step 6.iii: S = first d bytes of R || CIPH(R xor [1]^16) || ... || CIPH(R xor [ceil(d/16)-1]^16)."""
    s = r
    for j in range(1, math.ceil(d / 16)):
        s += ciph(key, xor(r, be(j, 16)))
    return s[:d]


def encrypt(key: bytes, radix: int, tweak: bytes, x: list[int]) -> list[int]:
    """Algorithm 7: FF1.Encrypt(K, T, X)."""
    n, t = len(x), len(tweak)
    u, v, b, d, p = _setup(radix, n, t)
    a, bb = x[:u], x[u:]
    for i in range(10):
        q = tweak + be(0, (-t - b - 1) % 16) + be(i, 1) + be(num_radix(bb, radix), b)
        r = prf(key, p + q)
        y = num(_s(key, r, d))
        m = u if i % 2 == 0 else v
        c = (num_radix(a, radix) + y) % radix**m
        a, bb = bb, str_radix(m, radix, c)
    return a + bb


def decrypt(key: bytes, radix: int, tweak: bytes, x: list[int]) -> list[int]:
    """Algorithm 8: FF1.Decrypt(K, T, X)."""
    n, t = len(x), len(tweak)
    u, v, b, d, p = _setup(radix, n, t)
    a, bb = x[:u], x[u:]
    for i in range(9, -1, -1):
        q = tweak + be(0, (-t - b - 1) % 16) + be(i, 1) + be(num_radix(a, radix), b)
        r = prf(key, p + q)
        y = num(_s(key, r, d))
        m = u if i % 2 == 0 else v
        c = (num_radix(bb, radix) - y) % radix**m
        bb, a = a, str_radix(m, radix, c)
    return a + bb


def encrypt_text(key: bytes, alphabet: str, tweak: bytes, text: str) -> str:
    """FF1 encryption of a string whose numeral i is ``alphabet[i]``."""
    out = encrypt(key, len(alphabet), tweak, [alphabet.index(ch) for ch in text])
    return "".join(alphabet[i] for i in out)


def decrypt_text(key: bytes, alphabet: str, tweak: bytes, text: str) -> str:
    """FF1 decryption of a string whose numeral i is ``alphabet[i]``."""
    out = decrypt(key, len(alphabet), tweak, [alphabet.index(ch) for ch in text])
    return "".join(alphabet[i] for i in out)
