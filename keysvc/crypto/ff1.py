"""FF1 format-preserving encryption (NIST SP 800-38G, with the Rev.1 domain rule).

``FF1(key, alphabet)`` encrypts strings over ``alphabet`` (numeral ``i`` is ``alphabet[i]``,
radix = ``len(alphabet)``, 2..65,536) with AES-128/192/256 from ``cryptography``. Output has the
input's length and alphabet. Tweaks may be any length the standard allows (< 2^32 bytes).

Domain rules (``ValueError`` names the rule that failed, never the value):

* ``2 <= len(text) <= MAX_LENGTH``. The standard allows up to 2^32-1 numerals; keysvc stops at
  4,096, which keeps every half within Python's int/str conversion limit (4,300 digits) and
  bounds the big-integer work a single request can cause.
* ``radix ** len(text) >= 1,000,000`` (SP 800-38G Rev.1 draft requirement, also enforced by
  Bouncy Castle and mysto/ff3). ``FF1.min_length`` is the shortest length allowed.

How it is fast:

* One AES-ECB context per thread, built once; FF1's CBC-MAC is done block by block on it.
* Per (length, tweak) the ``_Shape`` caches P, the CBC-MAC state after P and the constant
  tweak blocks of Q, and the moduli, so a round costs one AES block when ``b <= 12``
  (``radix**ceil(n/2) < 2**96``; every realistic token format).
* ``encrypt_batch`` groups values by length (and tweak length) and, while
  ``radix**ceil(n/2) < 2**48`` (radix 10 up to 28 digits, radix 62 up to 16 characters), runs
  each Feistel round for the whole group as one AES-ECB call plus numpy uint64 arithmetic,
  with numpy string <-> numeral conversion. Per-item tweaks are CBC-MACed for the whole group
  too, one AES-ECB call per tweak block. Longer inputs take the exact Python-int path used by
  ``encrypt``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

MIN_DOMAIN = 1_000_000
MAX_RADIX = 65_536
MAX_LENGTH = 4_096
MAX_TWEAK_LENGTH = 2**32 - 1
_VECTOR_LIMIT = 2**48
_SHAPE_CACHE_SIZE = 512
_TABLE_LIMIT = 10_000  # rows in the numeral-chunk lookup table used to render batches
_CANONICAL = "0123456789abcdefghijklmnopqrstuvwxyz"
_BUILTIN_FORMATS = {2: "b", 8: "o", 10: "d", 16: "x"}
_ROUNDS = 10

U64 = npt.NDArray[np.uint64]
TweakArray = npt.NDArray[np.uint8]
Tweaks = bytes | Sequence[bytes] | TweakArray


@dataclass(frozen=True, slots=True)
class _Shape:
    """Everything FF1 needs that depends only on (length, tweak)."""

    n: int
    u: int
    v: int
    b: int
    d: int
    mods: tuple[int, ...]  # radix**m for rounds 0..9
    round_consts: tuple[int, ...]  # the single variable Q block XOR the CBC state, minus NUM(B)
    p_state: bytes  # CIPH(P)
    state: int  # CBC-MAC state after P and the full constant blocks of Q
    tail: bytes  # constant bytes of Q (tweak, padding) that share a block with [i] and NUM(B)
    vector: bool  # the numpy batch path applies


def _shape_params(radix: int, n: int) -> tuple[int, int, int, int]:
    u = n // 2
    v = n - u
    # ceil(v * log2(radix)) computed exactly as the bit length of radix**v - 1.
    b = -(-(radix**v - 1).bit_length() // 8)
    d = 4 * -(-b // 4) + 4
    return u, v, b, d


class FF1:
    """FF1 over one AES key and one alphabet.

    Args:
        key: AES key, 16, 24 or 32 bytes.
        alphabet: the numerals in order; 2..65,536 distinct characters.

    Raises:
        ValueError: bad key length or alphabet.
    """

    def __init__(self, key: bytes, alphabet: str = "0123456789") -> None:
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError("FF1 key must be bytes")
        if len(key) not in (16, 24, 32):
            raise ValueError("FF1 key must be 16, 24 or 32 bytes (AES-128, AES-192 or AES-256)")
        radix = len(alphabet)
        if not 2 <= radix <= MAX_RADIX:
            raise ValueError(f"FF1 alphabet must have 2 to {MAX_RADIX} characters")
        if len(set(alphabet)) != radix:
            raise ValueError("FF1 alphabet has repeated characters")
        self._key = bytes(key)
        self.alphabet = alphabet
        self.radix = radix
        self.min_length = max(2, next(n for n in range(1, 21) if radix**n >= MIN_DOMAIN))
        self._local = threading.local()
        self._shapes: dict[tuple[int, bytes], _Shape] = {}
        self._shapes_lock = threading.Lock()
        self._charset = frozenset(alphabet)
        self._index = {ch: i for i, ch in enumerate(alphabet)}
        self._decimal = alphabet == "0123456789"
        canonical = radix <= len(_CANONICAL)
        self._to_canon = str.maketrans(alphabet, _CANONICAL[:radix]) if canonical else None
        self._from_canon = str.maketrans(_CANONICAL[:radix], alphabet) if canonical else None
        self._identity = canonical and alphabet == _CANONICAL[:radix]
        self._ascii = alphabet.isascii()
        codes = np.array([ord(ch) for ch in alphabet], dtype=np.uint32)
        self._lut = np.full(256, -1, dtype=np.int32)  # ASCII alphabets: byte -> numeral
        if self._ascii:
            self._lut[codes] = np.arange(radix, dtype=np.int32)
        self._order = np.argsort(codes).astype(np.int32)  # other alphabets: binary search
        self._sorted = codes[self._order]
        self._out = codes
        self._nul_free = "\x00" not in alphabet
        self._chunk = next(k for k in range(1, 17) if radix ** (k + 1) > _TABLE_LIMIT)
        self._table: npt.NDArray[np.uint32] | None = None
        self._context()  # fail fast on a key AES rejects

    @property
    def max_length(self) -> int:
        """Longest text accepted (a practical bound below the standard's 2^32-1)."""
        return MAX_LENGTH

    def encrypt(self, text: str, tweak: bytes = b"") -> str:
        """Encrypt one string.

        Args:
            text: numerals from the alphabet; ``min_length <= len(text) <= max_length``.
            tweak: public tweak, any length below 2^32 bytes.

        Returns:
            The ciphertext, same length and alphabet.

        Raises:
            ValueError: a character outside the alphabet or a length outside the domain.
        """
        return self._one(text, tweak, True)

    def decrypt(self, text: str, tweak: bytes = b"") -> str:
        """Decrypt one string; the inverse of ``encrypt`` (same arguments and errors)."""
        return self._one(text, tweak, False)

    def encrypt_batch(self, texts: Sequence[str], tweak: Tweaks = b"") -> list[str]:
        """Encrypt many strings; results are in input order and equal ``encrypt`` item by item.

        Values may have different lengths. Values of equal length (and tweak length) are
        encrypted together with one AES call per Feistel round.

        Args:
            texts: the plaintexts.
            tweak: one tweak for every text; or one tweak per text, as a sequence of bytes or
                as a 2-D uint8 array with one row per text (equal-length tweaks, no copying).

        Raises:
            ValueError: some item is invalid (the message gives its index, not its value), or
                the number of tweaks differs from the number of texts.
        """
        return self._batch(texts, tweak, True)

    def decrypt_batch(self, texts: Sequence[str], tweak: Tweaks = b"") -> list[str]:
        """Decrypt many strings; the inverse of ``encrypt_batch`` (same arguments and errors)."""
        return self._batch(texts, tweak, False)

    # -- shared state -------------------------------------------------------------------

    def _context(self) -> CipherContext:
        """This thread's AES-ECB context (ECB keeps no state between blocks; never finalized)."""
        try:
            context: CipherContext = self._local.context
        except AttributeError:
            # ECB here is FF1's CIPH_K, the raw block cipher the standard is built on.
            context = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()  # noqa: S305
            self._local.context = context
        return context

    def _ecb(self) -> Callable[[bytes], bytes]:
        return self._context().update

    def _shape(self, n: int, tweak: bytes) -> _Shape:
        if tweak.__class__ is not bytes:
            if not isinstance(tweak, (bytes, bytearray, memoryview)):
                raise TypeError("FF1 tweak must be bytes")
            tweak = bytes(tweak)
        shape = self._shapes.get((n, tweak))
        if shape is None:
            shape = self._build_shape(n, tweak)
            with self._shapes_lock:
                if len(self._shapes) >= _SHAPE_CACHE_SIZE:
                    del self._shapes[next(iter(self._shapes))]
                self._shapes[(n, tweak)] = shape
        return shape

    def _build_shape(self, n: int, tweak: bytes) -> _Shape:
        if n < 2:
            raise ValueError("FF1 text must be at least 2 characters long")
        if n > MAX_LENGTH:
            raise ValueError(f"FF1 text must be at most {MAX_LENGTH} characters long")
        if n < self.min_length:
            raise ValueError(
                f"FF1 domain too small: radix**length must be at least {MIN_DOMAIN:,} "
                f"(SP 800-38G Rev.1), so radix {self.radix} needs at least {self.min_length} characters"
            )
        t = len(tweak)
        if t > MAX_TWEAK_LENGTH:
            raise ValueError("FF1 tweak must be shorter than 2**32 bytes")
        u, v, b, d = _shape_params(self.radix, n)
        ecb = self._ecb()
        p = bytes((1, 2, 1)) + self.radix.to_bytes(3, "big") + bytes((10, u % 256))
        p += n.to_bytes(4, "big") + t.to_bytes(4, "big")
        p_state = ecb(p)
        state = int.from_bytes(p_state, "big")
        prefix = tweak + bytes((-t - b - 1) % 16)
        full = len(prefix) - len(prefix) % 16
        for k in range(0, full, 16):
            state = int.from_bytes(
                ecb((state ^ int.from_bytes(prefix[k : k + 16], "big")).to_bytes(16, "big")), "big"
            )
        tail = prefix[full:]
        if b < 16:
            base = state ^ (int.from_bytes(tail, "big") << (8 * (b + 1)))
            round_consts = tuple(base ^ (i << (8 * b)) for i in range(_ROUNDS))
        else:
            round_consts = ()
        mods = tuple(self.radix ** (u if i % 2 == 0 else v) for i in range(_ROUNDS))
        vector = self.radix**v < _VECTOR_LIMIT
        return _Shape(n, u, v, b, d, mods, round_consts, p_state, state, tail, vector)

    # -- one value, Python ints ---------------------------------------------------------

    def _one(self, text: str, tweak: bytes, encrypt: bool) -> str:
        shape = self._shape(len(text), tweak)
        self._check_chars(text)
        u = shape.u
        a, b = self._feistel(shape, self._num(text[:u]), self._num(text[u:]), encrypt)
        return self._str(a, u) + self._str(b, shape.v)

    def _check_chars(self, text: str) -> None:
        if self._decimal:
            if text.isascii() and text.isdigit():
                return
        elif self._charset.issuperset(text):
            return
        pos = next(i for i, ch in enumerate(text) if ch not in self._charset)
        raise ValueError(f"FF1 text has a character outside the alphabet at position {pos}")

    def _num(self, text: str) -> int:
        if self._decimal:
            return int(text)
        if self._to_canon is not None:
            return int(text if self._identity else text.translate(self._to_canon), self.radix)
        value, radix, index = 0, self.radix, self._index
        for ch in text:
            value = value * radix + index[ch]
        return value

    def _str(self, value: int, m: int) -> str:
        spec = _BUILTIN_FORMATS.get(self.radix)
        if spec is not None:
            text = format(value, spec).zfill(m)
            return text if self._from_canon is None or self._identity else text.translate(self._from_canon)
        radix, alphabet = self.radix, self.alphabet
        chars = [""] * m
        for k in range(m - 1, -1, -1):
            value, digit = divmod(value, radix)
            chars[k] = alphabet[digit]
        return "".join(chars)

    def _feistel(self, shape: _Shape, a: int, b: int, encrypt: bool) -> tuple[int, int]:
        mods = shape.mods
        if shape.b <= 12:  # one variable Q block and d <= 16: one AES block per round
            ecb, consts, shift = self._ecb(), shape.round_consts, 8 * (16 - shape.d)
            if encrypt:
                for i in range(_ROUNDS):
                    y = int.from_bytes(ecb((consts[i] ^ b).to_bytes(16, "big")), "big") >> shift
                    a, b = b, (a + y) % mods[i]
            else:
                for i in range(_ROUNDS - 1, -1, -1):
                    y = int.from_bytes(ecb((consts[i] ^ a).to_bytes(16, "big")), "big") >> shift
                    a, b = (b - y) % mods[i], a
            return a, b
        if encrypt:
            for i in range(_ROUNDS):
                a, b = b, (a + self._round_y(shape, i, b)) % mods[i]
        else:
            for i in range(_ROUNDS - 1, -1, -1):
                a, b = (b - self._round_y(shape, i, a)) % mods[i], a
        return a, b

    def _round_y(self, shape: _Shape, i: int, x: int) -> int:
        """Steps 6.i-6.iv for any shape: y = NUM(S) with S from PRF(P || Q)."""
        ecb = self._ecb()
        if shape.b < 16:
            r = ecb((shape.round_consts[i] ^ x).to_bytes(16, "big"))
        else:
            q = shape.tail + bytes((i,)) + x.to_bytes(shape.b, "big")
            state = shape.state
            for k in range(0, len(q), 16):
                block = (state ^ int.from_bytes(q[k : k + 16], "big")).to_bytes(16, "big")
                state = int.from_bytes(ecb(block), "big")
            r = state.to_bytes(16, "big")
        if shape.d > 16:
            r_int = int.from_bytes(r, "big")
            blocks = b"".join((r_int ^ j).to_bytes(16, "big") for j in range(1, -(-shape.d // 16)))
            r += ecb(blocks)
        return int.from_bytes(r[: shape.d], "big")

    # -- batches, numpy -----------------------------------------------------------------

    def _batch(self, texts: Sequence[str], tweak: Tweaks, encrypt: bool) -> list[str]:
        texts = list(texts)
        tweaks: bytes | list[bytes] | TweakArray
        lengths = list(map(len, texts))
        keys: Sequence[object] = lengths
        if isinstance(tweak, (bytes, bytearray, memoryview)):
            tweaks = bytes(tweak)
        elif isinstance(tweak, np.ndarray):
            if tweak.ndim != 2 or tweak.dtype != np.uint8:
                raise TypeError("FF1 tweak arrays must be 2-D uint8 (one row per text)")
            tweaks = tweak
        else:
            tweaks = list(tweak)
            if set(map(type, tweaks)) - {bytes}:
                if not all(isinstance(t, (bytes, bytearray, memoryview)) for t in tweaks):
                    raise TypeError("FF1 tweaks must be bytes")
                tweaks = [bytes(t) for t in tweaks]
            tweak_lengths = list(map(len, tweaks))
            if tweaks and min(tweak_lengths) != max(tweak_lengths):
                keys = list(zip(lengths, tweak_lengths, strict=False))
        if not isinstance(tweaks, bytes) and len(tweaks) != len(texts):
            raise ValueError("FF1 batch needs one tweak per text")
        if not texts:
            return []
        if len(set(keys)) == 1:
            return self._group(texts, tweaks, encrypt, range(len(texts)))
        groups: dict[object, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        out: list[str] = [""] * len(texts)
        for idx in groups.values():
            sub = tweaks if isinstance(tweaks, bytes) else _take(tweaks, idx)
            for i, result in zip(idx, self._group([texts[i] for i in idx], sub, encrypt, idx), strict=True):
                out[i] = result
        return out

    def _group(
        self, texts: list[str], tweaks: bytes | list[bytes] | TweakArray, encrypt: bool, idx: Sequence[int]
    ) -> list[str]:
        """Equal-length texts (and tweaks); ``idx`` gives their batch positions for errors."""
        try:
            shape = self._shape(len(texts[0]), _item(tweaks, 0))
        except ValueError as exc:
            raise ValueError(f"item {idx[0]}: {exc}") from None
        if not shape.vector:
            out = []
            for k, (i, text) in enumerate(zip(idx, texts, strict=True)):
                try:
                    out.append(self._one(text, _item(tweaks, k), encrypt))
                except ValueError as exc:
                    raise ValueError(f"item {i}: {exc}") from None
            return out
        digits = self._digits(texts, shape.n, idx)
        a = _num_vec(digits[:, : shape.u], self.radix)
        b = _num_vec(digits[:, shape.u :], self.radix)
        if isinstance(tweaks, bytes):
            high: int | U64 = shape.round_consts[0] >> 64
            low: int | U64 = shape.round_consts[0] & ((1 << 64) - 1)
        else:
            high, low = self._tweak_words(shape, tweaks)
        a, b = self._feistel_vec(shape, a, b, encrypt, high, low)
        return self._texts(shape, a, b)

    def _tweak_words(self, shape: _Shape, tweaks: list[bytes] | TweakArray) -> tuple[U64, U64]:
        """Per-item CBC-MAC of P || tweak || padding, XORed into the last Q block, as two u64 words."""
        if isinstance(tweaks, list):
            count, t = len(tweaks), len(tweaks[0])
            tweaks = np.frombuffer(b"".join(tweaks), dtype=np.uint8).reshape(count, t)
        count, t = tweaks.shape
        total = t + (-t - shape.b - 1) % 16 + 1 + shape.b  # len(Q), a multiple of 16
        q = np.zeros((count, total), dtype=np.uint8)
        q[:, :t] = tweaks
        state = np.empty((count, 16), dtype=np.uint8)
        state[:] = np.frombuffer(shape.p_state, dtype=np.uint8)
        context = self._context()
        for k in range(0, total - 16, 16):
            out = context.update((state ^ q[:, k : k + 16]).tobytes())
            state = np.frombuffer(out, dtype=np.uint8).reshape(count, 16)
        words = (state ^ q[:, total - 16 :]).view(">u8")
        return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)

    def _digits(self, texts: list[str], n: int, idx: Sequence[int]) -> npt.NDArray[np.int32]:
        joined = "".join(texts)
        if self._ascii:
            try:
                raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            except UnicodeEncodeError as exc:
                self._bad_char(exc.start, n, idx)
            digits = np.take(self._lut, raw)
            bad = np.flatnonzero(digits < 0)
        else:
            codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            pos = np.minimum(np.searchsorted(self._sorted, codes), self.radix - 1)
            digits = self._order[pos]
            bad = np.flatnonzero(self._sorted[pos] != codes)
        if bad.size:
            self._bad_char(int(bad[0]), n, idx)
        return digits.reshape(len(texts), n)

    @staticmethod
    def _bad_char(offset: int, n: int, idx: Sequence[int]) -> NoReturn:
        item, pos = divmod(offset, n)
        raise ValueError(f"item {idx[item]}: FF1 text has a character outside the alphabet at position {pos}")

    def _feistel_vec(
        self, shape: _Shape, a: U64, b: U64, encrypt: bool, high: int | U64, low: int | U64
    ) -> tuple[U64, U64]:
        """Ten rounds for a group; (high, low) is the last Q block before [i] and NUM(B) go in."""
        context, count = self._context(), len(a)
        blocks = np.empty((count, 2), dtype=">u8")
        source = blocks.view(np.uint8).reshape(-1).data
        sink = bytearray(16 * count + 15)  # update_into wants room for one more block
        r = np.frombuffer(sink, dtype=">u8", count=2 * count).reshape(count, 2)
        blocks[:, 0] = high  # [i] and NUM(B) only touch the low word (b <= 6)
        order = range(_ROUNDS) if encrypt else range(_ROUNDS - 1, -1, -1)
        for i in order:
            mod = np.uint64(shape.mods[i])
            blocks[:, 1] = (b if encrypt else a) ^ (low ^ np.uint64(i << (8 * shape.b)))
            context.update_into(source, sink)
            y = r[:, 0] % mod
            if shape.d == 12:  # S is 96 bits: fold in the next two 16-bit chunks
                second = r[:, 1].astype(np.uint64)
                y = ((y << np.uint64(16)) | (second >> np.uint64(48))) % mod
                y = ((y << np.uint64(16)) | ((second >> np.uint64(32)) & np.uint64(0xFFFF))) % mod
            # a, b, y < mod < 2**48, so uint64 wraps only where a reduction is due and
            # the minimum picks the reduced value: branch-free (x +- y) mod m.
            if encrypt:
                c = a + y
                a, b = b, np.minimum(c, c - mod)
            else:
                c = b - y
                a, b = np.minimum(c, c + mod), a
        return a, b

    def _texts(self, shape: _Shape, a: U64, b: U64) -> list[str]:
        n = shape.n
        chars = np.empty((len(a), n), dtype=np.uint32)
        chars[:, : shape.u] = self._render(a, shape.u)
        chars[:, shape.u :] = self._render(b, shape.v)
        if self._nul_free:  # a NumPy str array drops trailing NULs, so only without "\x00"
            texts: list[str] = chars.view(f"<U{n}").ravel().tolist()
            return texts
        joined = chars.tobytes().decode("utf-32-le", "surrogatepass")
        return [joined[k : k + n] for k in range(0, len(joined), n)]

    def _render(self, values: U64, m: int) -> npt.NDArray[np.uint32]:
        """STR^m_radix for a vector: code points, shape (len(values), m), k numerals per lookup."""
        if self._table is None:
            self._table = _chunk_table(self._out, self._chunk)
        k = self._chunk
        count = -(-m // k)
        weights = np.array([self.radix ** (k * (count - 1 - j)) for j in range(count)], dtype=np.uint64)
        chunks = (values[:, None] // weights) % np.uint64(self.radix**k)
        codes = self._table[chunks].reshape(len(values), count * k)
        rendered: npt.NDArray[np.uint32] = codes[:, count * k - m :]
        return rendered


def _item(tweaks: bytes | list[bytes] | TweakArray, k: int) -> bytes:
    """The tweak of item k."""
    if isinstance(tweaks, bytes):
        return tweaks
    return tweaks[k] if isinstance(tweaks, list) else tweaks[k].tobytes()


def _take(tweaks: list[bytes] | TweakArray, idx: list[int]) -> list[bytes] | TweakArray:
    return [tweaks[i] for i in idx] if isinstance(tweaks, list) else tweaks[idx]


def _num_vec(digits: npt.NDArray[np.int32], radix: int) -> U64:
    m = digits.shape[1]
    weights = np.array([radix ** (m - 1 - k) for k in range(m)], dtype=np.uint64)
    result: U64 = digits.astype(np.uint64) @ weights
    return result


def _chunk_table(codes: npt.NDArray[np.uint32], k: int) -> npt.NDArray[np.uint32]:
    """All radix**k strings of k numerals, as code points: row x is STR^k_radix(x)."""
    radix = len(codes)
    values = np.arange(radix**k, dtype=np.int64)
    digits = (values[:, None] // radix ** np.arange(k - 1, -1, -1, dtype=np.int64)) % radix
    table: npt.NDArray[np.uint32] = codes[digits]
    return table
