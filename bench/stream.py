"""Streaming encryption throughput against raw AES-GCM over the same bytes (the floor).

Both sides read the same file segment by segment into a reused buffer, seal or open each
segment with AES-256-GCM and write it to a file in the same directory; the floor does only
that (counter nonces, no header, no key derivation). The ratio keysvc/floor is the cost of
the format (target >= 0.8x). Each run writes a fresh file after ``sync``, and floor and
keysvc take turns going first, so page-cache writeback from one run does not land on the
next. Data keys come from an in-process source, so no server is involved. The input is
pseudo-random (AES-CTR keystream) and lives in a temporary directory.

    python -m bench.stream [--size-mb 1024] [--segment-size 1048576] [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keysvc_client.stream import DEFAULT_SEGMENT_SIZE, TAG_SIZE, decrypt_stream, encrypt_stream

MIB = 1 << 20
TARGET = 0.8


@dataclass(frozen=True)
class _DataKey:
    plaintext: bytes
    encrypted: bytes
    key_version: int


class LocalKeySource:
    """Data keys wrapped with AES-GCM under a random in-memory KEK (a stand-in for the service)."""

    def __init__(self) -> None:
        self._kek = AESGCM(AESGCM.generate_key(256))

    def generate_data_key(self, key: str, *, context: Mapping[str, str] | None = None) -> _DataKey:
        dek, nonce = os.urandom(32), os.urandom(12)
        return _DataKey(dek, nonce + self._kek.encrypt(nonce, dek, None), 1)

    def decrypt_data_key(self, encrypted: bytes, *, context: Mapping[str, str] | None = None) -> bytes:
        return self._kek.decrypt(encrypted[:12], encrypted[12:], None)


def make_input(path: Path, size: int) -> None:
    """Write ``size`` bytes of AES-CTR keystream (seeded, so runs are comparable) in 1 MiB chunks."""
    ctr = Cipher(algorithms.AES(b"keysvc-bench-seed-32-bytes-long!"), modes.CTR(bytes(16))).encryptor()
    zeros = memoryview(bytes(MIB))
    with open(path, "wb") as out:
        for start in range(0, size, MIB):
            out.write(ctr.update(zeros[: min(MIB, size - start)]))


def floor_encrypt(src: Path, dst: Path, segment_size: int, key: bytes, prefix: bytes) -> None:
    """Raw AES-GCM per segment: same reads, writes and buffer reuse as the stream, nothing else."""
    aead = AESGCM(key)
    plain, sealed = bytearray(segment_size), bytearray(segment_size + TAG_SIZE)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        index = 0
        while n := fin.readinto(plain):
            out = memoryview(sealed)[: n + TAG_SIZE]
            aead.encrypt_into(prefix + struct.pack(">I", index), memoryview(plain)[:n], None, out)
            fout.write(out)
            index += 1


def floor_decrypt(src: Path, dst: Path, segment_size: int, key: bytes, prefix: bytes) -> None:
    """The inverse of :func:`floor_encrypt` under a known key and nonce prefix."""
    aead = AESGCM(key)
    sealed, plain = bytearray(segment_size + TAG_SIZE), bytearray(segment_size)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        index = 0
        while n := fin.readinto(sealed):
            out = memoryview(plain)[: n - TAG_SIZE]
            aead.decrypt_into(prefix + struct.pack(">I", index), memoryview(sealed)[:n], None, out)
            fout.write(out)
            index += 1


def in_memory_gcm(size: int, segment_size: int) -> float:
    """Seconds for AES-GCM alone over ``size`` bytes (no I/O): how much of the floor is crypto."""
    aead, plain = AESGCM(os.urandom(32)), bytearray(segment_size)
    sealed = bytearray(segment_size + TAG_SIZE)
    start = time.perf_counter()
    for index in range(-(-size // segment_size)):
        aead.encrypt_into(bytes(8) + struct.pack(">I", index), plain, None, sealed)
    return time.perf_counter() - start


def digest(path: Path) -> bytes:
    """SHA-256 of a file, read in 1 MiB chunks."""
    h, buf = hashlib.sha256(), bytearray(MIB)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            h.update(memoryview(buf)[:n])
    return h.digest()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def run(size: int, segment_size: int, repeat: int, workdir: Path) -> dict[str, list[float]]:
    """Seconds of every run of each variant; floor and stream take turns going first."""
    source, plain_in = LocalKeySource(), workdir / "input.bin"
    make_input(plain_in, size)
    floor_ct, stream_ct, plain_out = workdir / "floor.ct", workdir / "stream.ct", workdir / "output.bin"
    key, prefix = os.urandom(32), os.urandom(8)

    def stream_enc() -> None:
        with open(plain_in, "rb") as fin, open(stream_ct, "wb") as fout:
            encrypt_stream(source, "recordings", fin, fout, segment_size=segment_size)

    def stream_dec() -> None:
        with open(stream_ct, "rb") as fin, open(plain_out, "wb") as fout:
            decrypt_stream(source, fin, fout)

    variants: dict[str, tuple[Callable[[], object], Path]] = {
        "floor_enc": (lambda: floor_encrypt(plain_in, floor_ct, segment_size, key, prefix), floor_ct),
        "stream_enc": (stream_enc, stream_ct),
        "floor_dec": (lambda: floor_decrypt(floor_ct, plain_out, segment_size, key, prefix), plain_out),
        "stream_dec": (stream_dec, plain_out),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(repeat):
        for op in ("enc", "dec"):
            pair = [f"floor_{op}", f"stream_{op}"]
            for name in pair if round_ % 2 == 0 else pair[::-1]:  # alternate who goes first
                fn, output = variants[name]
                output.unlink(missing_ok=True)
                os.sync()  # start every run with no dirty pages from the previous one
                times[name].append(timed(fn))
    if digest(plain_out) != digest(plain_in):
        raise AssertionError("round trip failed")
    times["gcm_only"] = [in_memory_gcm(size, segment_size)]
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="input size in MiB (default 1024)")
    parser.add_argument("--segment-size", type=int, default=DEFAULT_SEGMENT_SIZE, help="bytes per segment")
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant (best and median shown)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary files")
    args = parser.parse_args(argv)
    size = args.size_mb * MIB
    with tempfile.TemporaryDirectory(prefix="keysvc-bench-stream-", dir=args.dir) as tmp:
        times = run(size, args.segment_size, args.repeat, Path(tmp))
    best = {name: size / MIB / min(runs) for name, runs in times.items()}
    median = {name: size / MIB / statistics.median(runs) for name, runs in times.items()}
    python = sys.version.split()[0]
    print(f"{args.size_mb} MiB, segment {args.segment_size} B, {args.repeat} runs each, Python {python}")
    header = ("floor best", "keysvc best", "ratio", "floor med", "keysvc med", "ratio")
    print(f"{'MiB/s':10}" + "".join(f"{h:>12}" for h in header))
    met = True
    for op, label in (("enc", "encrypt"), ("dec", "decrypt")):
        floor, ours = f"floor_{op}", f"stream_{op}"
        ratio = best[ours] / best[floor]
        met = met and ratio >= TARGET
        print(
            f"{label:10}{best[floor]:12.0f}{best[ours]:12.0f}{ratio:11.2f}x"
            f"{median[floor]:12.0f}{median[ours]:12.0f}{median[ours] / median[floor]:11.2f}x"
        )
    print(f"AES-GCM alone, in memory: {best['gcm_only']:.0f} MiB/s")
    print(f"peak RSS: {peak_rss_mib():.1f} MiB")
    print(f"target (best keysvc / best floor) >= {TARGET}x: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
