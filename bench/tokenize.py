"""FF1 tokenization speed on 16-digit card numbers, beside ff3 and fastfpe.

Prints, from one run on this machine (AES-256, one core, empty tweak):
  * keysvc FF1, one call per value (target <= 15 us/value),
  * keysvc FF1 ``encrypt_batch`` over 10,000 values, string conversion included,
  * the ``pan`` token format's batch (Luhn, BIN/last4, version marker included),
  * ``ff3`` (mysto, FF3-1) and ``fastfpe`` (FF1 in Rust), one call per value,
and the ratios: batch vs ff3 (target >= 40x) and batch vs fastfpe (target >= 3x).
It also checks that keysvc FF1 and fastfpe agree on every card.

Each figure is the best of several repeats (the machine is shared; expect +-40%).
Measurements are (label, us/value) rows from ``measure_local``; more sections can add rows
to the same report.

Run from the repo root: .venv/bin/python -m bench.tokenize [--quick]
"""

from __future__ import annotations

import os
import sys

# This script shares its name with the stdlib module ``tokenize`` (which logging imports via
# linecache): take its own directory off the import path before anything imports it.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import random
import time
from collections.abc import Callable, Sequence

import fastfpe.ff1
from ff3 import FF3Cipher

from keysvc.crypto.ff1 import FF1
from keysvc.tokens import luhn
from keysvc.tokens.formats import FormatSpec, make_format

KEY = bytes(range(32))
DIGITS = "0123456789"
BATCH = 10_000

Row = tuple[str, float]  # (label, microseconds per value)


def cards(count: int, seed: int = 1) -> list[str]:
    """Random Luhn-valid 16-digit card numbers."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        body = "".join(rng.choice(DIGITS) for _ in range(15))
        out.append(next(body + d for d in DIGITS if luhn.residue(body + d) == 0))
    return out


def per_value(run: Callable[[], object], values: int, repeats: int) -> float:
    """Best-of-``repeats`` microseconds per value for ``run`` processing ``values`` values."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / values * 1e6


def measure_local(numbers: Sequence[str], repeats: int) -> list[Row]:
    """In-process figures: keysvc FF1 (single, batch), the pan format, ff3 and fastfpe."""
    ours = FF1(KEY)
    batch = list(numbers[:BATCH])
    few = list(numbers[: max(1, len(numbers) // 4)])  # for the slow one-call-per-value peers
    pan = make_format(FormatSpec("pan"))
    ff3 = FF3Cipher(KEY.hex(), "00" * 7, 10)
    key_hex = KEY.hex()
    if [ours.encrypt(n) for n in few[:200]] != [
        fastfpe.ff1.encrypt(key_hex, "", DIGITS, n) for n in few[:200]
    ]:
        raise SystemExit("keysvc FF1 and fastfpe disagree")
    return [
        (
            "keysvc FF1, one call per value",
            per_value(lambda: [ours.encrypt(n) for n in numbers], len(numbers), repeats),
        ),
        (
            f"keysvc FF1, batch of {len(batch):,}",
            per_value(lambda: ours.encrypt_batch(batch), len(batch), repeats),
        ),
        (
            f"keysvc pan format, batch of {len(batch):,}",
            per_value(lambda: pan.tokenize_batch(ours, batch, b"", 1), len(batch), repeats),
        ),
        (
            "ff3 (FF3-1), one call per value",
            per_value(lambda: [ff3.encrypt(n) for n in few], len(few), repeats),
        ),
        (
            "fastfpe (FF1, Rust), one call per value",
            per_value(
                lambda: [fastfpe.ff1.encrypt(key_hex, "", DIGITS, n) for n in numbers], len(numbers), repeats
            ),
        ),
    ]


def measure_service(numbers: Sequence[str], seconds: float) -> list[Row]:
    """Tokenize through the service over gRPC in batches of 1,000 (two requests in flight)."""
    from bench._harness import keysvc_server, pipelined
    from keysvc_client import KeyServiceClient
    from keysvc_client._pb.keysvc.v1 import tokenization_pb2

    with keysvc_server() as (address, token), KeyServiceClient(address, token) as client:
        client.admin.create_key("pan", "fpe", format="pan")
        request = tokenization_pb2.TokenizeRequest(
            key="pan", items=[tokenization_pb2.TokenizeItem(value=v) for v in numbers[:1000]]
        )
        metadata = (("authorization", f"Bearer {token}"),)

        def call(req: object) -> object:
            return client._tokens.Tokenize.future(req, metadata=metadata, timeout=30)

        pipelined(call, request, 0.5, 2)
        rate = pipelined(call, request, seconds, 2) * 1000
    return [("service Tokenize, batches of 1,000 (gRPC)", 1e6 / rate)]


def report(rows: Sequence[Row]) -> None:
    """Print the table and the ratios against the targets."""
    print("16-digit card numbers, AES-256, one core")
    print(f"{'':44s}{'us/value':>10s}{'values/s':>12s}")
    for label, micros in rows:
        print(f"{label:44s}{micros:10.2f}{1e6 / micros:12,.0f}")
    figures = dict(rows)
    single = figures["keysvc FF1, one call per value"]
    batch = next(v for k, v in figures.items() if k.startswith("keysvc FF1, batch"))
    checks = [
        ("FF1 batch vs ff3", figures["ff3 (FF3-1), one call per value"] / batch, 40.0),
        ("FF1 batch vs fastfpe", figures["fastfpe (FF1, Rust), one call per value"] / batch, 3.0),
    ]
    print("\nratios (target)")
    for label, ratio, target in checks:
        print(f"  {label:28s}{ratio:8.1f}x   (>= {target:g}x)  {'ok' if ratio >= target else 'MISSED'}")
    print(f"  {'FF1 single value':28s}{single:8.2f}us  (<= 15 us)  {'ok' if single <= 15 else 'MISSED'}")
    service = figures.get("service Tokenize, batches of 1,000 (gRPC)")
    if service is not None:
        rate = 1e6 / service
        verdict = "ok" if rate >= 150_000 else "MISSED"
        print(f"  {'service tokens/s':28s}{rate:8,.0f}    (>= 150,000)  {verdict}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer values and repeats (about a second)")
    args = parser.parse_args(argv)
    numbers = cards(BATCH if args.quick else 2 * BATCH)
    rows = measure_local(numbers, repeats=2 if args.quick else 5)
    report(rows + measure_service(numbers, seconds=1.0 if args.quick else 3.0))


if __name__ == "__main__":
    main()
